"""Trust checks in process: one check per repository shared by its waiters, a deadline for the whole check.

Found by red-teaming: ``--trust-timeout`` applied to each read let a trust server that drips a byte a second
hold a pull for minutes, and waiters for one repository queued on a lock, the Nth one waiting N timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Iterator

import httpx
import pytest

from notar.client import TrustServer
from notar.gateway import GatewayError, TrustVerifier, TrustView
from notar.gateway.deadline import Deadline, DeadlineTransport, trust_server
from notar.gateway.trust import GRACE
from tests.lab import LOOPBACK

# generous upper bounds: the machine may be slow and busy; what matters is "about one deadline", not N of them
SLACK = 3.0


class BlockingVerifier(TrustVerifier):
    """``verify`` waits for :meth:`finish` (at most 30 s), then returns a view or raises what it was given."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        super().__init__(server=TrustServer(f"http://{LOOPBACK}:1"), ttl=5.0, timeout=timeout)
        self._go = threading.Event()
        self._outcome: GatewayError | None = None
        self.started = threading.Semaphore(0)  # released when a verification starts

    def finish(self, error: GatewayError | None = None) -> None:
        self._outcome = error
        self._go.set()

    def rearm(self) -> None:
        self._go.clear()

    def verify(self, gun: str) -> TrustView:
        self.refreshes += 1
        started = self.clock()
        self.started.release()
        self._go.wait(30)
        if self._outcome is not None:
            raise self._outcome
        return TrustView(gun, exists=True, verified_at=started)


async def outcomes(*calls: Awaitable[TrustView]) -> list[TrustView | BaseException]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def started(verifier: BlockingVerifier) -> None:
    """Until the verifier's worker thread has begun a verification."""
    while not verifier.started.acquire(blocking=False):
        await asyncio.sleep(0.01)


def test_concurrent_waiters_share_one_check_and_its_failure() -> None:
    verifier = BlockingVerifier()

    async def scenario() -> None:
        waiters = [asyncio.ensure_future(verifier.view("a/b")) for _ in range(5)]
        await started(verifier)
        await asyncio.sleep(0.1)  # all five are waiting now
        verifier.finish(GatewayError("TRUST_UNAVAILABLE", "trust server down"))
        results = await outcomes(*waiters)
        assert verifier.refreshes == 1  # one check for five requests
        assert all(isinstance(r, GatewayError) and r.message == "trust server down" for r in results)
        # the failure is not cached: the next request checks again, and a success is shared and cached
        verifier.finish()
        view = await verifier.view("a/b")
        assert verifier.refreshes == 2 and view.exists
        assert await verifier.view("a/b") is view and verifier.refreshes == 2

    asyncio.run(scenario())
    verifier.close()


def test_waiters_give_up_at_the_deadline_and_never_queue() -> None:
    verifier = BlockingVerifier(timeout=1.0)

    async def scenario() -> None:
        begin = time.monotonic()
        results = await outcomes(*(verifier.view("a/b") for _ in range(5)))
        elapsed = time.monotonic() - begin
        assert elapsed < 1.0 + GRACE + SLACK  # one deadline for all five, not five of them
        for r in results:
            assert isinstance(r, GatewayError) and r.code == "TRUST_UNAVAILABLE", r
            assert r.message == "cannot verify trust data for a/b: the trust check did not finish within 1 s"
        # the stuck check is still the only one: a request now waits for it instead of starting another
        late = await outcomes(verifier.view("a/b"))
        assert isinstance(late[0], GatewayError) and verifier.refreshes == 1
        verifier.finish()  # the check ends late, but with verified data: the next request uses it
        while verifier._checks:
            await asyncio.sleep(0.01)
        assert (await verifier.view("a/b")).exists and verifier.refreshes == 1

    asyncio.run(scenario())
    verifier.close()


def test_a_fresh_request_does_not_take_a_check_that_began_before_it() -> None:
    verifier = BlockingVerifier()

    async def scenario() -> None:
        pull = asyncio.ensure_future(verifier.view("a/b"))
        await started(verifier)
        pushes = [asyncio.ensure_future(verifier.view("a/b", fresh=True)) for _ in range(3)]
        await asyncio.sleep(0.1)
        since = verifier.clock()
        first = await pull  # the check that was in flight ends ...
        assert first.verified_at < since
        verifier.rearm()
        await started(verifier)  # ... and the pushes start the next one, together
        verifier.finish()
        views = await outcomes(*pushes)
        assert verifier.refreshes == 2
        assert all(isinstance(v, TrustView) and v.verified_at > first.verified_at for v in views)
        assert len({id(v) for v in views}) == 1

    verifier.finish()  # the first check finishes at once, once started
    asyncio.run(scenario())
    verifier.close()


def test_a_request_gone_away_does_not_cancel_the_check() -> None:
    verifier = BlockingVerifier()

    async def scenario() -> None:
        gone = asyncio.ensure_future(verifier.view("a/b"))
        await started(verifier)
        gone.cancel()  # the client hung up
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        staying = asyncio.ensure_future(verifier.view("a/b"))
        await asyncio.sleep(0.1)
        verifier.finish()
        assert (await staying).exists and verifier.refreshes == 1

    asyncio.run(scenario())
    verifier.close()


# -- the deadline in the HTTP transport: a server that drips one byte a second ---------------------


class Dripper:
    """HTTP on 127.0.0.1 that answers every request one byte a second (or only the body, *head_at_once*)."""

    def __init__(self, *, head_at_once: bool = False) -> None:
        self.head_at_once = head_at_once
        self.listener = socket.create_server((LOOPBACK, 0))
        self.url = f"http://{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.hung_up = threading.Event()  # a client closed its connection
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        with conn:
            try:
                conn.recv(65536)  # the request
                if self.head_at_once:
                    conn.sendall(head)
                for byte in (head if not self.head_at_once else b"") + b"{" + b" " * 99_999:
                    conn.sendall(bytes([byte]))
                    if self._stop.wait(1.0):
                        return
            except OSError:  # the client hung up: sending failed
                self.hung_up.set()


@contextlib.contextmanager
def dripper(*, head_at_once: bool = False) -> Iterator[Dripper]:
    server = Dripper(head_at_once=head_at_once)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("head_at_once", [False, True], ids=["dripped-head", "dripped-body"])
def test_the_transport_stops_a_dripping_server_at_the_deadline(head_at_once: bool) -> None:
    with (
        dripper(head_at_once=head_at_once) as server,
        httpx.Client(transport=DeadlineTransport(), timeout=30) as client,
    ):
        begin = time.monotonic()
        with Deadline.after(1.0).active(), pytest.raises(httpx.TimeoutException) as info:
            client.get(server.url + "/x").read()
        assert time.monotonic() - begin < 1.0 + SLACK  # each read alone would take a second: never 30 s
        assert str(info.value) == "the trust check did not finish within 1 s"
        # the connection was closed: nothing goes on in the background
        assert server.hung_up.wait(1.0 + SLACK)
        # past the deadline nothing is even tried
        with Deadline(time.monotonic() - 1, 1.0).active(), pytest.raises(httpx.TimeoutException):
            client.get(server.url + "/y")
        assert server.accepted == 1


def test_the_transport_without_a_deadline_is_plain_httpx() -> None:
    listener = socket.create_server((LOOPBACK, 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with listener, httpx.Client(transport=DeadlineTransport(), timeout=10) as client:
        r = client.get(f"http://{LOOPBACK}:{listener.getsockname()[1]}/")
        assert r.status_code == 200 and r.text == "ok"
    thread.join(5)


def test_the_verifier_fails_closed_at_the_deadline_against_a_dripping_trust_server() -> None:
    """What ``notar gateway`` builds (:func:`trust_server` and the verifier's timeout), in process."""
    with dripper() as server:
        verifier = TrustVerifier(server=trust_server(server.url, timeout=30), timeout=1.0)
        begin = time.monotonic()
        with pytest.raises(GatewayError) as info:
            asyncio.run(verifier.view("example.com/a/b"))
        assert time.monotonic() - begin < 1.0 + SLACK
        assert info.value.code == "TRUST_UNAVAILABLE" and info.value.status == 503
        assert "the trust check did not finish within 1 s" in info.value.message
        assert server.hung_up.wait(1.0 + SLACK)  # the worker thread gave up as well
        verifier.close()
