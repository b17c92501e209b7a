"""The ``notar`` command line (thin commands over the library)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from notar import __version__
from notar.errors import NotarError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="notar")
def cli() -> None:
    """Sign container images with Docker Content Trust (Notary v1) and verify them.

    \b
    Exit codes: 0 success, 1 the operation failed (for example no valid trust data),
    2 usage error (bad arguments or input files).
    """


def _register() -> None:
    from notar.cli.gateway import gateway
    from notar.cli.images import pull, push
    from notar.cli.keys import key
    from notar.cli.release import release, secrets
    from notar.cli.server import server
    from notar.cli.trust import inspect, resolve, revoke, sign, signer

    for command in (
        server,
        key,
        signer,
        sign,
        revoke,
        inspect,
        resolve,
        push,
        pull,
        gateway,
        release,
        secrets,
    ):
        cli.add_command(command)


_register()


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
