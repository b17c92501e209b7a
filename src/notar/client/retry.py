"""Retrying a publish that lost a race with another publisher of the same repository.

The trust server takes one update of a repository at a time: every accepted update carries the next
timestamp (and snapshot) version, so of two publishers that built their update on the same state only the
first is stored and the second is refused with notary's ``400 VERSION`` error ("A newer version of
metadata is already available."). notar server answers that for both ways of losing (validated against a
state that changed before the write, or a (role, version) that is already stored: its storage maps both to
``OldVersionError``); the Go notary-server answers the same (``storage.ErrOldVersion`` -> ``VERSION``).

:class:`~notar.client.repository.Repository` then re-applies the change to the refreshed state and
publishes again, waiting a jittered, exponentially growing delay between attempts (:class:`RetryPolicy`),
until the update is stored or the time budget is spent (:class:`PublishConflictError`). Nothing else is
retried: any other refusal is final at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from notar.client.errors import PublishRejectedError

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "PublishConflictError",
    "RetryPolicy",
    "VERSION_CONFLICT_MESSAGE",
]

#: How long one command keeps trying to publish while other publishers keep winning.
DEFAULT_RETRY_SECONDS = 30.0

#: The message of notary's ``VERSION`` error code (server/errors/errors.go), which notar server uses too.
#: For reference only: the client recognises the code (:class:`~notar.client.errors.VersionConflictError`).
VERSION_CONFLICT_MESSAGE = "A newer version of metadata is already available"


class PublishConflictError(PublishRejectedError):
    """Every attempt to publish lost a race: the repository kept changing on the trust server."""

    def __init__(self, gun: str, attempts: int, seconds: float) -> None:
        self.gun = gun
        self.attempts = attempts
        self.seconds = seconds
        tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
        super().__init__(
            f"gave up publishing to {gun} after {tries} in {seconds:.0f} s: the repository kept changing on "
            "the trust server (another publisher's update was stored first every time); run the command again"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff ("full jitter") within a total time budget.

    Before attempt *n* + 1 the publisher sleeps a uniformly random time in ``[0, min(cap, base * 2**(n-1))]``
    so that publishers that collided spread out instead of colliding again; the sleep is cut short so that
    no attempt starts after *budget* seconds from the first one. ``budget=0`` means a single attempt.
    ``sleep``, ``clock`` and ``random`` are injectable for tests.
    """

    budget: float = DEFAULT_RETRY_SECONDS
    base: float = 0.05
    cap: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.budget < 0 or self.base <= 0 or self.cap < self.base:
            raise ValueError(f"invalid retry policy: {self!r}")

    def delay(self, attempt: int, *, started: float) -> float | None:
        """The sleep before the attempt after *attempt* (1-based), or None once the budget is spent."""
        remaining = started + self.budget - self.clock()
        if remaining <= 0:
            return None
        ceiling = min(self.cap, self.base * (1 << min(attempt - 1, 30)))
        return min(ceiling * self.random(), remaining)
