"""``notar key``: generate, load, list and rotate signing keys (docker trust key compatible)."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from notar.cli._common import BadInput, Context, trust_options
from notar.cli._common import check_name as _check_name
from notar.crypto import PrivateKey
from notar.errors import NotarError
from notar.keystore import (
    FileKeyStore,
    InsecureKeyFileError,
    KeyFileError,
    KeyNotFoundError,
    KeystoreError,
    encode_public_key,
)

__all__ = ["BadInput", "key"]


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


@click.group()
def key() -> None:
    """Manage signing keys in the trust directory."""


@key.command("generate")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to write NAME.pub.",
)
@click.option(
    "--type", "keytype", type=click.Choice(["ecdsa", "ed25519"]), default="ecdsa", show_default=True
)
@trust_options
def generate(ctx: Context, name: str, directory: str, keytype: str) -> None:
    """Generate a signer key NAME: the private key goes (encrypted) into the trust directory,
    the public key to DIR/NAME.pub for `notar signer add`.

    The passphrase comes from DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE (or a prompt).
    """
    _check_name(name)
    pub_path = Path(directory) / f"{name}.pub"
    if os.path.lexists(pub_path):
        raise click.UsageError(f"public key file already exists: {pub_path}")
    try:
        pub_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"--dir: {e.filename or pub_path.parent}: {_os_reason(e)}") from None
    # Claim the .pub file before the private key is stored, so that a .pub that cannot be written
    # never leaves an orphaned private key behind (and a stored key is removed if writing fails).
    try:
        fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise click.UsageError(f"public key file already exists: {pub_path}") from None
    except OSError as e:
        raise BadInput(f"--dir: {pub_path}: {_os_reason(e)}") from None
    keystore = ctx.keystore()
    private = PrivateKey.generate(keytype)
    stored: Path | None = None
    try:
        with os.fdopen(fd, "wb") as f:
            stored = keystore.add(private, role=name)
            f.write(encode_public_key(private.public_key, role=name))
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        with contextlib.suppress(OSError):
            pub_path.unlink()
        if stored is not None:
            with contextlib.suppress(OSError, KeyNotFoundError):
                keystore.remove(private.key_id)
        if isinstance(e, OSError) and not isinstance(e, NotarError):
            raise click.ClickException(f"cannot write {pub_path}: {_os_reason(e)}") from None
        raise
    if ctx.output == "json":
        click.echo(json.dumps({"name": name, "key_id": private.key_id, "public_key": str(pub_path)}))
    else:
        click.echo(f"Generated key {private.key_id} for {name}; public key: {pub_path}", err=True)
        click.echo(private.key_id)


@key.command("load")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--name", default="signer", show_default=True, help="Signer name stored with the key.")
@trust_options
def load(ctx: Context, file: str, name: str) -> None:
    """Import a private key FILE (PEM; encrypted keys are decrypted with the source passphrase)
    into the trust directory, re-encrypted with the repository passphrase."""
    _check_name(name)
    try:
        info = ctx.keystore().import_key_file(Path(file), role=name)
    except (KeyFileError, InsecureKeyFileError) as e:  # the input file is bad: exit 2, as --help says
        raise BadInput(str(e)) from None
    if ctx.output == "json":
        click.echo(json.dumps({"name": name, "key_id": info.key_id}))
    else:
        click.echo(f"Loaded key {info.key_id} as {name}", err=True)
        click.echo(info.key_id)


def _certificate(keystore: FileKeyStore, key_id: str, now: datetime) -> dict[str, Any] | None:
    """What ``key list`` says about a key's certificate chain (``None``: it has none)."""
    try:
        info = keystore.certificate_info(key_id)
    except KeystoreError as e:
        return {"path": str(keystore.certificate_path(key_id)), "error": str(e)}
    if info is None:
        return None
    return {
        "path": str(info.path),
        "subject": info.subject,
        "not_after": info.not_after.isoformat(),
        "expired": info.not_after < now,
    }


def _certificate_column(cert: dict[str, Any] | None) -> str:
    if cert is None:
        return "-"
    if "error" in cert:
        return "unreadable"
    until = datetime.fromisoformat(cert["not_after"]).strftime("%Y-%m-%d")
    return f"expired {until}" if cert["expired"] else f"until {until}"


@key.command("list")
@trust_options
def list_keys(ctx: Context) -> None:
    """List the private keys in the trust directory (never prints key material).

    CERTIFICATE shows whether a key has a certificate chain for Notation signatures
    (`notar cert generate` / `notar cert import`) and until when the chain is valid.

    Signers whose key stays in AWS KMS (`notar signer add NAME IMAGE --key awskms:///...`)
    follow in a second table with the KMS key they sign with; nothing of such a key but
    its public half and its reference (private/<key ID>.kms) is on disk. In -o json they
    are entries with a "kms" member (the key URI).
    """
    keystore = ctx.keystore()
    infos = sorted(keystore.list(), key=lambda i: (i.role or "", i.gun or "", i.key_id))
    references = keystore.references()
    now = datetime.now(UTC)
    certs = {i.key_id: _certificate(keystore, i.key_id, now) for i in infos}
    certs.update({r.key_id: _certificate(keystore, r.key_id, now) for r in references})
    if ctx.output == "json":
        entries: list[dict[str, Any]] = [
            {"key_id": i.key_id, "role": i.role, "gun": i.gun, "certificate": certs[i.key_id]} for i in infos
        ]
        entries += [
            {"key_id": r.key_id, "role": r.role, "gun": None, "certificate": certs[r.key_id], "kms": r.uri}
            for r in references
        ]
        click.echo(json.dumps(entries, indent=2))
        return
    if not infos and not references:
        click.echo("No signing keys found.", err=True)
        return
    if infos:
        width = max(len(i.role or "") for i in infos) + 3
        click.echo("ROLE".ljust(width) + "GUN".ljust(40) + "KEY ID".ljust(66) + "CERTIFICATE")
        for i in infos:
            click.echo(
                (i.role or "").ljust(width)
                + (i.gun or "").ljust(40)
                + i.key_id.ljust(66)
                + _certificate_column(certs[i.key_id])
            )
    if references:
        if infos:
            click.echo()
        width = max(len("KMS SIGNER"), *(len(r.role) for r in references)) + 3
        click.echo("KMS SIGNER".ljust(width) + "KEY ID".ljust(66) + "CERTIFICATE".ljust(20) + "KMS KEY")
        for r in references:
            click.echo(
                r.role.ljust(width)
                + r.key_id.ljust(66)
                + _certificate_column(certs[r.key_id]).ljust(20)
                + r.uri
            )


@key.command("rotate")
@click.argument("image")
@click.argument("role", type=click.Choice(["targets", "snapshot", "timestamp"]))
@click.option(
    "--server-managed",
    "-r",
    is_flag=True,
    help="Let the trust server hold the new key (snapshot, timestamp).",
)
@trust_options
def rotate(ctx: Context, image: str, role: str, server_managed: bool) -> None:
    """Rotate the ROLE key of IMAGE's repository (root is re-signed with the root key)."""
    ref = ctx.parse(image)
    public = ctx.repository(ref).rotate_key(role, server_managed=server_managed)
    if ctx.output == "json":
        click.echo(json.dumps({"repository": ref.name, "role": role, "key_id": public.key_id}))
    else:
        click.echo(f"Rotated the {role} key of {ref.name}; new key {public.key_id}", err=True)
