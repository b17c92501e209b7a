"""The ``notar`` command line (thin commands over the library)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from notar import __version__
from notar.errors import NotarError

__all__ = ["cli", "main"]


# Subcommands are imported only when used: `notar sign` must not pay for the server's SQLAlchemy or the
# release pipeline's boto3 (measured: import time was 70 % of a `notar sign` process).
_COMMANDS = {
    "server": "notar.cli.server:server",
    "key": "notar.cli.keys:key",
    "signer": "notar.cli.trust:signer",
    "sign": "notar.cli.trust:sign",
    "revoke": "notar.cli.trust:revoke",
    "inspect": "notar.cli.trust:inspect",
    "resolve": "notar.cli.trust:resolve",
    "push": "notar.cli.images:push",
    "pull": "notar.cli.images:pull",
    "gateway": "notar.cli.gateway:gateway",
    "release": "notar.cli.release:release",
    "secrets": "notar.cli.release:secrets",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="notar")
def cli() -> None:
    """Sign container images with Docker Content Trust (Notary v1) and verify them.

    \b
    Exit codes: 0 success, 1 the operation failed (for example no valid trust data),
    2 usage error (bad arguments or input files).
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors from notar become a one-line message and exit code 1."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="notar", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except NotarError as e:
        click.echo(f"notar: error: {e}", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
