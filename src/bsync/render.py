"""How plans, summaries and status look on a terminal (rich) and to scripts (JSON)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bsync.apply import Summary
from bsync.plan import Plan

OP_STYLE = {"create": "green", "update": "yellow", "delete": "red", "skip": "dim", "conflict": "magenta"}


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=str), indent=None if not console.is_terminal else 2)


def short(value: Any, width: int = 40) -> str:
    text = "∅" if value is None else str(value).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def plan_table(plan: Plan, *, show_skips: bool = False) -> Table:
    """One row per action: what happens to which booking/event, field by field, and why."""
    table = Table(title=f"Plan for {plan.pair}", title_justify="left", show_lines=False)
    table.add_column("op")
    table.add_column("booking", overflow="fold")
    table.add_column("event", overflow="fold")
    table.add_column("changes")
    table.add_column("reason")
    for action in plan.actions:
        if action.op == "skip" and not show_skips:
            continue
        changes = "\n".join(f"{name}: {short(old)} → {short(new)}" for name, (old, new) in action.changes.items())
        style = OP_STYLE.get(action.op, "")
        table.add_row(Text(action.op, style=style), Text(action.source_id), Text(short(action.target_id, 16)),
                      Text(changes), Text(action.reason))
    return table


def print_plan(console: Console, plan: Plan, *, show_skips: bool = False) -> None:
    if any(a.op != "skip" for a in plan.actions) or show_skips:
        console.print(plan_table(plan, show_skips=show_skips))
    counts = ", ".join(f"{plan.count(op)} {op}" for op in ("create", "update", "delete", "skip", "conflict"))
    console.print(f"[bold]{plan.pair}[/]: {counts}" + ("" if show_skips or not plan.count("skip")
                                                        else " (skips hidden; -v lists them)"))
    for failure in plan.failures:
        console.print(f"[red]✗[/] {failure.id}: {escape(failure.reason)}")
    if plan.halt:
        console.print(f"[bold red]safety halt:[/] {escape(plan.halt)}")


def print_summary(console: Console, summary: Summary) -> None:
    s = summary
    console.print(f"[bold]{s.pair}[/]: {s.created} created, {s.updated} updated, {s.deleted} deleted, "
                  f"{s.skipped} unchanged, {s.conflicts} conflicts, {s.errors} errors "
                  f"({s.total} bookings, {s.requests} requests)")
    for note in s.notes:
        console.print(f"  [cyan]•[/] {note['id']}: {note['note']}")
    for failure in s.failures:
        console.print(f"  [red]✗[/] {failure['id']}: {escape(failure['reason'])}")


def status_tables(runs: list[dict[str, Any]], cursors: list[dict[str, Any]], journal: dict[str, int],
                  links: dict[str, int], problems: list[dict[str, Any]]) -> list[Table]:
    out = []
    table = Table(title="Recent runs", title_justify="left")
    for col in ("#", "command", "started (UTC)", "finished", "exit", "created", "updated", "deleted",
                "errors", "requests"):
        table.add_column(col, no_wrap=col == "command")
    for run in runs:
        s = run.get("summary") or {}
        exit_code = run["exit_code"]
        exit_text = "[yellow]running/killed[/]" if exit_code is None else (
            f"[green]{exit_code}[/]" if exit_code == 0 else f"[red]{exit_code}[/]")
        table.add_row(str(run["id"]), run["command"], run["started_at"], run["finished_at"] or "—", exit_text,
                      *(str(s.get(k, "")) for k in ("created", "updated", "deleted", "errors", "requests")))
    out.append(table)
    mapping = Table(title="Mappings and journal", title_justify="left")
    mapping.add_column("what")
    mapping.add_column("count")
    for pair, count in sorted(links.items()):
        mapping.add_row(f"links {pair}", str(count))
    for state in ("intent", "done", "failed", "dead"):
        mapping.add_row(f"journal {state}", str(journal.get(state, 0)))
    out.append(mapping)
    if cursors:
        cur = Table(title="Cursors", title_justify="left")
        for col in ("provider", "scope", "value", "updated"):
            cur.add_column(col)
        for c in cursors:
            cur.add_row(c["provider"], c["scope"], short(c["value"]), c["updated_at"])
        out.append(cur)
    if problems:
        prob = Table(title="Unfinished or failed writes", title_justify="left")
        for col in ("run", "action", "booking", "state", "error"):
            prob.add_column(col)
        for p in problems:
            prob.add_row(str(p["run_id"]), p["action"], p["key"], p["state"], short(p["error"], 60))
        out.append(prob)
    return out
