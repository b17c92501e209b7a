"""Task files and task flags are checked before anything is fetched; every error names file and line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from notar.release import ReleaseTask, TaskError, load_tasks, make_task
from tests.lab import LOOPBACK, child_env

GOOD = """\
tasks:
  - image: 127.0.0.1:5000/team/app:1.0
    signer_name: ci
    key_secret_name: notar/signers/ci/key
    passphrase_secret_name: notar/signers/ci/passphrase
    region: eu-west-1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    layout.mkdir()
    (layout / "index.json").write_text("{}")
    path = write(
        tmp_path,
        GOOD
        + "    src: oci\n  - image: 127.0.0.1:5000/team/other:2\n"
        + "".join(f"    {line.strip()}\n" for line in GOOD.splitlines()[2:]),
    )
    tasks = load_tasks(path)
    assert [t.image for t in tasks] == ["127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/other:2"]
    assert tasks[0].src == layout and tasks[1].src is None
    assert tasks[0].where == f"{path}:2" and tasks[1].where == f"{path}:8"
    assert tasks[0].reference.name == "127.0.0.1:5000/team/app"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD + "    colour: blue\n", 7, "unknown key 'colour'"),
        (GOOD.replace("    region: eu-west-1\n", ""), 2, "missing region"),
        (GOOD.replace("region: eu-west-1", "region: 12"), 6, "region must be a string, got int"),
        (GOOD.replace("signer_name: ci", "signer_name: [ci]"), 3, "signer_name must be a string, got a list"),
        (
            GOOD.replace("image: 127.0.0.1:5000/team/app:1.0", "image: 127.0.0.1:5000/team/app"),
            2,
            "must be IMAGE:TAG",
        ),
        (GOOD.replace("image: 127.0.0.1:5000/team/app:1.0", "image: 'Not An Image'"), 2, "image"),
        (GOOD.replace("signer_name: ci", "signer_name: releases"), 3, "not a signer name"),
        (GOOD.replace("region: eu-west-1", "region: Europe"), 6, "not an AWS region"),
        (GOOD.replace("key_secret_name: notar/signers/ci/key", "key_secret_name: 'a b'"), 4, "secret name"),
        (GOOD + "    src: does/not/exist\n", 7, "does not exist"),
        (GOOD + "    region: us-east-1\n", 7, "duplicate key 'region'"),
        ("- image: x:1\n", 1, "expected a mapping with one key, `tasks`"),
        ("image: a:1\n", 1, "unknown top-level key 'image'"),
        ("tasks: {image: a}\n", 1, "`tasks` must be a list"),
        ("tasks: []\n", 1, "`tasks` is empty"),
        ("tasks:\n  - just a string\n", 2, "a task must be a mapping"),
        ("tasks:\n  - image: [unclosed\n", 3, "invalid YAML"),
        ("", 1, "the task file is empty"),
        (GOOD + GOOD.split("\n", 1)[1], 7, "is already released by the task at"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TaskError) as info:
        load_tasks(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert words in message, message


def test_flags(tmp_path: Path) -> None:
    values = {
        "image": "127.0.0.1:5000/a/b:1",
        "signer_name": "ci",
        "key_secret_name": "k",
        "passphrase_secret_name": "p",
        "region": "eu-central-1",
    }
    task = make_task(values, where="command line")
    assert task == ReleaseTask(**values, where="command line")  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="command line: missing passphrase_secret_name"):
        make_task({k: v for k, v in values.items() if k != "passphrase_secret_name"}, where="command line")


def test_cli_rejects_a_bad_file_before_fetching_anything(tmp_path: Path) -> None:
    """Exit code 2 with file:line, and not one connection to the AWS endpoint or the trust server."""
    with socket.socket() as trap:
        trap.bind((LOOPBACK, 0))
        trap.listen()
        trap.setblocking(False)
        url = f"http://{LOOPBACK}:{trap.getsockname()[1]}"
        # the first task is valid; the second one is not: nothing at all may run
        path = write(tmp_path, GOOD + "  - image: 127.0.0.1:5000/team/b:1\n    signer: ci\n")
        env = child_env(
            home=tmp_path,
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            NOTAR_TRUST_SERVER=url,
        )
        result = subprocess.run(
            [sys.executable, "-m", "notar", "release", str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert f"{path}:8: unknown key 'signer'" in result.stderr
        assert "Traceback" not in result.stderr
        with pytest.raises(BlockingIOError):
            trap.accept()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "give a TASK_FILE, or --image"),
        (
            ("--image", "127.0.0.1:5000/a/b:1"),
            "missing signer_name, key_secret_name, passphrase_secret_name, region",
        ),
        (
            ("task.yaml", "--image", "127.0.0.1:5000/a/b:1"),
            "--image: give the task in TASK_FILE or as options",
        ),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    write(tmp_path, GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "notar", "release", *args],
        capture_output=True,
        text=True,
        env=child_env(home=tmp_path),
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert words in result.stderr, result.stderr
