"""The CLI stays quick to start: daily commands do not import the server's or the pipeline's stacks."""

from __future__ import annotations

import subprocess
import sys

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
