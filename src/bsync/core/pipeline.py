"""The one pipeline every run that moves bookings goes through: inbox → platforms →
calendar pairs → notices.

Each step feeds the next: a webhook delivery waiting in the inbox becomes a platform
booking; platform bookings become ledger records (Notion pages); ledger records and
calendar events are synced pair by pair; and whatever changed is told to the customer.
``bsync sync``, ``bsync retry``, the ``bsync serve`` worker (and its ``POST /sync``) and
``bsync reconcile --fix`` all call :func:`run_pipeline`: they choose which steps run and
how (a plan, a full read, which pairs), while the order, the run lock and the exit code
are decided here, once.

Which pairs exist comes from :mod:`bsync.registry`: a calendar pair (``notion-to-gcal``)
syncs the ledger with that calendar, a platform pair (``calcom-to-notion``) pulls that
platform first.  A run that writes holds the run lock from its first step to its last, so
no other run slips in between the inbox and the notices (the lock is re-entrant, so each
step may take it again); ``--plan`` writes nothing, not even the lock file.

Steps are reported as they finish (``on_step``), so a command prints each one while the
next runs, and what was printed before an error stays printed.  Each step imports its
modules when it runs: the CLI loads this module for every command, ``bsync status`` too,
and must not pay for the provider clients.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from bsync import registry
from bsync.config import Settings
from bsync.core.runs import PairResult
from bsync.core.store import RunLock, Store
from bsync.errors import UsageError

if TYPE_CHECKING:
    from bsync.notices.send import NotifyResult

NOTICES_COMMAND = "notify"
"""What the notice step is recorded as in ``runs`` (``status`` shows it under ``sync``)."""


# -- which pairs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSelection:
    """The pairs a run was asked for, sorted into steps: the platforms to pull, and each
    calendar's pairs (one pair is one way; both pairs of a calendar are its two-way sync)."""

    pulls: tuple[str, ...] = ()
    calendars: dict[str, list[str]] = field(default_factory=dict)


def select_pairs(pairs: Iterable[str]) -> PairSelection:
    """Sort pair names into steps (in the order given, each once); an unknown name is a
    UsageError listing the names the registry knows."""
    pullable = {registry.platform_pair(name): name for name in registry.pullable_platforms()}
    pulls: list[str] = []
    calendars: dict[str, list[str]] = {}
    for pair in dict.fromkeys(pairs):
        if pair in pullable:
            pulls.append(pullable[pair])
        elif (calendar_pair := registry.parse_calendar_pair(pair)) is not None:
            calendars.setdefault(calendar_pair.calendar, []).append(pair)
        else:
            raise UsageError(unknown_pair(pair))
    return PairSelection(tuple(pulls), calendars)


def unknown_pair(pair: str) -> str:
    """The error for a pair name nobody registered: what is known, and the ``pull`` forms."""
    pulls = ", ".join(f"`pull {name}`" for name in registry.pullable_platforms())
    return f"unknown pair {pair!r}; known pairs: {', '.join(registry.all_pairs())}" + (f" (and {pulls})" if pulls else "")


def configured(settings: Settings, entry: registry.Entry) -> bool:
    """Whether the config has the section ``entry`` is configured by."""
    return getattr(settings, entry.section, None) is not None


def calendar_pairs(settings: Settings) -> list[str]:
    """The calendar pairs of ``[sync] pairs``: what retry, the receiver and reconcile sync
    (platform pairs pull from the platform's API, which only ``bsync sync`` asks for)."""
    return [pair for pair in settings.sync.pairs if registry.parse_calendar_pair(pair) is not None]


def configured_calendar_pairs(settings: Settings) -> list[str]:
    """:func:`calendar_pairs` whose ledger and calendar both have their sections: the receiver
    runs what it can, where a command names the section that is missing."""
    if not configured(settings, registry.LEDGER):
        return []
    return [pair for calendar, pairs in select_pairs(calendar_pairs(settings)).calendars.items()
            if configured(settings, registry.CALENDARS[calendar]) for pair in pairs]


# -- what each step did --------------------------------------------------------------------
@dataclass(frozen=True)
class InboxStep:
    """Webhook deliveries acted on: counts by outcome (``done``, ``ignored``, ``failed``, ``pruned``)."""

    counts: dict[str, int]
    key = "inbox"

    @property
    def exit_code(self) -> int:
        return 1 if self.counts.get("failed") else 0

    def as_json(self) -> Any:
        return self.counts


@dataclass(frozen=True)
class PlatformStep:
    """Platform bookings given their ledger records; ``pulled``: the platforms were read first
    (a platform pair was asked for).  ``result`` is None when there was nothing to do."""

    result: PairResult | None
    pulled: bool = False
    key = "platforms"

    @property
    def exit_code(self) -> int:
        return self.result.exit_code if self.result is not None else 0

    def as_json(self) -> Any:
        return self.result.summary.as_json() if self.result is not None and self.result.summary else None


@dataclass(frozen=True)
class CalendarStep:
    """One calendar synced with the ledger (one way, or both: the two-way sync)."""

    calendar: str
    result: PairResult
    key = "sync"

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    def as_json(self) -> Any:
        return self.result.summary.as_json() if self.result.summary else None


@dataclass(frozen=True)
class NoticeStep:
    """Confirmations, change and cancellation notices for what the run changed."""

    result: NotifyResult
    key = "notify"

    @property
    def exit_code(self) -> int:
        return self.result.summary.exit_code if self.result.summary is not None else 0

    def as_json(self) -> Any:
        return self.result.summary.as_json() if self.result.summary else None


Step = InboxStep | PlatformStep | CalendarStep | NoticeStep
AnyStep = TypeVar("AnyStep", InboxStep, PlatformStep, CalendarStep, NoticeStep)


@dataclass
class PipelineResult:
    """Every step that ran, in order; the run's exit code is the worst of theirs."""

    steps: list[Step] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((step.exit_code for step in self.steps), default=0)

    @property
    def calendars(self) -> list[CalendarStep]:
        return [step for step in self.steps if isinstance(step, CalendarStep)]

    def step(self, kind: type[AnyStep]) -> AnyStep | None:
        """The step of this kind that ran (the first, for calendars), or None."""
        return next((step for step in self.steps if isinstance(step, kind)), None)

    def as_json(self) -> dict[str, Any]:
        """``{"inbox", "platforms", "sync", "notify"}``, each present when its step ran (what
        ``POST /sync`` answers).  A second calendar's summary is ``"sync <calendar>"``."""
        out: dict[str, Any] = {}
        for step in self.steps:
            key = step.key
            if isinstance(step, CalendarStep) and key in out:
                key = f"{key} {step.calendar}"
            out[key] = step.as_json()
        return out


# -- running it ----------------------------------------------------------------------------
def run_pipeline(settings: Settings, *, pairs: Iterable[str] | None = None, plan_only: bool = False,
                 force: bool = False, full: bool = False, since: datetime | None = None,
                 inbox: bool = True, platforms: bool = True, notify: bool = True, notify_existing: bool = False,
                 wait: bool = False, on_plan: Callable[[Any], None] | None = None,
                 on_action: Callable[[Any], None] | None = None,
                 on_step: Callable[[Step], None] | None = None) -> PipelineResult:
    """Run the steps asked for, in the pipeline's order, and say what each did.

    * ``pairs``: the pairs to run (default ``[sync] pairs``).  A platform pair pulls that
      platform and gives its bookings their ledger records (with ``force``/``full``, and
      ``on_plan``/``on_action``, like a calendar pair); calendar pairs run per calendar.
    * ``inbox``: act on stored webhook deliveries first (never under ``plan_only``).
    * ``platforms``: give platform bookings already stored their ledger records, when no
      platform pair was asked for (which does that itself) and the ledger is configured.
    * ``notify``: send notices last (never under ``plan_only``); their setup (templates,
      channels) is checked before the first step, so a broken one stops the run before it
      changes anything.
    * ``since``: read ledger records edited since then (calendar pairs only).
    * ``wait``: wait for the run lock instead of failing with exit 3 (the receiver).
    """
    selection = select_pairs(settings.sync.pairs if pairs is None else pairs)
    notices = notify and _notices_enabled(settings)
    result = PipelineResult()

    def finished(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    with ExitStack() as stack:
        if not plan_only:
            stack.enter_context(RunLock(settings.state_path, wait=wait))
        if inbox and not plan_only:
            finished(InboxStep(_process_inbox(settings)))
        for name in selection.pulls:
            finished(PlatformStep(_pull_platform(settings, name, plan_only=plan_only, force=force, full=full,
                                                 on_plan=on_plan, on_action=on_action), pulled=True))
        if not selection.pulls and platforms and configured(settings, registry.LEDGER):
            from bsync.platforms.pairs import run_platform_pairs

            finished(PlatformStep(run_platform_pairs(settings, plan_only=plan_only)))
        if selection.calendars:
            from bsync.core.sync import run_sync

            for calendar, chosen in selection.calendars.items():
                finished(CalendarStep(calendar, run_sync(settings, chosen, plan_only=plan_only, force=force,
                                                         full=full, since=since, on_plan=on_plan,
                                                         on_action=on_action)))
        if notices and not plan_only:
            from bsync.notices.send import run_notifications

            finished(NoticeStep(run_notifications(settings, command=NOTICES_COMMAND, reminders=False,
                                                  report_bad_pages=False, notify_existing=notify_existing)))
    return result


def _notices_enabled(settings: Settings) -> bool:
    """Whether this run ends with notices; if so, their setup is checked now (ConfigError)."""
    from bsync.notices.send import check_templates, notifications_enabled

    if not notifications_enabled(settings):
        return False
    check_templates(settings)
    return True


def _process_inbox(settings: Settings) -> dict[str, int]:
    from bsync.platforms.inbox import process_inbox

    with Store.open(settings.state_path) as store:
        return process_inbox(settings, store)


def _pull_platform(settings: Settings, name: str, **options: Any) -> PairResult:
    """Pull platform ``name`` (its section is required), then give every platform booking
    its ledger record."""
    from bsync.platforms.pairs import run_platform_pull

    return run_platform_pull(settings, name, **options)
