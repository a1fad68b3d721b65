"""``bsync status``: "did last night's sync work?" from the state DB alone (no provider calls).

:func:`collect_status` gathers the dashboard's data (last run per command, the last
success, cursors and their ages, open conflicts, unfinished writes, inbox backlog,
notifications needing attention, the age of each calendar's saved sign-in (the Google
token's), the next scheduled run when it can be known); :func:`prometheus_text` renders it for node_exporter's textfile collector.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bsync import registry
from bsync.config import Settings
from bsync.core.pipeline import NOTICES_COMMAND
from bsync.core.store import Store
from bsync.core.timeutil import parse_instant

PARTS = {NOTICES_COMMAND: "sync", "platforms": "sync"}
"""Runs recorded by the steps of a sync (and of the webhook receiver's processing), which
nobody starts as a command of their own: status shows them under the command they belong to."""


def command_family(command: str) -> str:
    """``sync notion-to-gcal`` -> ``sync``; ``sync pull calcom`` -> ``pull calcom``."""
    if command.startswith("sync pull"):
        return command.removeprefix("sync ")
    return command.split(" ", 1)[0]


def _part_of(run: dict[str, Any]) -> str | None:
    """The command a run was a step of: the command run it recorded (the sync of a
    ``retry``), else the one its kind always belongs to (``notify`` of ``sync``)."""
    parent = (run.get("summary") or {}).get("part_of") if isinstance(run.get("summary"), dict) else None
    if isinstance(parent, dict) and parent.get("command"):
        return str(parent["command"])
    return PARTS.get(command_family(run["command"]))


def _age(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, (now - parse_instant(value)).total_seconds())
    except ValueError:
        return None


def last_runs(store: Store) -> dict[str, dict[str, Any]]:
    """Per command family: the last run and the last successful one (exit 0); a family that
    is a step of another command (``notify`` of ``sync``) says so in ``part_of``.

    A business with two calendars records one ``sync`` run per calendar, so the last one
    would hide the other's failure: then ``sync`` also has ``calendars``, the last run and
    last success of each (see :func:`_sync_runs_by_calendar`)."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.run_history(2000):
        family = command_family(row["command"])
        entry = out.setdefault(family, {"last": None, "last_success": None,
                                        **({"part_of": PARTS[family]} if family in PARTS else {})})
        if entry["last"] is None:
            entry["last"] = dict(row, summary=store.run_summary(row["id"]))
        if entry["last_success"] is None and row["exit_code"] == 0:
            entry["last_success"] = _run_ref(row)
    calendars = _sync_runs_by_calendar(store)
    if len(calendars) > 1:
        out["sync"]["calendars"] = calendars
    return out


SYNC_RUNS_READ = 50
"""How many recent ``sync`` runs :func:`_sync_runs_by_calendar` opens the summaries of."""


def _run_ref(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "started_at": row["started_at"], "finished_at": row["finished_at"]}


def _sync_runs_by_calendar(store: Store) -> dict[str, dict[str, Any]]:
    """Calendar name -> the last ``sync`` run with it and its last success, among the recent
    ones (their summaries name the pair: ``notion<->caldav``); calendars in registry order."""
    found: dict[str, dict[str, Any]] = {}
    rows = [row for row in store.run_history(2000) if command_family(row["command"]) == "sync"][:SYNC_RUNS_READ]
    for row in rows:
        summary = store.run_summary(row["id"])
        calendar = _calendar_of((summary or {}).get("pair") if isinstance(summary, dict) else None)
        if calendar is None:
            continue
        entry = found.setdefault(calendar, {"last": dict(row, summary=summary), "last_success": None})
        if entry["last_success"] is None and row["exit_code"] == 0:
            entry["last_success"] = _run_ref(row)
    return {name: found[name] for name in registry.CALENDARS if name in found}


def _calendar_of(pair: Any) -> str | None:
    """The calendar a sync summary's pair names (``notion<->caldav``, ``notion-to-gcal``)."""
    if not isinstance(pair, str):
        return None
    parsed = registry.parse_calendar_pair(pair)
    if parsed is not None:
        return parsed.calendar
    name = pair.rpartition("<->")[2]
    return name if name in registry.CALENDARS else None


DAILY_TOLERANCE_MIN = 15
HISTORY_DAYS = 14


def _minutes_apart(a: int, b: int) -> int:
    """Distance between two times of day in minutes, across midnight (23:55 and 00:05: 10)."""
    d = abs(a - b) % 1440
    return min(d, 1440 - d)


def expected_from_history(starts: list[datetime], now: datetime, tz: Any) -> tuple[datetime | None, str]:
    """The next sync at the usual daily time, or None and why it can't be known.

    A time of day is usual when, on each of the last three days with a sync, a sync started
    within 15 minutes of it.  Extra runs on those days (by hand, or started by webhooks)
    don't hide the daily one; a day the timer missed does.  Several usual times (a morning
    and an evening cron) give the next one due.
    """
    by_day: dict[Any, list[int]] = {}
    for start in sorted(starts):
        local = start.astimezone(tz)
        by_day.setdefault(local.date(), []).append(local.hour * 60 + local.minute)
    days = sorted(by_day)[-3:]
    if len(days) < 3:
        return None, (f"unknown: syncs ran on {len(days)} day(s) in the last {HISTORY_DAYS}, and the usual time "
                      f"needs three (or a systemd bsync.timer)")
    usual = sorted({m for m in by_day[days[-1]]
                    if all(any(_minutes_apart(m, other) <= DAILY_TOLERANCE_MIN for other in by_day[day])
                           for day in days[:-1])})
    if not usual:
        return None, (f"unknown: the syncs of the last three days ({', '.join(d.isoformat() for d in days)}) "
                      f"share no start time within {DAILY_TOLERANCE_MIN} minutes")
    local_now = now.astimezone(tz)
    candidates = []
    for minute in usual:
        for offset in (0, 1):
            day = local_now.date() + timedelta(days=offset)
            at = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
            if at > now:
                candidates.append(at)
                break
    return min(candidates), "the usual time of the last three days' syncs"


def _sync_starts(store: Store, now: datetime) -> list[datetime]:
    """When the syncs of the last two weeks started (``sync pull calcom`` and the steps of a
    sync are not syncs of their own: they may run every few minutes)."""
    since = (now - timedelta(days=HISTORY_DAYS)).astimezone(timezone.utc).isoformat(timespec="seconds")
    rows = store.run_starts("sync", since)
    return [parse_instant(r["started_at"]) for r in rows if command_family(r["command"]) == "sync"]


def next_scheduled_run(store: Store, now: datetime, tz: Any) -> dict[str, Any]:
    """``{"at", "source"}`` from systemd's bsync.timer or the usual daily time; when neither
    knows, ``at`` is None and ``unknown`` says why."""
    timer = _systemd_next()
    if timer:
        return {"at": systemd_time(timer, tz), "source": "systemd bsync.timer"}
    expected, why = expected_from_history(_sync_starts(store, now), now, tz)
    if expected is None:
        return {"at": None, "source": None, "unknown": why}
    return {"at": expected.isoformat(), "source": why}


def systemd_time(value: str, tz: Any) -> str:
    """systemd's ``@1764738000`` (``--timestamp=unix``) as ISO 8601 in the business timezone;
    an older systemd's own format ("Thu 2026-12-03 06:00:00 CET") as it is."""
    if value.startswith("@") and value[1:].isdigit():
        return datetime.fromtimestamp(int(value[1:]), tz).isoformat()
    return value


def _systemd_next() -> str | None:
    """When systemd starts bsync.timer next (the user's timer, else the system's)."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return None
    for scope in (["--user"], []):
        for timestamp in (["--timestamp=unix"], []):  # the option needs systemd >= 248
            try:
                out = subprocess.run([systemctl, *scope, "show", "bsync.timer", "--property=NextElapseUSecRealtime",
                                      "--value", *timestamp], capture_output=True, text=True, timeout=2, check=False)
            except (OSError, subprocess.SubprocessError):
                continue
            value = out.stdout.strip()
            if out.returncode == 0 and value and value not in ("n/a", "0", "@0"):
                return value
    return None


def record_issue_status(store: Store, now: datetime) -> dict[str, Any]:
    """Source records that fail (with title and reason, since when) and drafts, as the last
    runs left them: a failing record stays listed until a read finds it valid or gone."""
    failing, drafts = [], []
    for row in store.record_issues().values():
        entry = {"id": row["key"], "title": row["title"] or "", "reason": row["reason"],
                 "since": row["first_seen"], "age_s": _age(row["first_seen"], now)}
        (drafts if row["kind"] == "draft" else failing).append(entry)
    return {"failing": failing, "drafts": drafts}


def last_drift(commands: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The last reconcile's findings by kind, with when and how it ended (None: never ran, or
    it stopped before comparing)."""
    last = (commands.get("reconcile") or {}).get("last")
    counts = ((last or {}).get("summary") or {}).get("counts")
    if last is None or not isinstance(counts, dict):
        return None
    counts = {str(kind): n for kind, n in counts.items() if isinstance(n, int) and not isinstance(n, bool)}
    return {"run": last["id"], "started_at": last["started_at"], "exit_code": last["exit_code"], "counts": counts}


def collect_status(settings: Settings, store: Store, now: datetime, *, runs: int = 10) -> dict[str, Any]:
    """Everything the dashboard and the metrics show."""
    by_command = last_runs(store)
    conflicts = [{"key": link.source_key, "event": link.target_key, "calendar": calendar, "since": link.synced_at,
                  "age_s": _age(link.synced_at, now), **link.conflict}
                 for calendar in registry.CALENDARS for link in store.conflicts(registry.link_pair(calendar))]
    labels = {entry.name: entry.label for entry in registry.entries()}
    cursors = [dict(c, label=labels.get(c["provider"], c["provider"]), age_s=_age(c["updated_at"], now))
               for c in store.cursors() if not c["scope"].endswith(":schema")]
    inbox = store.inbox_counts()
    oldest_pending = store.inbox_oldest_backlog()
    notifications = store.notification_counts()
    attention = store.notifications_needing_attention(20)
    recent = [dict(r, **({"part_of": part_of} if (part_of := _part_of(r)) else {})) for r in store.recent_runs(runs)]
    data: dict[str, Any] = {
        "state_path": str(settings.state_path),
        "now": now.isoformat(),
        "timezone": settings.timezone,
        "commands": by_command,
        "runs": recent,
        "next_run": next_scheduled_run(store, now, settings.tz),
        "drift": last_drift(by_command),
        "links": store.link_counts(),
        "cursors": cursors,
        "journal": store.journal_counts(sync_only=True),
        "unfinished": store.journal_entries(("intent", "failed", "dead"), limit=20, sync_only=True),
        "conflicts": conflicts,
        "inbox": {"counts": inbox, "backlog": sum(n for s, n in inbox.items() if s in ("pending", "failed", None)),
                  "oldest_pending": oldest_pending, "oldest_pending_age_s": _age(oldest_pending, now)},
        "notifications": {"counts": notifications, "attention": attention},
        **credential_reports(settings, now),
        "records": record_issue_status(store, now),
    }
    return data


def _stored_credentials() -> list[tuple[registry.Entry, Any]]:
    """Each calendar with a :class:`~bsync.calendars.base.StoredCredentials`, and it (a light
    import: status never loads a calendar's client)."""
    return [(entry, c) for entry in registry.CALENDARS.values() if (c := registry.credentials(entry)) is not None]


def credential_reports(settings: Settings, now: datetime) -> dict[str, Any]:
    """``{"google_token": {...}}``: each calendar's saved sign-in; None without its section."""
    return {credentials.status_key: credentials.report(section, now) if section is not None else None
            for entry, credentials in _stored_credentials()
            for section in (getattr(settings, entry.section, None),)}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(data: dict[str, Any]) -> str:
    """The status as Prometheus text exposition (node_exporter textfile collector)."""
    lines: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict[str, str], float | int | None]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            if value is None:
                continue
            label_text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    def ts(value: str | None) -> float | None:
        return parse_instant(value).timestamp() if value else None

    commands = data["commands"]
    metric("bsync_last_run_timestamp_seconds", "Start of the last run of each command.",
           [({"command": c}, ts(e["last"]["started_at"])) for c, e in sorted(commands.items())])
    metric("bsync_last_success_timestamp_seconds", "Start of the last run of each command that exited 0.",
           [({"command": c}, ts(e["last_success"]["started_at"]) if e["last_success"] else None)
            for c, e in sorted(commands.items())])
    metric("bsync_last_run_exit_code", "Exit code of the last run (-1: still running or killed).",
           [({"command": c}, e["last"]["exit_code"] if e["last"]["exit_code"] is not None else -1)
            for c, e in sorted(commands.items())])
    metric("bsync_last_run_duration_seconds", "Wall time of the last finished run.",
           [({"command": c}, (ts(e["last"]["finished_at"]) - ts(e["last"]["started_at"]))
             if e["last"]["finished_at"] else None) for c, e in sorted(commands.items())])
    counts: list[tuple[dict[str, str], float | int | None]] = []
    for c, e in sorted(commands.items()):
        summary = e["last"].get("summary") or {}
        for key in ("created", "updated", "deleted", "errors", "sent", "requests"):
            if isinstance(summary.get(key), int):
                counts.append(({"command": c, "count": key}, summary[key]))
    metric("bsync_last_run_count", "Counts from the last run's summary.", counts)
    from bsync.ops.reconcile import KINDS  # here: reconcile loads the calendar client, status must not

    drift = data.get("drift")
    metric("bsync_drift_findings", "Findings of the last `bsync reconcile` by kind (left after --fix).",
           [({"kind": kind}, drift["counts"].get(kind, 0)) for kind in sorted({*KINDS, *drift["counts"]})]
           if drift else [])
    metric("bsync_links", "Live mappings per pair.", [({"pair": p}, n) for p, n in sorted(data["links"].items())])
    metric("bsync_journal_entries", "Journal entries by state (failed/dead need attention).",
           [({"state": s}, data["journal"].get(s, 0)) for s in ("intent", "done", "failed", "dead")])
    metric("bsync_open_conflicts", "Conflicts waiting for `bsync resolve`.", [({}, len(data["conflicts"]))])
    records = data.get("records") or {"failing": [], "drafts": []}
    metric("bsync_records", "Source records that fail to sync (until fixed), and drafts waiting for a date.",
           [({"state": "failing"}, len(records["failing"])), ({"state": "draft"}, len(records["drafts"]))])
    metric("bsync_inbox_backlog", "Webhook deliveries not yet processed.", [({}, data["inbox"]["backlog"])])
    states = Counter(data["notifications"]["counts"])
    metric("bsync_notifications", "Notifications by state (intent = uncertain).",
           [({"state": s}, states.get(s, 0)) for s in ("sent", "intent", "failed", "suppressed")])
    for _, credentials in _stored_credentials():
        report = data.get(credentials.status_key) or {}
        metric(f"bsync_{credentials.status_key}_age_seconds", credentials.age_help, [({}, report.get("age_seconds"))])
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, text: str) -> None:
    """Write atomically (temp file + rename), as the textfile collector requires."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bsync-metrics-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
