"""Smoke tests for the lab (tests/lab): the real Go notary, the registry, and the process manager."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.lab import (
    LabPKI,
    NotaryCLI,
    NotaryServer,
    PeerStartError,
    Process,
    Registry,
    free_port,
    loopback_get,
)

pytestmark = pytest.mark.peers

DIGEST = "64385ab5" + "0" * 52 + "6cdc"  # any 64 hex digits will do for addhash


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie waiting for someone to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------- PKI


def test_lab_pki_files(lab_pki: LabPKI) -> None:
    assert b"BEGIN CERTIFICATE" in lab_pki.ca.read_bytes()
    assert b"BEGIN CERTIFICATE" in lab_pki.server_cert.read_bytes()
    for key in (lab_pki.ca_key, lab_pki.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


# --------------------------------------------------------------------------- notary-server + CLI


def test_notary_server_health(notary_server: NotaryServer) -> None:
    assert notary_server.url.startswith("https://127.0.0.1:")
    assert pid_alive(notary_server.pid)
    status, _ = loopback_get(f"{notary_server.url}/_notary_server/health", ca=notary_server.ca)
    assert status == 200


def test_notary_cli_init_addhash_list(notary_cli: NotaryCLI) -> None:
    gun = "127.0.0.1:5000/test/smoke"
    notary_cli.run("init", gun, "-p")
    notary_cli.run("addhash", gun, "1.0", "401", "--sha256", DIGEST, "-p")
    out = notary_cli.run("list", gun).stdout
    line = next(line for line in out.splitlines() if line.split()[:1] == ["1.0"])
    assert DIGEST in line
    assert "401" in line.split()


def test_notary_cli_failure_is_reported(notary_cli: NotaryCLI) -> None:
    with pytest.raises(AssertionError, match=r"rc=\d+[\s\S]*\$ notary -s https://127\.0\.0\.1"):
        notary_cli.run("list", "127.0.0.1:5000/test/never-initialised")
    assert notary_cli.run("list", "127.0.0.1:5000/test/never-initialised", check=False).returncode != 0


# --------------------------------------------------------------------------- registry


def test_registry_v2(registry: Registry) -> None:
    assert registry.url == f"http://{registry.host}"
    status, body = loopback_get(f"{registry.url}/v2/")
    assert status == 200, body
    assert registry.data_dir.is_dir()


# --------------------------------------------------------------------------- process manager


def http_server(tmp_path: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", str(tmp_path)]


def test_process_stop_kills_by_pid(tmp_path: Path) -> None:
    port = free_port()
    proc = Process("http.server", http_server(tmp_path, port), log=tmp_path / "http.log", port=port)
    with proc:
        pid = proc.pid
        assert pid_alive(pid)
        assert loopback_get(f"http://127.0.0.1:{port}/")[0] == 200
    assert not pid_alive(pid)
    assert not proc.running()


def test_process_stopped_when_test_body_raises(tmp_path: Path) -> None:
    proc = Process("sleep", ["sleep", "1000"], log=tmp_path / "sleep.log")  # no port: no readiness wait
    with pytest.raises(RuntimeError, match="boom"), proc:
        pid = proc.pid
        raise RuntimeError("boom")
    assert not pid_alive(pid)


def test_process_killed_when_it_ignores_sigterm(tmp_path: Path) -> None:
    port = free_port()
    script = (
        "import signal, socket, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "time.sleep(1000)\n"
    )
    proc = Process(
        "stubborn", [sys.executable, "-c", script], log=tmp_path / "s.log", port=port, stop_grace=0.5
    )
    with proc:
        pid = proc.pid
    assert not pid_alive(pid)
    assert proc.returncode() == -9  # SIGKILL


def test_process_that_dies_fails_fast_with_log(tmp_path: Path) -> None:
    proc = Process(
        "dies",
        ["sh", "-c", "echo 'listen tcp: address already in use' >&2; exit 3"],
        log=tmp_path / "dies.log",
        port=free_port(),
    )
    with pytest.raises(PeerStartError, match=r"rc=3[\s\S]*address already in use"):
        proc.start()


def test_process_missing_program_names_install_script(tmp_path: Path) -> None:
    proc = Process("ghost", ["notar-no-such-program"], log=tmp_path / "ghost.log")
    with pytest.raises(PeerStartError, match=r"install-peers\.sh"):
        proc.start()


def test_children_die_with_pytest(tmp_path: Path) -> None:
    """Even if the parent is killed without any teardown, its peer processes do not linger."""
    parent = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from pathlib import Path
        from tests.lab.process import Process
        p = Process("sleep", ["sleep", "1000"], log=Path({str(tmp_path / "s.log")!r}))
        p.start()
        print(p.pid, flush=True)
        os._exit(0)  # no teardown, no atexit
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=30, check=True
    )
    assert wait_gone(int(out.stdout))
