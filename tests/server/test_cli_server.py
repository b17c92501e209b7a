"""`notar server` start-up: refuses without a key passphrase, --dev, loud warning off loopback, migrate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import LOOPBACK, Process, child_env, free_port, loopback_get

pytestmark = pytest.mark.peers


def notar(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_refuses_to_start_without_a_key_passphrase(tmp_path: Path) -> None:
    r = notar(
        "server",
        "--data-dir",
        str(tmp_path / "data"),
        "--listen",
        f"{LOOPBACK}:{free_port()}",
        env=child_env(home=tmp_path),
    )
    assert r.returncode == 2
    assert "NOTAR_SERVER_KEY_PASSPHRASE" in r.stderr and "--dev" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    env = child_env(home=tmp_path, NOTAR_SERVER_KEY_PASSPHRASE="x" * 20)
    for args in (
        ("--listen", "nonsense"),
        ("--tls-cert", str(tmp_path / "missing.pem")),
        ("--database-url", "mysql://x/y"),
        ("--auth-realm", "https://auth.example.com"),
    ):
        r = notar("server", "--data-dir", str(tmp_path / "data"), *args, env=env)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip(), args


def test_dev_mode_warns_and_keeps_the_passphrase_private(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    argv = [
        sys.executable,
        "-m",
        "notar",
        "server",
        "--dev",
        "--data-dir",
        str(data),
        "--listen",
        f"0.0.0.0:{port}",
    ]
    with Process("notar-dev", argv, log=tmp_path / "log", port=port, env=child_env(home=tmp_path)):
        status, body = loopback_get(f"http://{LOOPBACK}:{port}/v2/")
        assert status == 200 and body == b"{}"
    log = (tmp_path / "log").read_text()
    assert "WITHOUT authentication" in log
    secret = data / "dev-key-passphrase"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    assert secret.read_text().strip() not in log
    assert oct(data.stat().st_mode & 0o777) == "0o700"


def test_workers_serve_the_api_and_the_ui(tmp_path: Path) -> None:
    """`--workers 2`: each worker builds the app (API + UI) from the parent's config (notar.web.runtime)."""
    port = free_port()
    argv = [sys.executable, "-m", "notar", "server", "--dev", "--data-dir", str(tmp_path / "data")]
    argv += ["--listen", f"{LOOPBACK}:{port}", "--workers", "2"]
    with Process("notar-workers", argv, log=tmp_path / "log", port=port, env=child_env(home=tmp_path)):
        assert loopback_get(f"http://{LOOPBACK}:{port}/v2/") == (200, b"{}")
        status, page = loopback_get(f"http://{LOOPBACK}:{port}/")
        assert status == 200 and b"<html" in page.lower()
        assert loopback_get(f"http://{LOOPBACK}:{port}/v2/a/b/_trust/tuf/root.json")[0] == 404


def test_migrate_command(tmp_path: Path) -> None:
    env = child_env(home=tmp_path)
    for _ in range(2):  # idempotent
        r = notar("server", "migrate", "--data-dir", str(tmp_path / "data"), env=env)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "notar.db").exists()
