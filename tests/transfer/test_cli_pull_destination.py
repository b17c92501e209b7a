"""Where `notar pull` writes, through the real CLI against the real peers: `-o .` (its mode kept), a new
directory (mkdir's mode), unusable parents (one line, exit 2), and SIGTERM while blobs are downloading
(exit 143, nothing left behind). The library's side: test_pull_destination.py."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.test_cli_flow import Notar
from tests.lab import NotarServer, Registry
from tests.registry.images import make_image, write_oci_layout
from tests.transfer.test_cli_transfer import Setup, content_blobs, layout_blobs, one_line_error

pytestmark = pytest.mark.peers


@pytest.fixture
def setup(notar_server: NotarServer, registry: Registry, tmp_path: Path) -> Setup:
    return Setup(Notar(tmp_path / "home", notar_server.url, notar_server.ca), registry, tmp_path)


def test_pull_into_dot_and_modes(setup: Setup) -> None:
    image = make_image(f"dot {uuid.uuid4()}")
    setup.push(write_oci_layout(setup.tmp / "src", "1.0", image), "1.0")
    cwd = setup.tmp / "empty-cwd"
    cwd.mkdir()
    cwd.chmod(0o751)
    result = subprocess.run(
        [sys.executable, "-m", "notar", "pull", f"{setup.repo}:1.0", "-o", "."],
        capture_output=True,
        text=True,
        env=setup.notar.env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert layout_blobs(cwd) == content_blobs(image)
    assert stat.S_IMODE(cwd.stat().st_mode) == 0o751  # its own mode, kept
    assert not [p for p in setup.tmp.iterdir() if p.name.endswith(".partial")]

    new = setup.tmp / "new"
    setup.pull("1.0", new)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o777 & ~umask  # like mkdir, not mkdtemp's 0700


def test_unusable_destinations_are_one_line(setup: Setup) -> None:
    image = make_image(f"proc {uuid.uuid4()}")
    setup.push(write_oci_layout(setup.tmp / "src", "1.0", image), "1.0")
    if Path("/proc/self").is_dir():
        r = setup.notar.run("pull", f"{setup.repo}:1.0", "-o", "/proc/notar-x", check=False)
        assert r.returncode == 2 and "/proc/notar-x" in one_line_error(r)


# --------------------------------------------------------------------------- SIGTERM


class StallingProxy:
    """A TCP forwarder to the registry that, once ``stall`` is set, holds every request for a blob
    (never forwards it), so a pull sits waiting with its temporary directory in place."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.stall = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and self.stall.is_set() and b"/blobs/sha256:" in data:
                    time.sleep(120)  # held: the client waits for an answer
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closing = True
        self.listener.close()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[StallingProxy]:
    host, port = registry.host.rsplit(":", 1)
    p = StallingProxy((host, int(port)))
    yield p
    p.close()


def test_sigterm_during_pull_leaves_nothing(setup: Setup, proxy: StallingProxy) -> None:
    repo = f"127.0.0.1:{proxy.port}/transfer/term-{uuid.uuid4().hex[:8]}"
    setup.notar.run("signer", "add", "alice", repo, "--key", str(setup.tmp / "alice.pub"))
    layout = write_oci_layout(setup.tmp / "src", "1.0", make_image(f"term {uuid.uuid4()}"))
    setup.notar.run("push", str(layout), f"{repo}:1.0")
    proxy.stall.set()
    dest = setup.tmp / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "notar", "pull", f"{repo}:1.0", "-o", str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=setup.notar.env,
        cwd=setup.notar.home,
    )
    try:
        deadline = time.monotonic() + 60
        while not [p for p in setup.tmp.iterdir() if p.name.endswith(".partial")]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pull never started writing"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, (proc.returncode, err)
    lines = [line for line in err.strip().splitlines() if line.startswith("notar: error:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "Traceback" not in err, err
    assert not dest.exists()
    assert not [p.name for p in setup.tmp.iterdir() if p.name.endswith(".partial")]
