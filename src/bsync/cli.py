"""The ``bsync`` command line: parse, call the library, render.  No sync logic lives here.

Exit codes (SPEC §3): 0 success · 1 finished but some records failed (or a safety halt) ·
2 usage/config error (also a state DB that can't be used, and serve's port busy or out of
range) · 3 another run holds the lock · 4 authentication failed ·
5 a remote was unreachable after retries.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typer.core import TyperCommand

from bsync import __version__, registry, render
from bsync.config import Settings, load_config
from bsync.core.pipeline import CalendarStep, InboxStep, NoticeStep, PlatformStep, Step, run_pipeline
from bsync.errors import BsyncError, UsageError
from bsync.ops.logs import bind_log_context, configure_logging, new_run_id, register_secrets_from
from bsync.core.store import Store

log = logging.getLogger("bsync.cli")

app = typer.Typer(
    name="bsync",
    help="Keep a service business's bookings in sync: Notion (source of truth) → Google Calendar.\n\n"
         "Exit codes: 0 ok · 1 some records failed or safety halt · 2 usage/config error (also an unusable "
         "state DB, or serve's port busy or out of range) · "
         "3 another run holds the lock · 4 authentication failed · 5 remote unreachable after retries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts name config sections like [sync]; print them as written
)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Config file (default: $BSYNC_CONFIG, ./bsync.toml, $XDG_CONFIG_HOME/bsync/config.toml).")]
StateOpt = Annotated[Optional[Path], typer.Option("--state", help="State DB path (overrides state_path).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail (-vv: debug logs).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
LogFileOpt = Annotated[Optional[Path], typer.Option("--log-file", envvar="BSYNC_LOG_FILE", help="Also log to this file (rotated at 5 MB, 5 kept, mode 0600; INFO even with -q), for unattended runs.")]
LogFormatOpt = Annotated[str, typer.Option("--log-format", envvar="BSYNC_LOG_FORMAT", help="text or json (one object per line, with run_id and command).")]


class Context:
    """What every command gets: consoles for output and errors, and the parsed flags."""

    def __init__(self, config: Path | None, state: Path | None, json_out: bool, verbose: int, quiet: bool,
                 log_file: Path | None = None, log_format: str = "text") -> None:
        self.config_path = config
        self.state_path = state
        self.json = json_out
        self.verbose = verbose
        self.quiet = quiet
        self.out = Console(quiet=quiet and not json_out, highlight=False, soft_wrap=json_out)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        if log_format not in ("text", "json"):
            raise fail(self, UsageError(f"--log-format {log_format!r}: use text or json"))
        try:
            configure_logging(verbose=verbose, quiet=quiet, log_file=log_file, log_format=log_format)  # type: ignore[arg-type]
        except BsyncError as exc:
            raise fail(self, exc) from None
        # The command is the function that built this Context (`auth_google` -> "auth google"):
        # Typer runs commands outside click's context stack, so click can't say.
        command = sys._getframe(1).f_code.co_name.replace("_", " ")
        bind_log_context(run_id=new_run_id(), command=command)
        global _current
        _current = self

    def settings(self) -> Settings:
        settings = load_config(self.config_path, state_path=self.state_path)
        register_secrets_from(settings)  # never written to a log, whatever a library prints
        self.state_path = settings.state_path  # named by main() if the state DB fails mid-run
        return settings


_current: Context | None = None
"""The running command's Context, for :func:`main`'s last-resort error line."""


class ProgressBar:
    """A progress bar on the terminal for runs with many writes (never in --json or -q)."""

    def __init__(self, ctx: Context, description: str, *, threshold: int = 20) -> None:
        self.ctx, self.description, self.threshold = ctx, description, threshold
        self.progress: Progress | None = None
        self.task: Any = None

    def start(self, total: int) -> None:
        self.stop()  # a pipeline applies several pairs: one bar each, one at a time
        ctx = self.ctx
        if total < self.threshold or ctx.json or ctx.quiet or not ctx.err.is_terminal:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=ctx.err, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=total)

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def fail(ctx: Context | None, exc: BsyncError) -> typer.Exit:
    """Print the error (and what to do next) and log it, so unattended runs leave a trail."""
    log.error("%s (exit %d)%s", exc, exc.exit_code, f"; hint: {exc.hint}" if exc.hint else "",
              extra={"printed": True})
    console = ctx.err if ctx else Console(stderr=True)
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    if exc.hint:
        console.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False)
    return typer.Exit(exc.exit_code)


def pairs_help() -> str:
    """The pair argument's help: the pair names the registry knows now."""
    return (f"Pairs to run (default: [sync] pairs). Known: {', '.join(registry.all_pairs())}. "
            f"Both together = two-way sync.")


class PairsCommand(TyperCommand):
    """A command taking pair names: its help lists the pairs registered when it is shown, so
    a calendar added to :mod:`bsync.registry` is listed without editing this file."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if param.name == "pairs":
                param.help = pairs_help()  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


class StepPrinter:
    """Shows a pipeline's steps as they finish: a progress bar while a pair applies many
    writes, then its plan or summary.  With --json the summaries are printed together at
    the end (:meth:`close`, also after an error), the notices' inside the last one (SPEC §3)."""

    def __init__(self, ctx: Context, settings: Settings, *, plan_only: bool) -> None:
        self.ctx, self.settings, self.plan_only = ctx, settings, plan_only
        self.progress = ProgressBar(ctx, "applying")
        self.held: list[dict[str, Any]] = []

    def on_plan(self, plan: Any) -> None:
        if not self.plan_only and sum(1 for a in plan.actions if a.op != "skip") >= self.progress.threshold:
            self.progress.description = f"applying {plan.pair}"
            self.progress.start(len(plan.actions))

    def on_action(self, action: Any) -> None:
        self.progress.advance()

    def show(self, step: Step) -> None:
        self.progress.stop()
        ctx = self.ctx
        if isinstance(step, InboxStep):
            if step.counts and not ctx.json:
                ctx.out.print("inbox: " + ", ".join(f"{n} {state}" for state, n in sorted(step.counts.items())))
        elif isinstance(step, PlatformStep) and not step.pulled:  # the platform step of every sync: text only
            if step.result is not None and step.result.summary is not None and not ctx.json:
                render.print_summary(ctx.out, step.result.summary)
        elif isinstance(step, (PlatformStep, CalendarStep)):
            assert step.result is not None
            self._pair(step.result)
        elif isinstance(step, NoticeStep):
            summary = step.result.summary
            if ctx.json and self.held:
                self.held[-1]["notifications"] = summary.as_json()  # the sync summary says what was sent
            elif not ctx.json and (summary.sent or summary.errors or summary.uncertain or ctx.verbose):
                render.print_notify_summary(ctx.out, summary)

    def _pair(self, result: Any) -> None:
        ctx, settings = self.ctx, self.settings
        if self.plan_only:
            if ctx.json:
                render.print_json(ctx.out, result.plan.as_json())
            else:
                render.print_plan(ctx.out, result.plan, show_skips=ctx.verbose > 0, tz=settings.tz,
                                  history=settings.sync.history,
                                  pages_per_second=settings.notion.requests_per_second if settings.notion else None)
        elif ctx.json:
            self.held.append(result.summary.as_json())
        else:
            render.print_summary(ctx.out, result.summary)

    def close(self) -> None:
        self.progress.stop()
        for doc in self.held:
            render.print_json(self.ctx.out, doc)


@app.command(cls=PairsCommand)
def sync(
    pairs: Annotated[Optional[list[str]], typer.Argument(help=pairs_help())] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would change; write nothing anywhere (not even the state DB).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Apply even when the safety halt trips (mass deletion or cancellation, an empty side), for this run only.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Read everything instead of only what changed since the last run.")] = False,
    since: Annotated[Optional[str], typer.Option("--since", help="Read Notion pages edited since T (ISO 8601 like 2026-11-20T08:00Z, or a duration ago like 6h or 2d).")] = None,
    notify_existing: Annotated[bool, typer.Option("--notify-existing", help="On the first run with notifications on, also confirm the bookings that already exist (default: record them without emailing).")] = False,
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Sync bookings between Notion and Google Calendar: plan, then apply exactly that plan.

    notion-to-gcal makes the calendar follow Notion (events created, patched, cancelled;
    the event id is written back to the page).  gcal-to-notion makes Notion follow the
    calendar and imports events made there.  Both (the default) is a two-way sync that
    merges field by field; the same field changed on both sides is settled by [sync]
    conflict.  Only what changed since the last run is read (--full reads everything).
    Safe to re-run or interrupt: nothing is ever duplicated.
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    printer: StepPrinter | None = None
    try:
        settings = ctx.settings()
        chosen = list(pairs or settings.sync.pairs)
        if chosen[:1] == ["pull"]:  # `bsync sync pull calcom`
            chosen = [_platform_pull_pair(chosen[1:])]
        printer = StepPrinter(ctx, settings, plan_only=plan)
        # A plan shows the pairs asked for; the step giving stored platform bookings their
        # pages runs with every real sync.
        result = run_pipeline(settings, pairs=chosen, plan_only=plan, force=force, full=full,
                              since=parse_since(since) if since else None, platforms=not plan,
                              notify_existing=notify_existing, on_plan=printer.on_plan,
                              on_action=printer.on_action, on_step=printer.show)
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    finally:
        if printer is not None:
            printer.close()
    raise typer.Exit(result.exit_code)


def _platform_pull_pair(names: list[str]) -> str:
    """``bsync sync pull NAME``: the pair of one pullable platform of the registry."""
    from bsync import registry

    pullable = registry.pullable_platforms()
    if len(names) != 1 or names[0] not in pullable:
        raise UsageError(f"`bsync sync pull` takes one platform that can be pulled: {', '.join(pullable)}")
    return registry.platform_pair(names[0])


def parse_option(option: str, text: str, parse: Any, example: str) -> Any:
    """Parse a command-line value; a UsageError naming the option and an example if it's bad."""
    try:
        return parse(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: give {example}") from None


def parse_since(text: str) -> Any:
    """``--since``: an ISO 8601 instant, or a duration ago (``6h``, ``2d``)."""
    from datetime import datetime, timezone

    from bsync.core.timeutil import parse_duration, parse_instant

    try:
        return datetime.now(timezone.utc) - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_instant(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: give an ISO 8601 time with an offset (2026-11-20T08:00Z) "
                         f"or a duration like 6h or 2d") from None


@app.command()
def resolve(
    key: Annotated[str, typer.Argument(help="The conflict's key as `bsync status` shows it (notion:1a2b…), or the Notion page id (with or without dashes) or the page's URL.")],
    take: Annotated[str, typer.Option("--take", help="Which side's values win: notion or gcal.")],
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Settle a conflict left by [sync] conflict = "manual"; the next sync applies it.

    An unknown or ambiguous id exits 2 and lists the open conflicts."""
    from bsync.ops.conflicts import check_side, resolve_conflict

    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        check_side(take)
        settings = ctx.settings()
        from bsync.core.runs import command_run

        with command_run(settings.state_path, "resolve") as run:
            run.summary = {"key": key, "take": take}
            settled = resolve_conflict(settings, key, take)
            run.summary["key"] = settled
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    ctx.out.print(f"{settled}: {take} wins; run `bsync sync` to apply it")


@app.command()
def remind(
    plan: Annotated[bool, typer.Option("--plan", help="List what would be sent, to whom (masked) and why; send and write nothing.")] = False,
    window: Annotated[Optional[str], typer.Option("--window", help="How often you run remind (default [reminders] window, 15m): a reminder may go this much early, never late. Use 24h for a once-a-day cron.")] = None,
    notify_existing: Annotated[bool, typer.Option("--notify-existing", help="On the first pass, also confirm bookings that already existed (default: record them without emailing).")] = False,
    resend_uncertain: Annotated[bool, typer.Option("--resend-uncertain", help="Send again the messages an interrupted run may or may not have sent.")] = False,
    dismiss_uncertain: Annotated[bool, typer.Option("--dismiss-uncertain", help="Record those uncertain messages as delivered (you checked they went out).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --resend-uncertain: resend uncertain emails without asking (probably delivered).")] = False,
    now: Annotated[Optional[str], typer.Option("--now", help="Evaluate as of this ISO 8601 time (testing, catching up).")] = None,
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Send due reminders ([reminders] leads × channels) and any pending notices, each once.

    Reminders respect [reminders] quiet_hours (deferred, not dropped), skip customers who
    opted out or have no address for the channel, and follow a booking that moved.  A run
    killed mid-send never resends: the message is reported as uncertain instead.
    Exit 1 when a message failed or is uncertain.
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        settings = ctx.settings()
        if resend_uncertain and dismiss_uncertain:
            raise UsageError("--resend-uncertain and --dismiss-uncertain contradict each other; pick one")
        from bsync.notices.send import run_notifications

        from bsync.core.timeutil import parse_duration, parse_instant

        if window is not None:
            parse_option("--window", window, parse_duration, "a duration like 15m, 1h or 24h")
        when = parse_option("--now", now, parse_instant, "an ISO 8601 time with an offset, like 2026-11-24T08:00+01:00") \
            if now else None
        progress = ProgressBar(ctx, "sending")
        try:
            result = run_notifications(settings, plan_only=plan, window=window, resend_uncertain=resend_uncertain,
                                       dismiss_uncertain=dismiss_uncertain, notify_existing=notify_existing, now=when,
                                       confirm_resend=lambda emails: yes or confirm_email_resend(len(emails)),
                                       on_plan=lambda p: progress.start(len(p.by_op("send"))),
                                       on_message=lambda m: progress.advance() if m.op == "send" else None)
        finally:
            progress.stop()
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    if plan:
        if ctx.json:
            render.print_json(ctx.out, {"command": "remind", "messages": [render.message_json(m, settings.tz)
                                                                          for m in result.plan.messages]})
        else:
            render.print_notify_plan(ctx.out, result.plan, tz=settings.tz, show_skips=ctx.verbose > 0)
        raise typer.Exit(1 if result.plan.by_op("uncertain") else 0)
    assert result.summary is not None
    if ctx.json:
        render.print_json(ctx.out, result.summary.as_json())
    else:
        render.print_notify_summary(ctx.out, result.summary)
    raise typer.Exit(result.summary.exit_code)


def confirm_email_resend(count: int) -> bool:
    """Ask at a terminal before emailing customers again; elsewhere (cron, scripts) a usage
    error: the uncertain emails were probably delivered, so a resend needs a yes."""
    what = f"{count} uncertain email(s) were probably delivered already; sending them again may duplicate them"
    if not sys.stdin.isatty():
        raise UsageError(f"--resend-uncertain: {what}; add --yes to send them anyway",
                         hint="or `bsync remind --dismiss-uncertain` to record them as delivered")
    return typer.confirm(f"{what}. Send again?", default=False)


@app.command()
def reconcile(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe (create, patch or cancel events; cancel or delete, per [sync] delete_policy, the events of bookings gone from Notion; re-link; drop mapping rows that point at nothing) through the sync planner.")] = False,
    plan: Annotated[bool, typer.Option("--plan", help="With --fix: show the repair plan, write nothing.")] = False,
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Cross-check Notion, Google Calendar, the platform bookings and the state DB.

    Reports, with ids: scheduled bookings without an event or with an event at other
    times; cancelled bookings still blocking time; events whose booking is gone; events
    made in the calendar (listed, not drift); platform bookings missing from Notion or
    different there; double bookings of a staff member; mapping rows pointing at nothing;
    unfinished, failed or dead writes.  Reads everything (no incremental shortcut).
    --fix never touches double bookings and never deletes a Notion page.
    Exit 0 when clean, 1 when drift remains.
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        settings = ctx.settings()
        if plan and not fix:
            raise UsageError("--plan goes with --fix (plain `bsync reconcile` writes nothing anyway)")
        from bsync.ops.reconcile import run_reconcile

        result = run_reconcile(settings, fix=fix, plan_only=plan)
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    if ctx.json:
        render.print_json(ctx.out, render.reconcile_json(result, fix=fix))
    else:
        render.print_reconcile(ctx.out, result, show_plans=plan, tz=settings.tz)
    raise typer.Exit(0 if plan else result.final.exit_code)


@app.command()
def retry(config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
          verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text") -> None:
    """Try again the writes that failed too often (dead letters), then sync."""
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    printer: StepPrinter | None = None
    try:
        settings = ctx.settings()
        from bsync.core.pipeline import calendar_pairs
        from bsync.core.runs import command_run
        from bsync.core.store import RunLock

        with command_run(settings.state_path, "retry") as run:  # the steps it runs are recorded as well
            with RunLock(settings.state_path), Store.open(settings.state_path) as store:
                revived = store.revive_dead()
            run.summary = {"revived": revived}
            if not ctx.json:
                ctx.out.print(f"{revived} dead letter(s) will be tried again")
            printer = StepPrinter(ctx, settings, plan_only=False)
            result = run_pipeline(settings, pairs=calendar_pairs(settings), on_plan=printer.on_plan,
                                  on_action=printer.on_action, on_step=printer.show)
            run.finish(result.exit_code, run.summary)
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    finally:
        if printer is not None:
            printer.close()
    raise typer.Exit(result.exit_code)


@app.command()
def status(config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
           verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
           runs: Annotated[int, typer.Option("--runs", help="How many recent runs to show.")] = 10,
           metrics: Annotated[Optional[Path], typer.Option("--metrics", help="Write Prometheus metrics to this file (node_exporter textfile collector), atomically, instead of printing the dashboard: nothing goes to stdout, errors to stderr. With --json the JSON is printed as well.")] = None) -> None:
    """Did last night's sync work?  Last run per command (time, duration, exit code,
    counts, last success; the steps of a sync, such as notify, nested under it), the last
    reconcile's findings, the next scheduled run, cursors and their ages, open conflicts,
    failed or dead writes, the webhook backlog, notifications needing attention and the
    Google token's age.  Times are in the business timezone.

    Reads the state DB only; never contacts a provider and records no run.  --json for
    monitoring; --metrics FILE for cron (silent unless something is wrong).
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        settings = ctx.settings()
        from bsync.ops.status import collect_status, prometheus_text, write_metrics
        from bsync.core.timeutil import now_utc

        with Store.open_readonly(settings.state_path) as store:
            data = collect_status(settings, store, now_utc(), runs=runs)
        if metrics is not None:
            write_metrics(metrics, prometheus_text(data))
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    except OSError as exc:
        raise fail(ctx, UsageError(f"--metrics {metrics}: {exc.strerror or exc}")) from None
    if ctx.json:
        render.print_json(ctx.out, data)
        return
    if metrics is not None:
        return  # for a cron job: written, and silent
    ctx.out.print(f"state: {data['state_path']}")
    if not data["runs"]:
        ctx.out.print("no runs yet: try `bsync sync --plan`, then `bsync sync`")
    for table in render.status_tables(data):
        ctx.out.print(table)


@app.command()
def availability(
    date_: Annotated[list[str], typer.Option("--date", help="A day: YYYY-MM-DD, today, tomorrow, or a weekday (monday or mon: the next one, today included), in the business timezone and as of --now; repeat for several days.")],
    to: Annotated[Optional[str], typer.Option("--to", help="Last day of a range starting at --date (same forms; a weekday is the first one on or after --date).")] = None,
    duration: Annotated[Optional[int], typer.Option("--duration", help="Minutes (default [availability] duration).")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Minutes between slot starts (default: the duration).")] = None,
    calendar: Annotated[Optional[list[str]], typer.Option("--calendar", help="A calendar backend by name (gcal, caldav: its own calendar) or a calendar id of the synced one; repeatable (default [availability] calendars).")] = None,
    busy: Annotated[Optional[Path], typer.Option("--busy", help="Busy times from a JSON list of {start,end} or an .ics file instead of the calendars.")] = None,
    now: Annotated[Optional[str], typer.Option("--now", help="Evaluate min_notice/max_advance as of this time (ISO 8601).")] = None,
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Free slots for a service: working hours minus busy time (the calendars' free/busy: Google freeBusy,
    one request per 90 days and 50 calendars, or CalDAV's; plus scheduled bookings bsync knows), with buffers,
    minimum notice and maximum advance.  Times are in the business timezone."""
    from bsync.availability.query import availability as compute, requested_days
    from bsync.core.timeutil import now_utc, parse_instant

    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        settings = ctx.settings()
        when = parse_option("--now", now, parse_instant, "an ISO 8601 time with an offset, like 2026-11-24T08:00+01:00") \
            if now else None
        days = requested_days(date_, to, today=(when or now_utc()).astimezone(settings.tz).date())
        result = compute(settings, days, duration=duration, step=step, calendars=calendar or None,
                         busy_file=busy, now=when)
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    if ctx.json:
        render.print_json(ctx.out, result)
        return
    for table in render.availability_tables(result):
        ctx.out.print(table)


@app.command()
def serve(host: Annotated[Optional[str], typer.Option("--host", help="Listen address (default [server] host, 127.0.0.1).")] = None,
          port: Annotated[Optional[int], typer.Option("--port", help="Port (default [server] port, 8080).")] = None,
          config: ConfigOpt = None, state: StateOpt = None, verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text") -> None:
    """Receive webhooks (Cal.com, Sesami, Notion) and serve /healthz and POST /sync.

    Each delivery is verified and stored in the inbox before it is acknowledged, then acted
    on in the background: platform bookings reach Notion, and Notion and the calendar are
    synced.  Put it behind HTTPS (a reverse proxy); it listens on loopback by default.
    A port outside 1–65535, already in use, or an address this machine lacks exits 2.
    """
    ctx = Context(config, state, False, verbose, quiet, log_file, log_format)
    try:
        settings = ctx.settings()
        from bsync.serve.app import serve as run_server

        run_server(settings, host, port)
    except BsyncError as exc:
        raise fail(ctx, exc) from None


@app.command()
def demo(keep: Annotated[Optional[Path], typer.Option("--keep", help="Keep the demo's config and state in this folder.")] = None,
         calendar: Annotated[str, typer.Option("--calendar", help="The calendar to run on: gcal (the Google emulator) or caldav (a real Radicale started on loopback; needs the test extras).")] = "gcal",
         verbose: VerboseOpt = 0) -> None:
    """Run the whole flow on the built-in sandbox: no account, no network beyond loopback.

    Starts emulated Notion and Google Calendar servers, seeds sample bookings (one malformed,
    one cancelled), then shows the plan, the sync, a rerun that changes nothing, an edit in
    Notion flowing to the calendar, and the status dashboard.
    """
    from bsync.ops.demo import run_demo

    ctx = Context(None, None, False, verbose, False)
    try:
        run_demo(ctx.out, keep=keep, calendar_name=calendar)
    except BsyncError as exc:
        raise fail(ctx, exc) from None


@app.command()
def doctor(config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
           verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None,
           log_format: LogFormatOpt = "text") -> None:
    """Check a setup before it fails at 06:00, one line per check.

    Config and timezone; the state DB (integrity, migrations, mode 0600); one cheap
    authenticated call per configured provider (Notion, Google Calendar, Cal.com, SendGrid,
    Twilio) with what to do on 401/403 or an unshared database; the Google token's age;
    the clock against the servers' Date header.  Exit 1 if any check fails.
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    from bsync.ops.doctor import exit_code, run_checks

    checks = run_checks(config, state_path=state)
    if ctx.json:
        render.print_json(ctx.out, {"ok": exit_code(checks) == 0, "checks": [c.as_json() for c in checks]})
    else:
        style = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
        for check in checks:
            line = f"[{style.get(check.status, '')}]{check.status.upper():<5}[/] {check.name:<16} {escape(check.detail)}"
            ctx.out.print(line + (f"\n{'':22}[dim]→ {escape(check.hint)}[/]" if check.hint else ""))
    raise typer.Exit(exit_code(checks))


auth_app = typer.Typer(help="Sign in to the providers that need it (Google).", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(auth_app, name="auth")


@auth_app.command("google")
def auth_google(
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the sign-in URL instead of opening a browser (over SSH: forward the printed port with ssh -L first).")] = False,
    port: Annotated[int, typer.Option("--port", help="Local port Google redirects to (default: a free one). Fix it to set up an SSH port-forward in advance.")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the sign-in.")] = 300,
    config: ConfigOpt = None, state: StateOpt = None, json_out: JsonOpt = False,
    verbose: VerboseOpt = 0, quiet: QuietOpt = False, log_file: LogFileOpt = None, log_format: LogFormatOpt = "text",
) -> None:
    """Sign in to Google (installed-app OAuth flow) and store a refreshable token.

    Needs [google] credentials_file (the OAuth client JSON of a Desktop app, from Google
    Cloud Console → APIs & Services → Credentials) and token_file (where the token goes,
    mode 0600).  Runs refresh the token by themselves; run this again only when bsync
    says the token was revoked or lapsed (exit 4).  A service-account credentials_file
    needs no sign-in.
    """
    ctx = Context(config, state, json_out, verbose, quiet, log_file, log_format)
    try:
        from bsync.calendars.google_auth import auth_url_instructions, authorize_installed_app, browser_available

        settings = ctx.settings()
        google = settings.require("google")
        opened = not no_browser and browser_available()
        info = authorize_installed_app(google, open_browser=not no_browser, port=port, timeout_s=timeout,
                                       on_url=lambda url: ctx.err.print(auth_url_instructions(url, browser_opened=opened),
                                                                        markup=False, highlight=False))
    except BsyncError as exc:
        raise fail(ctx, exc) from None
    if ctx.json:
        render.print_json(ctx.out, info.as_dict())
        return
    ctx.out.print(f"[green]✓[/] stored a refreshable token in {escape(str(info.path))} (mode 0600)")
    if info.warning:
        ctx.out.print(f"[yellow]warning:[/] {escape(info.warning)}")


@app.command()
def version() -> None:
    """Print bsync's version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point: what escapes a command becomes one line and an exit code.

    A BsyncError a command did not catch is printed like any other.  An ``sqlite3.Error``
    or ``OSError`` (a full disk, a read-only file system, a damaged state DB found mid-run)
    is named with the state DB's path and a fix (:mod:`bsync.core.failures`); ``-v`` adds the
    traceback for a bug report.
    """
    import sqlite3

    from bsync.core.failures import boundary_error

    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]: the next run will pick up where this one stopped")
        sys.exit(130)
    except BsyncError as exc:
        raise SystemExit(fail(_current, exc).exit_code) from None
    except (sqlite3.Error, OSError) as exc:
        if _current is not None and _current.verbose:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        error = boundary_error(exc, _current.state_path if _current else None)
        raise SystemExit(fail(_current, error).exit_code) from None


if __name__ == "__main__":
    main()
