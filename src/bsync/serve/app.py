"""``bsync serve``: the webhook receiver and admin endpoints (starlette, served by uvicorn).

Every delivery is verified, parsed and written to the durable inbox *before* the 2xx, and
acted on afterwards by a worker thread (or, if the process dies first, by the next sync).
Duplicates (same delivery id) are acknowledged and processed once; a bad signature is a
401 and is stored as unverified without acting; malformed JSON is 400; bodies over 1 MiB
are 413; deliveries older than ``[server] replay_window`` are refused as replays.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
from datetime import datetime, timezone
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bsync import registry
from bsync.config import Settings
from bsync.core.pipeline import PipelineResult, configured_calendar_pairs, run_pipeline
from bsync.ledger import notion_webhook
from bsync.platforms import intake
from bsync.platforms.base import Platform
from bsync.errors import BsyncError, LockHeldError
from bsync.core.store import Store
from bsync.core.timeutil import format_duration, parse_duration

log = logging.getLogger(__name__)


class Worker:
    """Acts on the inbox in the background: process deliveries, then sync (debounced).

    Its pipeline waits for the run lock (a cron sync holding it finishes first, and its
    own run processes the inbox too) and never runs beside another run.  Any failure,
    the state DB's included, is kept as :attr:`last_error` for ``/healthz`` and retried
    with a growing pause, so a transient outage heals without a new delivery.
    """

    RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0)

    def __init__(self, settings: Settings, debounce_s: float = 1.0) -> None:
        self.settings = settings
        self.debounce_s = debounce_s
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="bsync-inbox", daemon=True)
        self.last_error: str | None = None
        self.failures = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.stopped.is_set()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            self.wake.wait()
            if self.stopped.is_set():
                return
            self.stopped.wait(self.debounce_s)  # let a burst of deliveries gather
            self.wake.clear()
            try:
                run_after_deliveries(self.settings, sync=self.settings.server.run_sync_after_webhook, wait=True)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one failure
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BsyncError) else str(exc)
                log.warning("processing the inbox failed (attempt %d): %s", self.failures, self.last_error)
                delay = self.RETRY_DELAYS[min(self.failures, len(self.RETRY_DELAYS)) - 1]
                if not self.stopped.wait(delay):
                    self.wake.set()
            else:
                self.failures, self.last_error = 0, None


def run_after_deliveries(settings: Settings, *, sync: bool, wait: bool = False) -> PipelineResult:
    """The receiver's run of the pipeline: the inbox, then (``sync``) platform bookings to
    Notion, the calendar pairs that are configured and the notices (a booking made on
    Cal.com is confirmed within seconds), all under one hold of the run lock (``wait``:
    block until it is free).  Platforms are not pulled here: their webhooks are the feed."""
    return run_pipeline(settings, pairs=configured_calendar_pairs(settings) if sync else (),
                        platforms=sync, notify=sync, wait=wait)


def create_app(settings: Settings, *, worker: Worker | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Starlette:
    """The ASGI app.

    Request threads share one connection to the state DB (``receiver``), one at a time
    under ``db_lock``: the inbox write before each 2xx and the health check's reads.  The
    worker and ``POST /sync`` open their own, under the run lock.
    """
    window = parse_duration(settings.server.replay_window)
    stale_after = parse_duration(settings.server.stale_after)
    db_lock = threading.Lock()
    receiver = Store.open(settings.state_path)
    platforms: list[Platform] = [registry.build(entry, settings) for entry in registry.PLATFORMS.values()]

    def accept(provider: str, delivery_id: str, body: bytes) -> JSONResponse:
        with db_lock:
            fresh = receiver.inbox_add(provider, delivery_id, verified=True, payload=body.decode("utf-8"))
        if not fresh:
            return JSONResponse({"status": "duplicate", "delivery_id": delivery_id}, status_code=200)
        if worker is not None:
            worker.wake.set()
        return JSONResponse({"status": "accepted", "delivery_id": delivery_id}, status_code=202)

    def reject_unverified(provider: str, body: bytes, reason: str) -> JSONResponse:
        with db_lock:
            receiver.inbox_reject(provider, body, reason)
        return JSONResponse({"error": "invalid signature", "detail": reason}, status_code=401)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > intake.MAX_BODY:
            raise intake.TooLargeError(f"body of {length} bytes exceeds {intake.MAX_BODY}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > intake.MAX_BODY:
                raise intake.TooLargeError(f"body exceeds {intake.MAX_BODY} bytes")
        return body

    def problem(exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "http_status", 400))

    async def receive(provider: str, body: bytes, verify: Callable[[], None],
                      parse: Callable[[], Any]) -> JSONResponse:
        """The path of every signed delivery: verify (a bad signature is kept as rejected),
        parse (a malformed or replayed body is refused), then store it in the inbox."""
        try:
            verify()
        except intake.SignatureError as exc:
            return await run_in_threadpool(reject_unverified, provider, body, str(exc))
        try:
            delivery = parse()
        except intake.WebhookError as exc:
            return problem(exc)
        return await run_in_threadpool(accept, provider, delivery.delivery_id, body)

    def platform_hook(platform: Platform) -> Callable[[Request], Any]:
        """``POST /webhooks/<name>``: the same path for every platform in the registry."""
        async def hook(request: Request) -> JSONResponse:
            if (missing := platform.unconfigured()) is not None:
                return JSONResponse({"error": f"{missing} in the config"}, status_code=404)
            try:
                body = await read_body(request)
            except intake.TooLargeError as exc:
                return problem(exc)
            return await receive(platform.name, body, lambda: platform.verify(body, request.headers),
                                 lambda: platform.parse(body, now(), replay_window=window))
        return hook

    async def notion_hook(request: Request) -> JSONResponse:
        try:
            body = await read_body(request)
        except intake.TooLargeError as exc:
            return problem(exc)
        try:
            token = notion_webhook.notion_verification_token(body)
        except intake.WebhookError as exc:
            return problem(exc)
        if token is not None:  # the subscription handshake (unsigned): trust only the configured token
            return note_verification_token(token, request.client.host if request.client else "unknown")
        configured = settings.server.notion_verification_token
        if configured is None:
            return JSONResponse({"error": "no [server] notion_verification_token in the config"}, status_code=404)
        return await receive(
            "notion", body,
            lambda: notion_webhook.verify_notion(body, request.headers.get("x-notion-signature"),
                                                 configured.get_secret_value()),
            lambda: notion_webhook.parse_notion(body, now(), replay_window=window))

    def note_verification_token(token: str, sender: str) -> JSONResponse:
        """Anyone can post a handshake, so a received token is never stored or trusted:
        it is logged, whole, for the admin to compare with Notion's and copy into
        ``[server] notion_verification_token``."""
        configured = settings.server.notion_verification_token
        if configured is not None and hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
            log.info("Notion webhook verification token received from %s: it matches "
                     "[server] notion_verification_token", sender)
            return JSONResponse({"status": "verification token received"}, status_code=200)
        log.warning("Notion webhook verification token received from %s: %s. If you just created the "
                    "subscription in Notion, put this value in [server] notion_verification_token, restart "
                    "bsync serve, and paste it into Notion's Verify form; bsync trusts no other token.",
                    sender, token, extra={"reveal": token})
        return JSONResponse({"status": "verification token received"}, status_code=200)

    def health() -> tuple[int, dict[str, Any]]:
        """The truth about the receiver: 503 with the reasons when the worker has stopped or
        failed, the state DB can't be read, or a delivery has waited past ``stale_after``."""
        problems: list[str] = []
        report: dict[str, Any] = {}
        if worker is not None:
            report["worker_error"] = worker.last_error
            if not worker.alive:
                problems.append("the inbox worker is not running")
            elif worker.last_error:
                problems.append(f"the inbox worker failed: {worker.last_error}")
        try:
            with db_lock:
                runs = receiver.recent_runs(1)
                report.update(last_run=runs[0] if runs else None, inbox=receiver.inbox_counts())
                oldest = receiver.inbox_oldest_pending()
        except (sqlite3.Error, BsyncError) as exc:
            problems.append(f"the state DB can't be read: {exc}")
        else:
            report["oldest_pending"] = oldest
            if oldest is not None:
                age = now() - datetime.fromisoformat(oldest)
                report["oldest_pending_age_s"] = int(age.total_seconds())
                if age > stale_after:
                    problems.append(f"the oldest pending delivery is {format_duration(age)} old "
                                    f"(stale_after {settings.server.stale_after})")
        report["status"] = "error" if problems else "ok"
        if problems:
            report["problems"] = problems
        return (503 if problems else 200), report

    async def healthz(request: Request) -> JSONResponse:
        status, report = await run_in_threadpool(health)
        return JSONResponse(report, status_code=status)

    async def sync_endpoint(request: Request) -> JSONResponse:
        token = settings.server.sync_token
        given = request.headers.get("authorization", "")
        if token is None or not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="bsync"'})
        try:
            result = await run_in_threadpool(run_after_deliveries, settings, sync=True)
        except LockHeldError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except BsyncError as exc:
            return JSONResponse({"error": str(exc), "exit_code": exc.exit_code}, status_code=502)
        return JSONResponse(result.as_json())

    def availability_for(dates: list[str], duration: Any, step: Any = None) -> JSONResponse:
        from datetime import date as date_type

        from bsync.availability.query import availability

        try:
            days = [date_type.fromisoformat(str(d)) for d in dates]
            minutes = int(duration) if duration is not None else None
            step_minutes = int(step) if step is not None else None
        except (TypeError, ValueError):
            return JSONResponse({"error": "dates are YYYY-MM-DD and duration/step whole minutes"}, status_code=400)
        try:
            return JSONResponse(availability(settings, days, duration=minutes, step=step_minutes))
        except BsyncError as exc:
            status = 400 if exc.exit_code == 2 else 502
            return JSONResponse({"error": str(exc)}, status_code=status)

    async def availability_get(request: Request) -> JSONResponse:
        q = request.query_params
        if "date" not in q:
            return JSONResponse({"error": "the date parameter is required (YYYY-MM-DD)"}, status_code=400)
        return await run_in_threadpool(availability_for, q.getlist("date"), q.get("duration"), q.get("step"))

    async def availability_batch(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON: {\"dates\": [...], \"duration\": 60}"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("dates"), list) or not body["dates"]:
            return JSONResponse({"error": "\"dates\" must be a non-empty list of YYYY-MM-DD"}, status_code=400)
        return await run_in_threadpool(availability_for, body["dates"], body.get("duration"), body.get("step"))

    routes = [
        Route("/availability", availability_get, methods=["GET"]),
        Route("/availability/batch", availability_batch, methods=["POST"]),
        *(Route(f"/webhooks/{platform.name}", platform_hook(platform), methods=["POST"]) for platform in platforms),
        Route(f"/webhooks/{registry.LEDGER.name}", notion_hook, methods=["POST"]),  # the ledger's change notes
        Route("/healthz", healthz, methods=["GET"]),
        Route("/sync", sync_endpoint, methods=["POST"]),
    ]
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        receiver.close()
        for platform in platforms:
            platform.close()

    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the receiver until interrupted (uvicorn), with the inbox worker alongside."""
    import uvicorn

    from bsync.serve.listen import listening_socket

    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    sock = listening_socket(host, port)  # a bad or busy address stops here: UsageError, exit 2
    try:
        with Store.open(settings.state_path):
            pass  # create and migrate the state DB before the first request
        worker = Worker(settings)
        worker.start()
        worker.wake.set()  # deliveries left pending by a previous process
        try:
            config = uvicorn.Config(create_app(settings, worker=worker), host=host, port=port, log_level="info")
            shown = f"[{host}]" if ":" in host else host  # uvicorn logs its address only when it binds
            logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            worker.stop()
    finally:
        sock.close()
