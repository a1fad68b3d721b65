"""One retry policy for every remote call, on tenacity.

Providers classify their own exceptions into :class:`CallFailure` (transient or not, with the
server's ``Retry-After`` when it gave one); this module decides how long to wait and when
to give up, so backoff behaves the same for Notion, Google and whatever comes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bsync.errors import AuthError, RemoteError, RemoteUnavailableError

T = TypeVar("T")


@dataclass(frozen=True)
class CallFailure:
    """How a provider judges one exception."""

    kind: str  # "transient" | "auth" | "permanent"
    message: str
    retry_after: float | None = None
    status: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0


Classifier = Callable[[BaseException], CallFailure | None]


def call(fn: Callable[[], T], *, classify: Classifier, policy: RetryPolicy, what: str) -> T:
    """Run ``fn``; retry transient failures with jittered exponential backoff.

    Raises AuthError (exit 4) at once on an authentication failure, RemoteError for a
    permanent refusal of this one request, and RemoteUnavailableError (exit 5) when
    transient failures outlast the retries.  Exceptions the classifier doesn't know
    propagate unchanged.
    """

    def transient(exc: BaseException) -> bool:
        failure = classify(exc)
        return failure is not None and failure.kind == "transient"

    backoff = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        failure = classify(exc) if exc is not None else None
        if failure is not None and failure.retry_after is not None:
            return min(failure.retry_after, max(policy.max_delay, 0.0))
        return backoff(state)

    retrying = Retrying(stop=stop_after_attempt(policy.max_retries + 1), wait=wait,
                        retry=retry_if_exception(transient), reraise=True)
    try:
        return retrying(fn)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        if failure.kind == "auth":
            raise AuthError(f"{what}: {failure.message}") from None
        if failure.kind == "transient":
            raise RemoteUnavailableError(
                f"{what}: still failing after {policy.max_retries + 1} attempts: {failure.message}",
                hint="check the network and the provider's status page, then run again; "
                     "nothing is lost, the next run picks up where this one stopped") from None
        raise RemoteError(f"{what}: {failure.message}") from None
