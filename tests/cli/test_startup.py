"""The CLI stays quick to start: daily commands do not import the server's or the pipeline's stacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("sqlalchemy", "alembic", "boto3", "botocore", "uvicorn", "jinja2", "starlette")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_import_cli_is_light() -> None:
    assert imported_after("import notar.cli") == set()


def test_sign_path_is_light() -> None:
    code = "from notar.cli import cli\nimport click\ncli.get_command(click.Context(cli), 'sign')"
    assert imported_after(code) == set()


def test_every_command_loads() -> None:
    import click

    from notar.cli import cli

    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        assert cli.get_command(ctx, name) is not None, name


def test_help_lines_are_the_commands_own() -> None:
    """`notar --help` takes each command's line from a table instead of importing it: the table must say
    what the command itself says, at any terminal width."""
    import click

    from notar.cli import _COMMANDS, _FIXED, _SHORT_HELP, _short_help, cli

    ctx = click.Context(cli)
    assert set(_SHORT_HELP) == set(_COMMANDS), "add the new command's line to notar.cli._SHORT_HELP"
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert (name in _FIXED) == bool(command.short_help), name
        for limit in (20, 40, 60, 87, 200):
            assert _short_help(name, limit) == command.get_short_help_str(limit), (name, limit)


def test_help_does_not_import_the_commands() -> None:
    code = "from notar.cli import main\nmain(['--help'])"
    probe = (
        f"{code}\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if m.startswith('notar.cli.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines()[-1].split() == [], out.stdout


# What each daily command must not load (bench/startup_bench.py measures what they cost; this only checks the
# import graph). The trust server is unreachable here: each command runs its path up to the first request.
NOT_FOR_READS = (
    "httpx",
    "httpcore",
    "rich",
    "notar.keystore._store",
    "notar.registry.client",
    "notar.signing",
    "notar.notation",
    "notar.cosign",
    "notar.kms",
    *HEAVY,
)
NOT_FOR_SIGN = ("rich", "pygments", "notar.notation", "notar.cosign", "notar.kms", "notar.transfer", *HEAVY)


def loaded_by_command(argv: list[str], tmp_path: Path, unwanted: tuple[str, ...]) -> set[str]:
    probe = (
        "import sys\nfrom notar.cli import main\n"
        f"main({argv!r})\n"
        f"print(' '.join(sorted(m for m in {unwanted!r} if m in sys.modules)))"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "NOTAR_TRUST_SERVER": "https://127.0.0.1:1",
        "NO_PROXY": "*",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, env=env
    )
    assert "error contacting" in out.stderr or "notar: error" in out.stderr, out.stderr
    return set(out.stdout.splitlines()[-1].split()) if out.stdout.strip() else set()


@pytest.mark.parametrize("command", ["resolve", "inspect"])
def test_reads_load_neither_httpx_nor_signing(command: str, tmp_path: Path) -> None:
    assert loaded_by_command([command, "127.0.0.1:5000/team/app:1.0"], tmp_path, NOT_FOR_READS) == set()


def test_sign_loads_only_its_format(tmp_path: Path) -> None:
    argv = ["sign", "127.0.0.1:1/team/app:1.0", "--format", "v1"]
    assert loaded_by_command(argv, tmp_path, NOT_FOR_SIGN) == set()
