"""Child processes for the lab: loopback-only networking helpers and :class:`Process`, which starts a
program in its own session, waits for its port, and stops it by PID (never by name).

Nothing here knows any particular peer; the modules next to this one (pki, notary, registry, postgres,
notar, gateway, moto) build on it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shlex
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

LOOPBACK = "127.0.0.1"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOG_LEVEL = os.environ.get("NOTAR_PEERS_LOG_LEVEL", "error")


# --------------------------------------------------------------------------- network helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged, or fail if it points anywhere but this machine's loopback."""
    host = urllib.parse.urlsplit(url).hostname
    if host not in _LOOPBACK_HOSTS:
        raise AssertionError(f"refusing non-loopback URL in tests: {url!r}")
    return url


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment for peer processes.

    Built from scratch rather than copied, so no HTTP(S)_PROXY / ALL_PROXY, no DOCKER_* or
    REGISTRY_* overrides and no real HOME leak into the child. NO_PROXY is set as a second guard.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


def loopback_get(url: str, *, ca: Path | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """``GET url`` on loopback, never through a proxy; returns (status, body), also for 4xx/5xx."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # ignore *_proxy env
    if ca is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(ca))))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(require_loopback(url), timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------- process manager

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here: no dlopen between fork and exec
_LIVE: set[Process] = set()  # started and not yet reaped; killed at interpreter exit as a last resort


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when pytest dies (even by SIGKILL), so nothing lingers."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PeerStartError(RuntimeError):
    """A peer process did not come up; the message carries the tail of its log."""


class Process:
    """One child process in its own session (setsid), output in a log file, stopped by PID.

    ``start()`` waits until ``port`` (if given) accepts TCP connections on 127.0.0.1, failing fast
    with the last log lines if the process exits first. ``stop()`` sends SIGTERM, then SIGKILL after
    ``stop_grace`` seconds, and reaps the child. Use it as a context manager so it is stopped
    whatever happens in between.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout: float = 20.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.port = port
        self.env = dict(env) if env is not None else child_env()
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log file (for error messages)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def start(self) -> Process:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as logf:  # the child keeps its own copy of the descriptor
            try:
                self._popen = self._spawn(logf)
            except FileNotFoundError as e:
                raise PeerStartError(f"{self.name}: {e}; run scripts/install-peers.sh") from e
        _LIVE.add(self)
        try:
            if self.port is not None:
                self._wait_for_port(self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, logf: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # setsid: own process group, no terminal signals
            preexec_fn=_die_with_parent,  # Linux only; fine in single-threaded pytest
        )

    def failure(self, why: str) -> PeerStartError:
        """An error naming the command, ``why`` and the tail of the log (raise it)."""
        cmd = shlex.join(self.argv)
        return PeerStartError(f"{self.name}: {why}\n$ {cmd}\n--- last lines of {self.log} ---\n{self.tail()}")

    def _wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running():
                rc = self.returncode()
                raise self.failure(f"exited with rc={rc} before port {port} accepted connections")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5):
                    pass
            except OSError:
                if time.monotonic() > deadline:
                    raise self.failure(
                        f"port {port} not accepting after {self.start_timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
                continue
            # Something answers; make sure it is us and not another process that got the port first.
            time.sleep(0.1)
            if not self.running():
                raise self.failure(f"port {port} answers but the process exited (port taken?)")
            return

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def _signal_group(self, sig: int) -> None:
        # With setsid the process-group id equals our child's PID. Signal only while the child is
        # not yet reaped, so the id cannot have been reused by an unrelated process.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_grace`` s; always reaps the child. Idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                popen.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                popen.wait(10)
        _LIVE.discard(self)  # only once reaped; otherwise the atexit hook tries again

    def __enter__(self) -> Process:
        return self.start() if self._popen is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        proc.stop_grace = 1.0
        proc.stop()


def command_report(
    what: str, argv: Sequence[str], stdout: str | bytes | None, stderr: str | bytes | None
) -> str:
    """A failure message: *what*, the command line, and its output (for exceptions)."""

    def text(s: str | bytes | None) -> str:
        return s.decode(errors="replace") if isinstance(s, bytes) else (s or "")

    return f"{what}\n$ {shlex.join(argv)}\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


def run_peer(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a peer's command line (``name`` for messages): stdin closed unless *input* is given (never a
    prompt), output captured; a missing binary, a timeout and, with *check*, a non-zero exit raise an
    AssertionError with :func:`command_report`."""
    try:
        result = subprocess.run(
            list(argv),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise AssertionError(f"{e}; run scripts/install-peers.sh") from e
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            command_report(f"{name} timed out after {timeout:.0f} s", argv, e.stdout, e.stderr)
        ) from None
    if check and result.returncode != 0:
        raise AssertionError(
            command_report(f"{name} failed (rc={result.returncode})", argv, result.stdout, result.stderr)
        )
    return result
