"""``notar release`` (sign what a build pushes, key from AWS Secrets Manager) and ``notar secrets``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from notar.cli._common import BadInput, Context, trust_options
from notar.cli._common import check_name as _check_name
from notar.keystore import KeyFileError, read_regular_file
from notar.release import (
    ReleaseOptions,
    ReleaseResult,
    ReleaseTask,
    SecretsError,
    SecretsManager,
    TaskError,
    check_value,
    default_secret_names,
    load_tasks,
    make_task,
    put_signer,
    run_tasks,
    wipe,
)

__all__ = ["release", "secrets"]

_REGION_ENV = ["NOTAR_RELEASE_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]
_MAX_PASSPHRASE_BYTES = 4096
_MAX_KEY_FILE_BYTES = 65536  # what fits into a secret (Secrets Manager's limit)
_TASK_FLAGS = {
    "image": "--image",
    "src": "--src",
    "signer_name": "--signer-name",
    "key_secret_name": "--key-secret-name",
    "passphrase_secret_name": "--passphrase-secret-name",
    "region": "--region",
    "formats": "--format",
    "cert_secret_name": "--cert-secret-name",
}


class TaskFileError(BadInput):
    exit_code = 2


class TasksFailed(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


class _Reporter:
    """Progress on stderr: a rich spinner and ticks on a terminal, plain lines otherwise (CI logs)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.index: dict[int, int] = {}
        self.tty = sys.stderr.isatty()
        self.console: Any = None
        self.status: Any = None
        if self.tty:
            from rich.console import Console

            self.console = Console(stderr=True)

    def _n(self, task: ReleaseTask) -> str:
        n = self.index.setdefault(id(task), len(self.index) + 1)
        return f"[{n}/{self.total}]"

    def __call__(self, task: ReleaseTask, phase: str, event: str) -> None:
        label = f"{self._n(task)} {task.image}: {phase}"
        if self.console is None:
            if event == "start":
                click.echo(f"{label} ...", err=True)
            return
        if event == "start":
            if self.status is None:
                self.status = self.console.status(label)
                self.status.start()
            else:
                self.status.update(label)
        else:
            self.console.print(f"[green]✓[/green] {label}", highlight=False)

    def finish(self, result: ReleaseResult) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        head = f"{self._n(result.task)} {result.task.image}"
        if result.ok:
            line = f"{head}: signed {result.digest} by {result.task.signer_name} (key {result.key_id})"
            line += f" on {result.trust_server}" if result.trust_server else ""
            if result.task.formats != ("v1",):
                line += f" as {', '.join(result.task.formats)}"
            if self.console is not None:
                self.console.print(f"[bold green]{line}[/bold green]", highlight=False)
            else:
                click.echo(line, err=True)
        else:
            line = f"{head}: FAILED in {result.failed_phase or 'setup'}: {result.error}"
            if self.console is not None:
                self.console.print(f"[bold red]{line}[/bold red]", highlight=False)
            else:
                click.echo(line, err=True)


def _tasks_from_flags(
    ctx: click.Context, file: str | None, flags: dict[str, str | None]
) -> list[ReleaseTask]:
    given = [
        _TASK_FLAGS[k]
        for k in flags
        if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE and flags[k] is not None
    ]
    try:
        if file is not None:
            if given:
                raise click.UsageError(
                    f"{', '.join(given)}: give the task in TASK_FILE or as options, not both"
                )
            return load_tasks(Path(file))
        if not flags.get("image"):
            raise click.UsageError("give a TASK_FILE, or --image IMAGE:TAG and the signer options")
        values = {k: v for k, v in flags.items() if v}
        return [make_task(values, where="command line", base=Path.cwd())]
    except TaskError as e:
        raise TaskFileError(str(e)) from e


@click.command()
@click.argument("task_file", required=False, type=click.Path(dir_okay=False))
@click.option("--image", envvar="NOTAR_RELEASE_IMAGE", help="IMAGE:TAG to sign [env NOTAR_RELEASE_IMAGE].")
@click.option(
    "--src",
    envvar="NOTAR_RELEASE_SRC",
    help="OCI layout directory or docker save archive to push first (sign, then tag). Omit to sign an "
    "image already in the registry [env NOTAR_RELEASE_SRC].",
)
@click.option(
    "--signer-name", envvar="NOTAR_SIGNER_NAME", help="Signer (delegation) name [env NOTAR_SIGNER_NAME]."
)
@click.option(
    "--key-secret-name",
    envvar="NOTAR_KEY_SECRET_NAME",
    help="Secret holding the encrypted private key [env NOTAR_KEY_SECRET_NAME].",
)
@click.option(
    "--passphrase-secret-name",
    envvar="NOTAR_PASSPHRASE_SECRET_NAME",
    help="Secret holding the key's passphrase [env NOTAR_PASSPHRASE_SECRET_NAME].",
)
@click.option(
    "--region",
    envvar=_REGION_ENV,
    help="AWS region of the secrets [env NOTAR_RELEASE_REGION, AWS_REGION, AWS_DEFAULT_REGION].",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    metavar="v1|notation|cosign",
    envvar="NOTAR_RELEASE_FORMATS",
    help="Signature formats, repeatable or comma-separated (default v1), as for `notar sign` "
    "[env NOTAR_RELEASE_FORMATS].",
)
@click.option(
    "--cert-secret-name",
    envvar="NOTAR_CERT_SECRET_NAME",
    help="With --format notation: the secret holding the signer's PEM certificate chain "
    "[env NOTAR_CERT_SECRET_NAME].",
)
@trust_options
@click.pass_context
def release(
    click_ctx: click.Context,
    ctx: Context,
    task_file: str | None,
    image: str | None,
    src: str | None,
    signer_name: str | None,
    key_secret_name: str | None,
    passphrase_secret_name: str | None,
    region: str | None,
    formats: tuple[str, ...],
    cert_secret_name: str | None,
) -> None:
    """Push (optionally) and sign images in a release job, with the signer's key from AWS Secrets Manager.

    \b
    TASK_FILE is YAML:
      tasks:
        - image: registry.example.com/team/app:1.4.2
          src: build/app-oci          # optional; relative to the task file
          signer_name: ci
          key_secret_name: notar/signers/ci/key
          passphrase_secret_name: notar/signers/ci/passphrase
          region: eu-west-1
          formats: [v1, notation, cosign]   # optional, default [v1]
          cert_secret_name: notar/signers/ci/cert   # with notation
    Or give one task with the options (each also from its environment variable).

    formats adds Notation and cosign signatures of the same digest (`notar sign --format`), stored in
    the registry before the tag is moved; notation needs the signer's PEM certificate chain in a
    secret (cert_secret_name: `notar cert generate` writes it). A failed format fails the task, the
    others are still tried, and the tag is not moved.

    The key is decrypted in memory only and never written to disk. After publishing, the tag is resolved
    through the trust server again. Exit codes: 0 every task signed, 1 a task failed (the others still
    run), 2 bad task file or options.
    """
    flags = {
        "image": image,
        "src": src,
        "signer_name": signer_name,
        "key_secret_name": key_secret_name,
        "passphrase_secret_name": passphrase_secret_name,
        "region": region,
        "formats": ",".join(formats) or None,
        "cert_secret_name": cert_secret_name,
    }
    tasks = _tasks_from_flags(click_ctx, task_file, flags)
    for task in tasks:  # the trust server rules need no network: check them up front too
        ctx.server_url(task.reference)
    options = ReleaseOptions(
        trust_dir=ctx.trust_dir,
        server_url=ctx.server_url,
        tls_verify=ctx.verify_for,
        registry_credentials=ctx.registry_credentials(),
        insecure_registries=ctx.insecure_registries,
        root_key_ids=ctx.root_key_ids,
    )
    reporter = _Reporter(len(tasks))
    results: list[ReleaseResult] = []
    for task in tasks:
        (result,) = run_tasks([task], options, reporter)
        reporter.finish(result)
        results.append(result)
    if ctx.output == "json":
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            if r.ok:
                click.echo(f"{r.task.reference.name}@{r.digest}")
    failed = [r for r in results if not r.ok]
    if failed:
        raise TasksFailed(
            f"{len(failed)} of {len(results)} release task(s) failed: "
            + "; ".join(r.task.image for r in failed)
        )


@click.group()
def secrets() -> None:
    """Keep signing keys for `notar release` in AWS Secrets Manager."""


def _read_passphrase_file(passphrase_file: str) -> bytes:
    """At most :data:`_MAX_PASSPHRASE_BYTES` from the file (or stdin for '-'). Pipes are fine
    (``--passphrase-file <(pass show ...)``); anything that cannot be read is a one-line error."""
    where = "stdin" if passphrase_file == "-" else passphrase_file  # noqa: S105 - the stdin marker
    try:
        if passphrase_file == "-":  # noqa: S105
            raw = sys.stdin.buffer.read(_MAX_PASSPHRASE_BYTES + 1)
        else:
            with open(passphrase_file, "rb") as f:
                raw = f.read(_MAX_PASSPHRASE_BYTES + 1)
    except OSError as e:
        raise BadInput(f"--passphrase-file: {where}: {e.strerror or e}") from None
    if len(raw) > _MAX_PASSPHRASE_BYTES:
        raise BadInput(f"--passphrase-file: {where}: larger than {_MAX_PASSPHRASE_BYTES} bytes")
    return raw


def _check_put_signer_options(region: str, key_secret_name: str, passphrase_secret_name: str) -> None:
    """The same rules as for a release task, so that what is stored can be released later."""
    for option, field, value in (
        ("--region", "region", region),
        ("--key-secret-name", "key_secret_name", key_secret_name),
        ("--passphrase-secret-name", "passphrase_secret_name", passphrase_secret_name),
    ):
        why = check_value(field, value)
        if why:
            raise BadInput(f"{option}: {why}")


def _read_passphrase(passphrase_file: str | None, passphrase_env: str | None) -> str:
    if passphrase_file and passphrase_env:
        raise click.UsageError("give --passphrase-file or --passphrase-env, not both")
    if passphrase_file:
        raw = _read_passphrase_file(passphrase_file)
        buf = bytearray(raw)
        del raw
        try:
            if buf.endswith(b"\r\n"):
                del buf[-2:]
            elif buf.endswith(b"\n"):
                del buf[-1:]
            return bytes(buf).decode("utf-8", "surrogateescape")
        finally:
            wipe(buf)
    if passphrase_env:
        value = os.environ.get(passphrase_env)
        if not value:
            raise click.UsageError(f"environment variable {passphrase_env} is not set or empty")
        return value
    if not sys.stdin.isatty():
        raise click.UsageError(
            "no terminal to ask for the passphrase: use --passphrase-file or --passphrase-env"
        )
    return str(click.prompt("Passphrase of the key", hide_input=True, err=True))


@secrets.command("put-signer")
@click.argument("name")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The signer's ENCRYPTED private key file (<trust dir>/private/<key ID>.key from `notar key generate`).",
)
@click.option(
    "--passphrase-file", type=click.Path(dir_okay=False), help="File holding the passphrase ('-': stdin)."
)
@click.option("--passphrase-env", metavar="VAR", help="Environment variable holding the passphrase.")
@click.option("--region", envvar=_REGION_ENV, required=True, help="AWS region [env AWS_REGION, ...].")
@click.option("--key-secret-name", help="Default: notar/signers/NAME/key.")
@click.option("--passphrase-secret-name", help="Default: notar/signers/NAME/passphrase.")
@click.option("--kms-key-id", help="KMS key for new secrets (default: the account's aws/secretsmanager key).")
@click.option("--force", is_flag=True, help="Replace existing secrets (stores a new version).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
def put_signer_command(
    name: str,
    key_file: str,
    passphrase_file: str | None,
    passphrase_env: str | None,
    region: str,
    key_secret_name: str | None,
    passphrase_secret_name: str | None,
    kms_key_id: str | None,
    force: bool,
    output: str,
) -> None:
    """Upload signer NAME's encrypted key and its passphrase (one-time setup for `notar release`).

    The passphrase must decrypt the key before anything is uploaded; existing secrets are not
    overwritten without --force.
    """
    _check_name(name)
    default_key, default_pass = default_secret_names(name)
    key_secret_name = key_secret_name or default_key
    passphrase_secret_name = passphrase_secret_name or default_pass
    _check_put_signer_options(region, key_secret_name, passphrase_secret_name)
    try:
        key_pem = bytearray(read_regular_file(key_file, limit=_MAX_KEY_FILE_BYTES))
    except KeyFileError as e:
        raise BadInput(f"--key: {e}") from None
    passphrase = _read_passphrase(passphrase_file, passphrase_env)
    try:
        stored = put_signer(
            name,
            key_pem,
            passphrase,
            secrets=SecretsManager(region),
            key_secret_name=key_secret_name,
            passphrase_secret_name=passphrase_secret_name,
            force=force,
            kms_key_id=kms_key_id,
        )
    except SecretsError as e:
        raise click.ClickException(str(e)) from None
    finally:
        wipe(key_pem)
        del passphrase
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "signer": stored.signer,
                    "key_id": stored.key_id,
                    "region": stored.region,
                    "key_secret": {"name": stored.key_secret_name, "arn": stored.key_secret_arn},
                    "passphrase_secret": {
                        "name": stored.passphrase_secret_name,
                        "arn": stored.passphrase_secret_arn,
                    },
                },
                indent=2,
            )
        )
    else:
        click.echo(f"Stored signer {name} (key {stored.key_id}) in {region}:", err=True)
        click.echo(f"  key:        {stored.key_secret_arn}", err=True)
        click.echo(f"  passphrase: {stored.passphrase_secret_arn}", err=True)
