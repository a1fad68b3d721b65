"""The machinery every run shares: opening the state DB under the run lock, recording the
run in ``runs``, the retry policy, and the summaries whose counts become the exit code.

It lives apart from any one kind of run so that sync, platform pulls, notices, reconcile
and the serve worker all reach it without importing each other.  Two ways to record a run:

* :func:`recorded_run`, for a pass that works on one store connection it already holds
  under the lock (a sync pair, a platform pair, a notification pass): the row shares the
  pass's connection, and ``--plan`` records nothing;
* :func:`command_run`, for a command that runs such passes (``retry``, ``reconcile``,
  ``resolve``): the row is written through short connections of its own, so the command
  can take the lock only where it writes.

A pass recorded while a command's run is open (the sync a ``retry`` runs, the repairs of
``reconcile --fix``) says so in its summary, ``"part_of": {"command", "run"}``, so status
can show it under that command; the ``runs`` table needs no column for it.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bsync.config import Settings
from bsync.core.plan import Plan
from bsync.core.retry import RetryPolicy
from bsync.core.store import RunLock, Store
from bsync.errors import BsyncError, SafetyHaltError


@dataclass(kw_only=True)
class RunCounts:
    """What every run's summary carries (sync, notifications): the records that failed and
    why, the requests made, and a safety halt.  ``runs`` stores it; the exit code follows."""

    total: int = 0
    errors: int = 0
    requests: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    halted: str | None = None

    def fail(self, record_id: str, reason: str, title: str = "") -> None:
        self.errors += 1
        self.failures.append({"id": record_id, "title": title, "reason": reason} if title
                             else {"id": record_id, "reason": reason})

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or self.halted else 0

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "errors": self.errors, "requests": self.requests, "failures": self.failures}


@dataclass
class Summary(RunCounts):
    """The sync summary of SPEC §3."""

    pair: str
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    conflicts: int = 0
    drafts: int = 0  # records skipped as not ready (no date yet); counted in skipped too
    notes: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = {"pair": self.pair, "total": self.total, "created": self.created, "updated": self.updated,
               "deleted": self.deleted, "skipped": self.skipped, "conflicts": self.conflicts,
               "errors": self.errors, "requests": self.requests, "failures": self.failures}
        if self.notes:
            out["notes"] = self.notes
        if self.drafts:
            out["drafts"] = self.drafts
        if self.halted:
            out["halted"] = self.halted
        return out


@dataclass
class PairResult:
    plan: Plan
    summary: Summary | None  # None for --plan

    @property
    def exit_code(self) -> int:
        """1 when records failed or the safety halt tripped: in the summary after a run, in the
        plan for ``--plan`` (which applies nothing, so only the plan can say)."""
        if self.summary is not None:
            return self.summary.exit_code
        return 1 if self.plan.failures or self.plan.halt else 0


def retry_policy(settings: Settings) -> RetryPolicy:
    s = settings.sync
    return RetryPolicy(max_retries=s.max_retries, base_delay=s.retry_base_delay, max_delay=s.retry_max_delay)


def open_store(stack: ExitStack, settings: Settings, plan_only: bool) -> Store:
    """The state store for a run: an in-memory copy for --plan, else the file under the run lock."""
    if plan_only:
        return stack.enter_context(Store.open_readonly(settings.state_path))
    stack.enter_context(RunLock(settings.state_path))
    return stack.enter_context(Store.open(settings.state_path))


@dataclass
class RunRecord:
    """A run's row in ``runs``: finished with the summary, or with the error that stopped it."""

    store: Store
    run_id: int | None
    pair: str
    requests: Callable[[], int]
    summary: RunCounts | None = None  # a sync Summary, or a notification pass's

    def halt_unless_forced(self, plan: Plan, force: bool) -> None:
        """The safety halt: record it and stop before any write, unless --force."""
        if plan.halt and not force:
            self.summary = Summary(plan.pair, total=len(plan.actions), halted=plan.halt)
            raise SafetyHaltError(f"safety halt: {plan.halt}; nothing was written",
                                  hint="check the source; if the plan is right, run again with --force")


_open_command: ContextVar[dict[str, Any] | None] = ContextVar("bsync_open_command_run", default=None)
"""The command run (``{"command", "run"}``) the passes recorded now belong to, if any."""


@contextmanager
def recorded_run(store: Store, command: str, pair: str, *, plan_only: bool,
                 requests: Callable[[], int]) -> Iterator[RunRecord]:
    """Record a run in ``runs`` (not for --plan): its summary, or the error that stopped it."""
    record = RunRecord(store, None if plan_only else store.start_run(command), pair, requests)
    parent = _open_command.get()
    part_of = {"part_of": parent} if parent else {}
    try:
        yield record
    except BsyncError as exc:
        if record.run_id is not None:
            payload = record.summary.as_json() if record.summary else {"pair": pair}
            payload.update(error=str(exc), requests=requests(), **part_of)
            store.finish_run(record.run_id, exc.exit_code, payload)
        raise
    finally:
        if record.summary is not None:
            record.summary.requests = requests()
    if record.run_id is not None and record.summary is not None and not record.summary.halted:
        store.finish_run(record.run_id, record.summary.exit_code, {**record.summary.as_json(), **part_of})


@dataclass
class CommandRun:
    """The ``runs`` row of a command that is not itself a sync pass (reconcile, retry, resolve)."""

    run_id: int
    exit_code: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def finish(self, exit_code: int, summary: dict[str, Any]) -> None:
        self.exit_code, self.summary = exit_code, summary


@contextmanager
def command_run(state_path: Path, command: str) -> Iterator[CommandRun]:
    """Record a run of ``command`` in ``runs``: started now, finished with the exit code and
    summary given to :meth:`CommandRun.finish`, or with the error that stopped it.

    The row is written through short connections of its own, without the run lock: the
    command takes the lock itself where it writes (a plain reconcile only reads, and must
    not be refused because a sync is running).  A process killed meanwhile leaves the row
    unfinished, which status shows as "running or killed".
    """
    with Store.open(state_path) as store:
        run = CommandRun(store.start_run(command))
    opened = _open_command.set({"command": command, "run": run.run_id})
    try:
        yield run
    except BsyncError as exc:
        with Store.open(state_path) as store:
            store.finish_run(run.run_id, exc.exit_code, {**run.summary, "error": str(exc)})
        raise
    finally:
        _open_command.reset(opened)
    with Store.open(state_path) as store:
        store.finish_run(run.run_id, run.exit_code, run.summary)
