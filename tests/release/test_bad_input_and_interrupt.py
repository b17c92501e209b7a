"""`notar release` and `notar secrets put-signer` on bad input, and interrupted: FIFOs and devices as input
never hang or eat memory, bad input is a one-line error with exit code 2 before any connection, names and
regions are checked like a release task checks them, and Ctrl-C exits 130."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.crypto import PrivateKey
from notar.keystore import encode_private_key
from notar.release import TaskError, load_tasks
from notar.release._task import MAX_TASK_FILE_BYTES
from tests.lab import LOOPBACK, child_env

PASSPHRASE = "signer-passphrase-1"
GOOD_FLAGS = (
    "--image",
    "127.0.0.1:9/team/app:1",
    "--signer-name",
    "ci",
    "--key-secret-name",
    "notar/signers/ci/key",
    "--passphrase-secret-name",
    "notar/signers/ci/passphrase",
    "--region",
    "eu-west-1",
)


@contextlib.contextmanager
def trap() -> Iterator[tuple[str, socket.socket]]:
    """A loopback listener that never answers: the URL, and the socket (accept() shows connections)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(16)
        sock.setblocking(False)
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}", sock


def env_for(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return child_env(
        home=tmp_path,
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        NOTAR_TRUST_SERVER=url,
        **extra,
    )


def run(
    tmp_path: Path, env: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        stdin=stdin,
        check=False,
    )


def bad_input(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``notar: error:`` line of an exit-2 failure."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notar: error: "), result.stderr
    return lines[0]


def no_connection(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


@pytest.fixture
def encrypted_key(tmp_path: Path) -> Path:
    path = tmp_path / "ci.key"
    path.write_bytes(encode_private_key(PrivateKey.generate("ecdsa"), PASSPHRASE, role="ci"))
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------------------ release task files


def test_release_of_a_fifo_task_file_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "tasks.yml"
    os.mkfifo(fifo)
    with trap() as (url, sock):
        line = bad_input(run(tmp_path, env_for(tmp_path, url), "release", str(fifo)))
        no_connection(sock)
    assert "not a regular file" in line
    with pytest.raises(TaskError, match="not a regular file"):
        load_tasks(Path("/dev/null"))


def test_deeply_nested_task_file_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "deep.yml"
    path.write_text("tasks: " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(TaskError, match="nested too deeply"):
        load_tasks(path)
    with trap() as (url, sock):
        line = bad_input(run(tmp_path, env_for(tmp_path, url), "release", str(path)))
        no_connection(sock)
    assert str(path) in line


def test_huge_and_missing_task_files_are_bad_input(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as f:
        f.truncate(MAX_TASK_FILE_BYTES + 1)
    with pytest.raises(TaskError, match="too large"):
        load_tasks(huge)
    with trap() as (url, _):
        line = bad_input(run(tmp_path, env_for(tmp_path, url), "release", str(tmp_path / "nope.yml")))
    assert (
        line == f"notar: error: {tmp_path / 'nope.yml'}: cannot read the task file: No such file or directory"
    )


# ------------------------------------------------------------------------------ put-signer input


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_put_signer_key_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        key = tmp_path / "fifo"
        os.mkfifo(key)
    else:
        key = Path("/dev/zero")
    with trap() as (url, sock):
        env = env_for(tmp_path, url, SIGNER_PASS=PASSPHRASE)
        args = ("secrets", "put-signer", "ci", "--key", str(key), "--passphrase-env", "SIGNER_PASS")
        line = bad_input(run(tmp_path, env, *args, "--region", "eu-west-1"))
        no_connection(sock)
    assert line == f"notar: error: --key: {key}: not a regular file"


def test_put_signer_key_size_is_capped(tmp_path: Path) -> None:
    key = tmp_path / "big.key"
    key.write_bytes(b"A" * (1024 * 1024))
    with trap() as (url, sock):
        env = env_for(tmp_path, url, SIGNER_PASS=PASSPHRASE)
        args = ("secrets", "put-signer", "ci", "--key", str(key), "--passphrase-env", "SIGNER_PASS")
        line = bad_input(run(tmp_path, env, *args, "--region", "eu-west-1"))
        no_connection(sock)
    assert "too large" in line


@pytest.mark.parametrize("kind", ["missing", "huge", "device", "huge-stdin"])
def test_put_signer_passphrase_file(tmp_path: Path, encrypted_key: Path, kind: str) -> None:
    stdin: int | None = subprocess.DEVNULL
    if kind == "missing":
        source, words = str(tmp_path / "nonexistent"), "No such file or directory"
    elif kind == "huge":
        source, words = str(tmp_path / "pp"), "larger than"
        Path(source).write_bytes(b"p" * 100_000)
    elif kind == "device":
        source, words = "/dev/zero", "larger than"
    else:
        source, words = "-", "larger than"
        big = tmp_path / "pp"
        big.write_bytes(b"p" * 100_000)
        stdin = os.open(big, os.O_RDONLY)
    with trap() as (url, sock):
        args = ("secrets", "put-signer", "ci", "--key", str(encrypted_key), "--passphrase-file", source)
        try:
            line = bad_input(
                run(tmp_path, env_for(tmp_path, url), *args, "--region", "eu-west-1", stdin=stdin)
            )
        finally:
            if isinstance(stdin, int) and stdin >= 0:
                os.close(stdin)
        no_connection(sock)
    assert line.startswith("notar: error: --passphrase-file: ") and words in line, line


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--region", "bogus", "'bogus' is not an AWS region name"),
        ("--key-secret-name", "bad name!", "'bad name!' is not a Secrets Manager secret name"),
        ("--passphrase-secret-name", " x", "non-empty string without surrounding spaces"),
    ],
)
def test_put_signer_checks_names_like_release(
    tmp_path: Path, encrypted_key: Path, option: str, value: str, words: str
) -> None:
    with trap() as (url, sock):
        env = env_for(tmp_path, url, SIGNER_PASS=PASSPHRASE)
        args = ["secrets", "put-signer", "ci", "--key", str(encrypted_key), "--passphrase-env", "SIGNER_PASS"]
        if option != "--region":
            args += ["--region", "eu-west-1"]
        line = bad_input(run(tmp_path, env, *args, option, value))
        no_connection(sock)
    assert line.startswith(f"notar: error: {option}: ") and words in line, line
    # and `notar release` rejects the same value with the same words
    if option != "--passphrase-secret-name":
        flags = list(GOOD_FLAGS)
        flags[flags.index(option) + 1] = value
        with trap() as (url, _):
            assert words in bad_input(run(tmp_path, env_for(tmp_path, url), "release", *flags))


# ------------------------------------------------------------------------------ Ctrl-C


def test_sigint_during_release_exits_130(tmp_path: Path) -> None:
    """Interrupted while waiting for an endpoint that never answers: exit 130 (128 + SIGINT), one line, no traceback."""
    with trap() as (url, sock):
        connected = threading.Event()
        held: list[socket.socket] = []

        def accept() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not connected.is_set():
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    time.sleep(0.05)
                    continue
                held.append(conn)  # keep it open and never answer
                connected.set()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "notar", "release", *GOOD_FLAGS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env_for(tmp_path, url),
            cwd=tmp_path,
        )
        try:
            assert connected.wait(60), "notar release never connected"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            connected.set()
            thread.join(5)
            for conn in held:
                conn.close()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    assert "notar: error: interrupted" in stderr
