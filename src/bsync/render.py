"""How plans, summaries and status look on a terminal (rich) and to scripts (JSON)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bsync import registry
from bsync.core.runs import Summary
from bsync.core.plan import SOURCE_PREFIX, Action, Plan
from bsync.core.timeutil import parse_duration

OP_STYLE = {"create": "green", "update": "yellow", "delete": "red", "skip": "dim", "conflict": "magenta"}


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=str), indent=None if not console.is_terminal else 2)


def short(value: Any, width: int = 40) -> str:
    text = "∅" if value is None else str(value).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


CREATE_FIELDS = ("start", "end", "timezone", "attendee")


def human(value: Any, tz: Any = None, *, end: bool = False) -> str:
    """A change value for people: instants in the business timezone, all-day dates as dates
    (an all-day end is exclusive on the wire; people expect the last day)."""
    if isinstance(value, str) and tz is not None:
        if value.startswith("date:") and end:
            last = date.fromisoformat(value[5:]) - timedelta(days=1)
            return f"{last.isoformat()} (last day)"
        if value.startswith("date:"):
            return f"{value[5:]} (all day)"
        if len(value) >= 19 and value[10:11] == "T":
            try:
                return datetime.fromisoformat(value).astimezone(tz).strftime("%a %d %b %H:%M")
            except ValueError:
                pass
    return short(value)


def _created_value(action: Action, name: str) -> Any:
    """A created field's new value: on the target (an event), or on the source (an imported booking)."""
    for key in (name, SOURCE_PREFIX + name):
        if key in action.changes:
            return action.changes[key][1]
    return None


def _changes_text(action: Action, tz: Any = None) -> str:
    if action.op == "create":  # every field is new: show the ones people check
        pairs = [(name, value) for name in CREATE_FIELDS if (value := _created_value(action, name))]
        return "\n".join(f"{name}: {human(value, tz, end=name == 'end')}" for name, value in pairs)
    return "\n".join(f"{name}: {human(old, tz, end=name.endswith('end'))} → {human(new, tz, end=name.endswith('end'))}"
                     for name, (old, new) in action.changes.items())


def action_subject(action: Action) -> str:
    """Which record an action is about: its booking, or for an event not yet imported, the event."""
    if action.source_id:
        return action.source_id
    return f"event {action.target_id}" if action.target_id else "—"


def plan_table(plan: Plan, *, show_skips: bool = False, tz: Any = None) -> Table:
    """One row per action: what happens to which booking/event, field by field, and why."""
    table = Table(title=f"Plan for {plan.pair}", title_justify="left", show_lines=True)
    table.add_column("op")
    table.add_column("booking", ratio=2)
    table.add_column("changes", ratio=3)
    table.add_column("reason", ratio=1)
    for action in plan.actions:
        if action.op == "skip" and not show_skips:
            continue
        booking = Text(action.label + "\n" if action.label else "")
        booking.append(action_subject(action), style="dim")
        table.add_row(Text(action.op, style=OP_STYLE.get(action.op, "")), booking, Text(_changes_text(action, tz)),
                      Text(action.reason))
    return table


NOTION_AVERAGE_RATE = 3.0  # Notion's documented average: what an unpaced run meets anyway
LONG_RUN_PAGES = 100  # above this many page writes, --plan says how long they take


def horizon_line(plan: Plan, history: str | None) -> str | None:
    """``N bookings ended before the 30-day history horizon: left alone``, or None."""
    if not plan.outside_horizon or not history or history == "all":
        return None
    days = parse_duration(history).total_seconds() / 86400
    span = f"{days:g}-day" if days >= 1 else history
    noun = "booking" if plan.outside_horizon == 1 else "bookings"
    return f"{plan.outside_horizon} {noun} ended before the {span} history horizon: left alone"


def duration_line(plan: Plan, pages_per_second: float | None) -> str | None:
    """``this run writes N pages: about M minutes at 3 requests/s`` for a long run, or None.

    An unpaced config (0) still meets Notion's average of three requests a second.
    """
    pages = plan.source_writes()
    if pages <= LONG_RUN_PAGES:
        return None
    rate = pages_per_second or NOTION_AVERAGE_RATE
    minutes = round(pages / rate / 60)
    took = "under a minute" if minutes < 1 else f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"this run writes {pages} pages: {took} at {rate:g} requests/s"


def print_plan(console: Console, plan: Plan, *, show_skips: bool = False, tz: Any = None,
               history: str | None = None, pages_per_second: float | None = None) -> None:
    """The plan as a table (times shown in ``tz``, the business timezone) and its counts, with
    how many old bookings the history horizon leaves alone and how long a long run takes."""
    if any(a.op != "skip" for a in plan.actions) or show_skips:
        console.print(plan_table(plan, show_skips=show_skips, tz=tz))
    counts = ", ".join(f"{plan.count(op)} {op}" for op in ("create", "update", "delete", "skip", "conflict"))
    console.print(f"[bold]{plan.pair}[/]: {counts}" + ("" if show_skips or not plan.count("skip")
                                                        else " (skips hidden; -v lists them)"))
    for failure in plan.failures:
        title = f" ({escape(failure.title)})" if failure.title else ""
        console.print(f"[red]✗[/] {failure.id}{title}: {escape(failure.reason)}")
    for line in (horizon_line(plan, history), duration_line(plan, pages_per_second)):
        if line:
            console.print(line)
    if plan.halt:
        console.print(f"[bold red]safety halt:[/] {escape(plan.halt)}")


def print_failures(console: Console, failures: list[dict[str, str]]) -> None:
    """The records that failed, with their ids and why (under a summary)."""
    for failure in failures:
        title = f" ({escape(failure['title'])})" if failure.get("title") else ""
        console.print(f"  [red]✗[/] {failure['id']}{title}: {escape(failure['reason'])}")


def print_summary(console: Console, summary: Summary) -> None:
    s = summary
    console.print(f"[bold]{s.pair}[/]: {s.created} created, {s.updated} updated, {s.deleted} deleted, "
                  f"{s.skipped} unchanged, {s.conflicts} conflicts, {s.errors} errors "
                  f"({s.total} bookings, {s.requests} requests)")
    for note in s.notes:
        console.print(f"  [cyan]•[/] {note['id']}: {note['note']}")
    if s.drafts:
        console.print(f"  [cyan]•[/] {s.drafts} draft{'s' if s.drafts > 1 else ''} skipped: no date yet "
                      f"(`--plan -v` lists them)")
    print_failures(console, s.failures)


def _took(started: str, finished: str | None) -> str:
    if not finished:
        return "—"
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def _exit_text(exit_code: int | None) -> str:
    if exit_code is None:
        return "[yellow]running or killed[/]"
    return f"[green]{exit_code}[/]" if exit_code == 0 else f"[red]{exit_code}[/]"


def _counts_text(summary: dict[str, Any] | None) -> str:
    s = summary or {}
    if "error" in s and not any(k in s for k in ("created", "sent", "counts")):
        return f"[red]{escape(short(s['error'], 70))}[/]"
    if isinstance(s.get("counts"), dict):  # a reconcile: its findings by kind (left after --fix)
        def kinds(counts: dict[str, int]) -> str:
            return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))

        left = kinds(s["counts"]) or "[green]clean[/]"
        return f"found {kinds(s['found'])}; after --fix: {left}" if s.get("found") else left
    if s.get("take"):  # a resolve
        return f"{escape(short(s.get('key'), 30))}: {escape(str(s['take']))} wins"
    keys = ("created", "updated", "deleted", "sent", "deferred", "uncertain", "errors", "requests", "revived")
    return ", ".join(f"{s[k]} {k}" for k in keys if isinstance(s.get(k), int) and (s[k] or k in ("errors",)))


def _local_time(value: str | None, tz: Any, fmt: str = "%a %d %b %H:%M") -> str:
    """A stored UTC instant as the business sees it."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(tz).strftime(fmt)


def _cursor_value(value: str | None, tz: Any) -> str:
    """A cursor that is a time (Notion's "edited since") in local time; tokens shortened.

    A cursor kept as a JSON object (CalDAV's: the collection, its sync token and the ETags
    it has seen) shows the end of its token, where servers put what changes, and how many
    ETags it holds, rather than its opening brace."""
    if value and len(value) >= 19 and value[10:11] == "T":
        try:
            return _local_time(value, tz, "%d %b %H:%M:%S")
        except ValueError:
            pass
    if value and value.startswith("{"):
        try:
            state = json.loads(value)
        except ValueError:
            state = None
        if isinstance(state, dict) and ("token" in state or "etags" in state):
            token = state.get("token")
            text = f"token …{str(token)[-20:]}" if token else "no sync token: ETags compared"
            etags = state.get("etags")
            return text + (f" ({len(etags)} ETags)" if isinstance(etags, dict) else "")
    return short(value, 32)


def _scope_text(scope: str, width: int = 30) -> str:
    """A cursor's scope for a narrow column: a URL (a CalDAV collection) as its host and the
    end of its path, where the calendar's name is, rather than its cut-off beginning."""
    if "://" not in scope or len(scope) <= width:
        return short(scope, width)
    host, _, path = scope.split("://", 1)[1].partition("/")
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return short(f"{host}/…/{tail}/", width)


def _command_label(command: str, part_of: str | None) -> str:
    """``notify (part of sync)``: runs nobody started as a command of their own say so."""
    return f"{command} (part of {part_of})" if part_of else command


def _next_run_text(next_run: dict[str, Any] | None, tz: Any, zone: str) -> str:
    if not next_run:
        return "next scheduled run: unknown"
    if next_run.get("at") is None:
        return f"next scheduled run: {next_run.get('unknown') or 'unknown'}"
    try:
        when = f"{_local_time(next_run['at'], tz)} {zone}"
    except ValueError:  # systemd's own format, already in the machine's local time
        when = next_run["at"]
    return f"next scheduled run: {when} ({next_run['source']})"


def status_tables(data: dict[str, Any]) -> list[Table | Text]:
    """The `bsync status` dashboard: one table per question an admin asks in the morning.
    Times are in the business timezone, which the headers name."""
    from zoneinfo import ZoneInfo

    now = datetime.fromisoformat(data["now"])
    zone = data.get("timezone") or "UTC"
    tz = ZoneInfo(zone)
    out = []
    last = Table(title=f"Last run per command (times in {zone})", title_justify="left", box=box.SIMPLE_HEAD,
                 pad_edge=False)
    for col in ("command", "started", "took", "exit", "counts", "last success"):
        last.add_column(col)
    commands = data["commands"]
    # each command, then the runs that were steps of it
    order = sorted(commands, key=lambda c: (commands[c].get("part_of") or c, bool(commands[c].get("part_of")), c))
    def add_row(label: str, entry: dict[str, Any]) -> None:
        run, ok = entry["last"], entry["last_success"]
        started = datetime.fromisoformat(run["started_at"])
        last.add_row(label, f"{_local_time(run['started_at'], tz)} ({_ago((now - started).total_seconds())})",
                     _took(run["started_at"], run["finished_at"]), _exit_text(run["exit_code"]),
                     _counts_text(run.get("summary")),
                     "[green]this one[/]" if ok and ok["id"] == run["id"] else
                     (_local_time(ok["started_at"], tz) if ok else "[red]never[/]"))

    for command in order:
        entry = commands[command]
        part_of = entry.get("part_of")
        add_row(("  ↳ " if part_of and part_of in commands else "") + _command_label(command, part_of), entry)
        for calendar, per_calendar in (entry.get("calendars") or {}).items():  # two calendars: each one's
            add_row(f"  ↳ {command} with {registry.CALENDARS[calendar].label}", per_calendar)
    out.append(last)
    out.append(Text(_next_run_text(data.get("next_run"), tz, zone)))  # a line of its own: never squeezed

    table = Table(title=f"Recent runs ({zone})", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("#", "command", "started", "took", "exit", "counts"):
        table.add_column(col, no_wrap=col != "counts")
    for run in data["runs"]:
        table.add_row(str(run["id"]), _command_label(run["command"], run.get("part_of")),
                      _local_time(run["started_at"], tz, "%d %b %H:%M"),
                      _took(run["started_at"], run["finished_at"]), _exit_text(run["exit_code"]),
                      _counts_text(run.get("summary")))
    out.append(table)

    health = Table(title="Health", title_justify="left")
    health.add_column("what")
    health.add_column("state")
    for pair, count in sorted(data["links"].items()):
        health.add_row(f"mappings {pair}", str(count))
    journal = data["journal"]
    health.add_row("journal", ", ".join(f"{journal.get(s, 0)} {s}" for s in ("intent", "failed", "dead")) +
                   ("" if not (journal.get("failed") or journal.get("dead")) else "  → `bsync retry`"))
    inbox = data["inbox"]
    health.add_row("webhook inbox backlog", f"{inbox['backlog']}" + (
        f" (oldest {_ago(inbox['oldest_pending_age_s'])}; processed by the next sync)" if inbox["backlog"] else ""))
    health.add_row("open conflicts", str(len(data["conflicts"])))
    n = data["notifications"]["counts"]
    if n:
        health.add_row("notifications", ", ".join(f"{v} {k}" for k, v in sorted(n.items())).replace(
            " intent", " uncertain") + ("  → `bsync remind --resend-uncertain`" if n.get("intent") else ""))
    token = data.get("google_token")
    if token:
        state = token["kind"]
        if token.get("age_seconds") is not None:
            state += f", issued {_ago(token['age_seconds'])}"
        for warning in token.get("warnings") or []:
            state += f"\n[yellow]{escape(warning)}[/]"
        if token.get("error"):
            state += f"\n[red]{escape(token['error'])}[/]"
        health.add_row("Google token", state)
    out.append(health)

    if data["cursors"]:
        cur = Table(title="Cursors (where incremental reads resume)", title_justify="left")
        for col in ("provider", "scope", "value", "moved"):
            cur.add_column(col)
        for c in data["cursors"]:
            cur.add_row(c.get("label") or c["provider"], _scope_text(c["scope"]), _cursor_value(c["value"], tz),
                        _ago(c.get("age_s")))
        out.append(cur)
    if data["conflicts"]:
        sides = "|".join((registry.LEDGER.name, *registry.CALENDARS))
        con = Table(title=f"Open conflicts (settle with `bsync resolve KEY --take {sides}`)", title_justify="left")
        # the key is what `bsync resolve` takes: shown whole, never cut to fit the terminal
        con.add_column("booking", no_wrap=True, overflow="fold", min_width=max(len(c["key"]) for c in data["conflicts"]))
        for col in ("fields", "since"):
            con.add_column(col)
        for c in data["conflicts"]:
            calendar = c.get("calendar") or next(iter(registry.CALENDARS))  # named when there are several
            fields = ", ".join(f"{k}: {registry.LEDGER.name}={v[0]!r} {calendar}={v[1]!r}"
                               for k, v in (c.get("fields") or {}).items())
            con.add_row(c["key"], escape(fields), _ago(c.get("age_s")))
        out.append(con)
    problems = data["unfinished"]
    if problems:
        prob = Table(title="Unfinished or failed writes", title_justify="left")
        for col in ("run", "action", "booking", "state", "error"):
            prob.add_column(col)
        for p in problems:
            prob.add_row(str(p["run_id"]), p["action"], p["key"], p["state"], short(p["error"], 60))
        out.append(prob)
    attention = data["notifications"]["attention"]
    if attention:
        att = Table(title="Notifications needing attention", title_justify="left")
        for col in ("booking", "kind", "channel", "state", "error"):
            att.add_column(col)
        for a in attention:
            att.add_row(a["booking_key"], f"{a['kind']} {a['lead']}", a["channel"],
                        "uncertain" if a["state"] == "intent" else a["state"], short(a["error"], 60))
        out.append(att)
    out.extend(record_issue_tables(data.get("records")))
    return out


def record_issue_tables(records: dict[str, Any] | None) -> list[Table]:
    """Failing records (each named, with why and since when), then the drafts waiting for a date."""
    out: list[Table] = []
    if not records:
        return out
    if records["failing"]:
        table = Table(title="Records that don't sync (fix them in the source; listed until they do)",
                      title_justify="left")
        for col in ("record", "reason", "since"):
            table.add_column(col)
        for r in records["failing"]:
            table.add_row(f"{escape(short(r['title'], 60))}\n[dim]{r['id']}[/]" if r["title"] else r["id"],
                          f"[red]{escape(r['reason'])}[/]", _ago(r.get("age_s")))
        out.append(table)
    if records["drafts"]:
        table = Table(title=f"drafts: {len(records['drafts'])} (no date yet: skipped, not errors, until they get one)",
                      title_justify="left")
        for col in ("record", "since"):
            table.add_column(col)
        for d in records["drafts"]:
            table.add_row(f"{escape(short(d['title'], 60))}\n[dim]{d['id']}[/]" if d["title"] else d["id"],
                          _ago(d.get("age_s")))
        out.append(table)
    return out


def availability_tables(result: dict[str, Any]) -> list[Table]:
    """One table per day: the free slots, local times."""
    tables = []
    for day in result["days"]:
        label = datetime.fromisoformat(day["date"]).strftime("%a %d %b %Y")
        table = Table(title=f"{label} — {len(day['slots'])} free {result['duration']}-minute slots "
                            f"({result['timezone']})", title_justify="left", min_width=60)
        table.add_column("from")
        table.add_column("to")
        if not day["slots"]:
            table.add_row("closed or fully booked", "")
        for slot in day["slots"]:
            table.add_row(datetime.fromisoformat(slot["start"]).strftime("%H:%M"),
                          datetime.fromisoformat(slot["end"]).strftime("%H:%M"))
        tables.append(table)
    return tables


NOTIFY_STYLE = {"send": "green", "defer": "yellow", "skip": "dim", "fail": "red", "suppress": "dim",
                "uncertain": "magenta"}


def message_json(message: Any, tz: Any = None) -> dict[str, Any]:
    """One planned message for scripts: recipients masked, times in the business timezone."""
    from bsync.notices.plan import mask

    booking = message.booking
    return {"op": message.op, "kind": message.kind, "booking": message.booking_key, "channel": message.channel,
            "to": mask(message.recipient) or None, "lead": message.lead,
            "start": booking.start.astimezone(tz or booking.tz).isoformat() if booking is not None else None,
            "due_at": message.due_at.isoformat() if message.due_at else None, "reason": message.reason}


def notify_table(messages: list[Any], *, tz: Any = None, show_skips: bool = False) -> Table:
    """What `bsync remind` would send, to whom (masked), for which booking, and why."""
    from bsync.notices.plan import mask

    table = Table(title="Notifications", title_justify="left")
    for name in ("op", "kind", "to", "when", "booking", "reason"):
        table.add_column(name, ratio=2 if name in ("booking", "reason") else None)
    for m in messages:
        if m.op in ("skip", "suppress") and not show_skips:
            continue
        kind = m.kind + (f" {m.lead_label}" if m.lead_label else f" #{m.sequence}" if m.sequence is not None else "")
        label = Text()
        if m.booking is not None:
            local = m.booking.start.astimezone(tz or m.booking.tz)
            label.append(f"{m.booking.title} · {local:%a %d %b %H:%M}\n")
        label.append(m.booking_key, style="dim")
        when = ("now" if m.op == "send" else
                f"{m.due_at.astimezone(tz or m.due_at.tzinfo):%a %H:%M}" if m.due_at is not None else "—")
        table.add_row(Text(m.op, style=NOTIFY_STYLE.get(m.op, "")), kind,
                      f"{m.channel} {mask(m.recipient)}".strip(), when, label, Text(m.reason))
    return table


def print_notify_plan(console: Console, plan: Any, *, tz: Any = None, show_skips: bool = False) -> None:
    shown = [m for m in plan.messages if show_skips or m.op not in ("skip", "suppress")]
    if shown:
        console.print(notify_table(plan.messages, tz=tz, show_skips=show_skips))
    counts = plan.counts()
    hidden = sum(counts.get(op, 0) for op in ("skip", "suppress"))
    console.print("[bold]notifications[/]: " + ", ".join(f"{counts.get(op, 0)} {op}" for op in
                                                           ("send", "defer", "skip", "fail", "suppress",
                                                            "uncertain"))
                  + (" (skips hidden; -v lists them)" if hidden and not show_skips else ""))


def print_notify_summary(console: Console, summary: Any) -> None:
    s = summary
    found = f", {s.found_sent} uncertain found sent" if s.found_sent else ""
    console.print(f"[bold]{s.command}[/]: {s.sent} sent, {s.deferred} deferred, {s.skipped} skipped, "
                  f"{s.suppressed} not sent on purpose, {s.uncertain} uncertain{found}, {s.errors} errors "
                  f"({s.requests} requests)")
    print_failures(console, s.failures)


def drift_table(report: Any) -> Table:
    """Reconcile's findings, one row each: what, which ids, why, and whether --fix repairs it."""
    from bsync.ops.reconcile import KINDS

    systems = ", ".join((registry.LEDGER.label, *(entry.label for entry in registry.CALENDARS.values())))
    table = Table(title=f"Drift between {systems}, the platforms and the state DB", title_justify="left")
    for name in ("kind", "ids", "explanation", "--fix"):
        table.add_column(name, ratio=2 if name in ("ids", "explanation") else None)
    for d in report.drift:
        ids = "\n".join(f"{k}: {v}" for k, v in d.ids.items())
        style = "dim" if d.kind == "manual_block" else "red" if not d.fixable else "yellow"
        table.add_row(Text(d.kind, style=style), Text(ids, style="dim"), Text(d.explanation),
                      "repairs" if d.fixable else ("—" if d.kind == "manual_block" else "by hand"))
    table.caption = "; ".join(f"{k}: {v}" for k, v in KINDS.items() if any(d.kind == k for d in report.drift))
    return table


def print_drift(console: Console, report: Any, *, title: str = "reconcile") -> None:
    c = report.checked
    if report.drift:
        console.print(drift_table(report))
    problems = report.problems
    fixable = sum(1 for d in problems if d.fixable)
    per_calendar = ", ".join(f"{key.removeprefix('events.')} {n}" for key, n in c.items() if key.startswith("events."))
    head = (f"[bold]{title}[/]: checked {c.get('bookings', 0)} bookings, {c.get('events', 0)} events"
            f"{f' ({per_calendar})' if per_calendar else ''}, {c.get('platform_bookings', 0)} platform bookings — ")
    if not problems:
        console.print(head + "[green]clean[/]" + (f" ({len(report.drift)} manual blocks listed)" if report.drift else ""))
    else:
        console.print(head + f"[red]{len(problems)} drift[/] ({fixable} repaired by `bsync reconcile --fix`)")
    print_failures(console, report.failures)


def reconcile_json(result: Any, *, fix: bool) -> dict[str, Any]:
    """`bsync reconcile --json`: the findings, and with --fix the plans, what was applied and
    the findings after."""
    data = result.report.as_json()
    if fix:
        data["fix"] = {"plans": [p.as_json() for p in result.fix_plans], "applied": result.fixed,
                       "after": result.after.as_json() if result.after else None}
    return data


def print_reconcile(console: Console, result: Any, *, show_plans: bool, tz: Any = None) -> None:
    """The findings; with --fix --plan the repair plans; after --fix what was repaired and
    the findings left."""
    print_drift(console, result.report)
    for fix_plan in result.fix_plans if show_plans else ():
        print_plan(console, fix_plan, tz=tz)
    if result.after is None:
        return
    for summary in result.fixed.values():
        if isinstance(summary, dict):
            line = (f"repaired: {summary.get('created', 0)} created, {summary.get('updated', 0)} updated, "
                    f"{summary.get('deleted', 0)} cancelled or deleted ({summary.get('pair')})")
            console.print(line + (f" — [bold red]safety halt:[/] {escape(summary['halted'])}"
                                  if summary.get("halted") else ""))
    if result.fixed.get("links_removed"):
        console.print(f"repaired: {result.fixed['links_removed']} mapping row(s) removed")
    print_drift(console, result.after, title="after --fix")
