"""The ``notar`` command line (thin commands over the library)."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import types
from collections.abc import Sequence

import click

from notar import __version__
from notar.errors import NotarError

__all__ = ["cli", "main"]


def _without_httpx_command_line() -> None:
    """Keep httpx from importing its own command line into notar's processes.

    ``import httpx`` runs ``from ._main import main`` (the ``httpx`` console script), which imports rich and
    pygments: 35-45 ms of every notar command that talks HTTP (docs/benchmarks.md, "CLI start-up"), for a
    function notar never calls. A stand-in module is registered before httpx is imported; its ``main`` loads
    and runs the real one, so nothing is lost. Nothing else of httpx changes.
    """
    name = "httpx._main"
    if "httpx" in sys.modules or name in sys.modules:
        return
    stand_in = types.ModuleType(name, "Stand-in for httpx's command line; notar.cli loads it on first use.")

    def main(*args: object, **kwargs: object) -> object:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        real = importlib.import_module(name)
        return real.main(*args, **kwargs)

    stand_in.__dict__["main"] = main
    sys.modules[name] = stand_in


_without_httpx_command_line()


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


# What `notar --help` lists for each command, so that the list does not import every command's module (the
# server's SQLAlchemy, boto3, ...: `notar --help` took 1.2 s): the first sentence of its help, which click
# shortens to fit the terminal as below, or (_FIXED) the short_help it sets, which click never shortens. A
# command missing here is imported for its line; tests/cli/test_startup.py checks each line against the
# command's own `get_short_help_str` at several widths.
_SHORT_HELP = {
    "cert": "Certificates for signer keys: Notation signatures carry one (x5c) and are trusted through it.",
    "export": "Copy repositories' trust data from this notar server to another Notary v1 server.",
    "gateway": "Run a registry gateway that serves only signed content (Docker Content Trust, Notation, cosign).",
    "import": "Bring repositories' trust data from another Notary v1 server to this notar server.",
    "inspect": "Show who signed which tags, the signers and the administrative keys (docker trust inspect's JSON).",
    "key": "Manage signing keys in the trust directory.",
    "migrate": "Sign what Notary v1 vouches for as Notation or cosign signatures.",
    "pull": "Pull IMAGE:TAG into an OCI image layout, only if TAG is validly signed.",
    "push": "Push SRC to the registry as IMAGE:TAG and sign it (Docker Content Trust).",
    "release": "Push (optionally) and sign images in a release job, with the signer's key from AWS Secrets Manager.",
    "resolve": "Print IMAGE@sha256:... for IMAGE:TAG, only if valid trust data signs the tag (targets/releases "
    "first, then targets, as docker pull did).",
    "revoke": "Revoke the signature of IMAGE:TAG, or of every tag of IMAGE.",
    "secrets": "Keep signing keys for `notar release` in AWS Secrets Manager.",
    "server": "Run the trust server (Notary v1 API; `notary` and `docker trust` work against it).",
    "sign": "Sign IMAGE:TAG in Notary v1, Notation and/or cosign.",
    "signer": "Add and remove the people and robots allowed to sign a repository.",
    "verify": "Verify the Notation (or cosign) signatures of an image in its registry.",
}
_FIXED = frozenset({"migrate", "sign", "verify"})


def _short_help(name: str, limit: int) -> str | None:
    """The line of command *name* in ``notar --help`` at *limit* characters, shortened as click does; None
    when the table does not have it."""
    text = _SHORT_HELP.get(name)
    if text is None or len(text) <= limit or name in _FIXED:
        return text
    if limit < 3:
        return "..."
    import textwrap

    return textwrap.shorten(text, limit, placeholder="...", break_on_hyphens=False)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, each line from :data:`_SHORT_HELP` (a command not in it is imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            text = _short_help(name, limit)
            if text is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                text = command.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
