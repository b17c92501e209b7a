"""Verified trust data per repository, through the client update workflow, cached for a short TTL.

:class:`TrustVerifier` runs the client's :class:`notar.client.Updater` (root -> timestamp -> snapshot ->
targets, every signature and hash checked, rollback protection through its own trust cache; without the
client's offline fallback to a cached timestamp, so a trust server that cannot be reached is a refusal) and turns
the result into a :class:`TrustView`: each signed tag resolved with docker's rule (``targets/releases``
wins over ``targets``). Results -- including "this repository has no trust data" -- are kept for
``ttl`` seconds.

One check at a time per repository, shared by everyone who asks: a request that finds no usable view joins
the check in flight for its repository (or starts one, as an asyncio task) and gets its outcome, the view or
the failure. A ``fresh`` request (a push or a delete, which must see what was signed a moment ago) does not
take the outcome of a check that began before it: it waits for that one to end, then starts or joins the
next.

``timeout`` (``--trust-timeout``) is a deadline, not a limit per read: each check must be done ``timeout``
seconds after it started, all its HTTP requests together (the worker thread's network operations are cut off
at the deadline when the server comes from :func:`notar.gateway.deadline.trust_server`, as the gateway builds
it), and each request waits for an outcome at most ``timeout`` seconds from its arrival (plus :data:`GRACE`
for a check that overruns); then it fails closed (``TRUST_UNAVAILABLE``, 503). Failures (trust server down
or too slow, invalid data) are never cached beyond the check that produced them: everyone waiting for that
check gets the failure, the next request starts a new check. Memory stays bounded whatever names clients
ask for: views are kept for the most recent :data:`MAX_VIEWS` repositories, only checks in flight are
tracked (each ends by its deadline), and nothing is left in the trust directory for names without trust data.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from notar._lru import LRUCache
from notar.client import (
    RepositoryNotFoundError,
    TrustCache,
    TrustDataInvalidError,
    TrustServer,
    TrustServerError,
    Updater,
)
from notar.errors import NotarError
from notar.gateway.deadline import Deadline
from notar.gateway.errors import GatewayError

__all__ = ["MAX_VIEWS", "SignedTag", "TrustVerifier", "TrustView"]

MAX_VIEWS = 10_000
GRACE = 1.0  # seconds a request gives a check past the deadline to end with its own outcome

log = logging.getLogger("notar.gateway")


@dataclass(frozen=True, slots=True)
class SignedTag:
    digest: str  # sha256:<hex>
    size: int
    role: str


@dataclass(frozen=True)
class TrustView:
    """What the trust data of one GUN signs, as verified at ``verified_at`` (monotonic seconds)."""

    gun: str
    exists: bool  # False: the trust server has no trust data for the GUN
    tags: Mapping[str, SignedTag] = field(default_factory=dict)
    verified_at: float = 0.0

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(t.digest for t in self.tags.values())

    def tags_for(self, digest: str) -> list[str]:
        return sorted(tag for tag, signed in self.tags.items() if signed.digest == digest)


@dataclass(frozen=True, slots=True)
class _Check:
    """A verification in flight: its task, when it began (``clock`` time, compared with ``fresh`` requests)
    and its deadline."""

    task: asyncio.Task[TrustView]
    started: float
    deadline: Deadline


class TrustVerifier:
    """Verifies trust data of GUNs against one trust server (async entry point :meth:`view`, one event loop).

    *timeout*: the deadline of one check, and the longest a request waits for a view, in seconds.
    """

    def __init__(
        self,
        *,
        server: TrustServer,
        trust_dir: Path | None = None,
        ttl: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if trust_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="notar-gateway-")
            trust_dir = Path(self._tmp.name)
        self.trust_dir = Path(trust_dir)
        self.cache = TrustCache(self.trust_dir)
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._views: LRUCache[str, TrustView] = LRUCache(MAX_VIEWS)  # the most recently verified
        self._checks: dict[str, _Check] = {}  # GUN -> the check in flight; removed when it ends
        self.refreshes = 0  # number of verifications run (for tests and metrics)

    def close(self) -> None:
        self.server.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- sync: the verification itself -------------------------------------------------------------
    def verify(self, gun: str) -> TrustView:
        """Run the TUF update for *gun*; raises :class:`GatewayError` (TRUST_UNAVAILABLE or DENIED)."""
        self.refreshes += 1
        started = self.clock()  # the view shows the server's state at some moment after this
        try:
            trusted = Updater(gun, self.server, self.cache, offline=False).refresh()
        except RepositoryNotFoundError:
            self.cache.forget_if_empty(gun)
            return TrustView(gun, exists=False, verified_at=started)
        except TrustDataInvalidError as e:
            raise GatewayError("DENIED", f"trust data for {gun} is invalid: {e}") from e
        except TrustServerError as e:
            raise GatewayError("TRUST_UNAVAILABLE", f"cannot verify trust data for {gun}: {e}") from e
        except NotarError as e:
            raise GatewayError("DENIED", f"trust data for {gun} is invalid: {e}") from e
        tags = {
            name: SignedTag("sha256:" + match.meta.hashes["sha256"].hex(), match.meta.length, match.role)
            for name, match in trusted.signed_tags().items()  # docker's rule; other roles do not count
        }
        return TrustView(gun, exists=True, tags=tags, verified_at=started)

    def _verify_within(self, gun: str, deadline: Deadline) -> TrustView:
        """:meth:`verify` with its network operations bounded by *deadline* (runs in a worker thread)."""
        if deadline.remaining() <= 0:  # waited that long for a free worker thread
            raise _too_late(gun, deadline)
        with deadline.active():
            return self.verify(gun)

    # -- async: cached, shared -----------------------------------------------------------------------
    def cached(
        self, gun: str, *, max_age: float | None = None, since: float | None = None
    ) -> TrustView | None:
        view = self._views.peek(gun)  # reading a view does not keep it longer
        if view is None:
            return None
        if since is not None:
            return view if view.verified_at >= since else None
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        return view if self.clock() - view.verified_at < limit else None

    async def view(self, gun: str, *, max_age: float | None = None, fresh: bool = False) -> TrustView:
        """The verified view of *gun*: cached if at most ``max_age`` (default: ``ttl``) seconds old, else the
        outcome of the check in flight for *gun* (started if there is none).

        ``fresh``: verified by a check that started after this call was made (for pushes and deletes, which
        must see a tag signed a moment ago); concurrent fresh requests share such a check.
        Raises :class:`GatewayError`: the check's failure, or TRUST_UNAVAILABLE when no outcome came within
        ``timeout`` seconds (and :data:`GRACE`).
        """
        since = self.clock() if fresh else None
        deadline = Deadline.after(self.timeout)
        while True:
            view = self.cached(gun, max_age=max_age, since=since)
            if view is not None:
                return view
            check = self._checks.get(gun)
            if check is None:
                check = self._start(gun)
                deadline = check.deadline  # the same moment, a few microseconds later
            elif since is not None and check.started < since:
                # began before this request: it may miss what was signed just now, the next one will not
                await _until_done(gun, check, deadline)
                continue
            await _until_done(gun, check, deadline)
            if check.task.cancelled():  # only when the event loop shuts down
                raise GatewayError("TRUST_UNAVAILABLE", f"cannot verify trust data for {gun}: shutting down")
            return check.task.result()

    def _start(self, gun: str) -> _Check:
        deadline = Deadline.after(self.timeout)
        task = asyncio.create_task(self._check(gun, deadline), name=f"trust check {gun}")
        task.add_done_callback(_seen)
        check = self._checks[gun] = _Check(task, self.clock(), deadline)
        return check

    async def _check(self, gun: str, deadline: Deadline) -> TrustView:
        """One check (a task): the update in a worker thread, its view remembered, its failure never."""
        try:
            view = await run_in_threadpool(self._verify_within, gun, deadline)
        except GatewayError:
            self._views.pop(gun)  # an older view is not used either
            raise
        else:
            self._views.put(gun, view)
            return view
        finally:
            # the entry is this check's: another one is only started for the GUN when there is none
            self._checks.pop(gun, None)


async def _until_done(gun: str, check: _Check, deadline: Deadline) -> None:
    """Wait for *check* to end, or raise TRUST_UNAVAILABLE at *deadline* (the check goes on for the others).

    A check stops at its own deadline, at or before the waiter's (unless the waiter needs the next check), and
    then ends within moments, once its worker thread has noticed: :data:`GRACE` is that moment, so that the
    waiters get the check's own outcome and the check is over when they answer. It only runs out when the
    thread overruns (its trust server is not deadline-bound, or the thread is stuck outside network I/O).
    """
    if check.task.done():
        return
    try:
        async with asyncio.timeout(max(deadline.remaining(), 0.0) + GRACE):
            await asyncio.wait([check.task])  # never cancels the task, never raises its error
    except TimeoutError:
        raise _too_late(gun, deadline) from None


def _too_late(gun: str, deadline: Deadline) -> GatewayError:
    return GatewayError("TRUST_UNAVAILABLE", f"cannot verify trust data for {gun}: {deadline.message}")


def _seen(task: asyncio.Task[TrustView]) -> None:
    """Retrieve the outcome: every waiter may have given up (or gone away) before the check ended."""
    if not task.cancelled():
        task.exception()
