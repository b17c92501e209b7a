"""The ``notar`` command line (thin commands over the library)."""

from __future__ import annotations

import importlib
import logging
import signal
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
    "cert": "notar.cli.certs:cert",
    "signer": "notar.cli.trust:signer",
    "sign": "notar.cli.trust:sign",
    "revoke": "notar.cli.trust:revoke",
    "inspect": "notar.cli.trust:inspect",
    "resolve": "notar.cli.trust:resolve",
    "verify": "notar.cli.verify:verify",
    "migrate": "notar.cli.migrate:migrate",
    "import": "notar.cli.moving:import_",
    "export": "notar.cli.moving:export",
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


class _CliLogHandler(logging.Handler):
    """Library warnings when nothing configured logging: one ``notar: warning: ...`` line on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split())
            sys.stderr.write(f"notar: {record.levelname.lower()}: {message}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _os_error_message(e: OSError) -> str:
    where = e.filename if e.filename is not None else ""
    reason = e.strerror or str(e)
    return f"{where}: {reason}" if where else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors become a one-line ``notar: error: ...`` message and an exit code:
    1 the operation failed, 2 bad arguments or input files, 130 interrupted (Ctrl-C)."""
    # Library warnings (no logging configured: `notar server` and `notar gateway` configure their own)
    # get the same prefix as errors instead of Python's bare "last resort" line.
    saved_last_resort, logging.lastResort = logging.lastResort, _CliLogHandler()
    try:
        return _main(argv)
    finally:
        logging.lastResort = saved_last_resort


def _main(argv: Sequence[str] | None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="notar", standalone_mode=False)
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):
            click.echo("notar: error: interrupted", err=True)
            return 128 + signal.SIGINT
        click.echo("Aborted.", err=True)
        return 1
    except click.UsageError as e:
        e.show()
        return e.exit_code
    except click.ClickException as e:
        if type(e).show is click.ClickException.show:
            click.echo(f"notar: error: {e.format_message()}", err=True)
        else:
            e.show()
        return e.exit_code
    except NotarError as e:
        click.echo(f"notar: error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("notar: error: interrupted", err=True)
        return 128 + signal.SIGINT
    except OSError as e:  # last resort: a file or directory that cannot be used, without a traceback
        click.echo(f"notar: error: {_os_error_message(e)}", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
