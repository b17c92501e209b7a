"""``notar migrate``: Notation or cosign signatures for exactly what valid Notary v1 trust data vouches for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from notar.cli._common import Context, trust_options
from notar.cli.keys import BadInput
from notar.client import RepositoryNotFoundError
from notar.errors import NotarError
from notar.registry import RegistryClient, RegistryError
from notar.signing import (
    AmbiguousSignerError,
    Format,
    FormatSigner,
    MigrationItem,
    MigrationStatus,
    SigningKey,
    SigningSetupError,
    choose_signer_key,
    open_signing_key,
)
from notar.signing import (
    migrate as migrate_repository,
)

__all__ = ["migrate"]

_HELP = """Sign, as Notation or cosign signatures, every digest that valid Notary v1 trust data vouches for.

The migration off Docker Content Trust: for each tag of IMAGE (or only IMAGE:TAG), the digest comes
from the repository's Notary v1 trust data, fetched from the trust server and verified now by notar's
client (signatures, thresholds, versions, expiry; the root trusted on first use or pinned with
--root-key-id), with docker's rule: targets/releases, else targets. Nothing is taken from the tag in the
registry, which may have moved; the manifest is fetched by that digest and checked against the size v1
signed. That digest is then signed with signer NAME's key (and, for Notation, its certificate: `notar
cert generate NAME` once), as `notar sign --format notation|cosign` would.

\b
Never signed:
  a tag v1 does not vouch for now: unsigned, revoked, signed only in a
  delegation docker ignores, or in a role whose metadata expired or is
  badly signed (each reported with the reason); the whole repository is
  refused when its trust data is missing, stale, expired or invalid.
Skipped (idempotent):
  a digest that already carries a signature that verifies as the same
  signer's: Notation, the same leaf certificate in x5c, the envelope
  verifying and not expired; cosign, a .sig layer verifying with the key.

Run it again after a failure, or any time during a grace period when both are signed: only what is
missing is signed. --dry-run checks everything and writes nothing ("would-sign").

\b
Report: one line per tag (stdout), or with -o json a list of
{repository, tag, digest, format, status (signed | would-sign | skipped |
failed), reason, v1_role, signature...}.

\b
Examples:
  notar migrate registry.example.com/team/app --format notation --signer ci --dry-run
  notar migrate registry.example.com/team/app --format notation --signer ci
  notar migrate registry.example.com/team/app:1.4.2 --format cosign --signer ci -o json

\b
Exit codes: 0 every vouched-for tag signed or skipped, 1 a tag failed or the trust
data is not valid, 2 bad arguments (or the signer has no key / certificate).
"""


class _Failed(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


def _key(ctx: Context, signer: str, fmt: Format) -> SigningKey:
    store = ctx.keystore()
    try:
        key = open_signing_key(store, choose_signer_key(store, signer))
        if fmt is Format.NOTATION:
            key.require_chain()
    except (AmbiguousSignerError, SigningSetupError) as e:
        raise BadInput(str(e)) from None
    return key


def _line(item: MigrationItem) -> str:
    what = f"{item.tag} ({item.digest})" if item.digest else item.tag
    if item.status is MigrationStatus.SIGNED:
        return f"signed      {what}: signature {item.detail.get('signature')}"
    if item.status is MigrationStatus.WOULD_SIGN:
        return f"would sign  {what} (vouched for by {item.role})"
    label = "skipped" if item.status is MigrationStatus.SKIPPED else "FAILED"
    return f"{label:<11} {what}: {item.reason}"


def _summary(items: Sequence[MigrationItem]) -> str:
    counts = {status: sum(1 for i in items if i.status is status) for status in MigrationStatus}
    return ", ".join(f"{n} {status.value}" for status, n in counts.items() if n) or "no tags"


@click.command(help=_HELP, short_help="Sign what Notary v1 vouches for as Notation or cosign signatures.")
@click.argument("image", metavar="IMAGE[:TAG]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["notation", "cosign"]),
    required=True,
    help="The signature format to migrate to.",
)
@click.option(
    "--signer",
    required=True,
    envvar="NOTAR_SIGNER",
    metavar="NAME",
    help="Whose key (and certificate) signs [env NOTAR_SIGNER].",
)
@click.option(
    "--envelope",
    type=click.Choice(["jws", "cose"]),
    default="jws",
    show_default=True,
    help="Notation envelope format.",
)
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
@trust_options
def migrate(ctx: Context, image: str, fmt: str, signer: str, envelope: str, dry_run: bool) -> None:
    ref = ctx.parse(image)
    if ref.digest is not None:
        raise BadInput(f"{image}: give IMAGE or IMAGE:TAG; the digests come from the Notary v1 trust data")
    target = Format(fmt)
    key = _key(ctx, signer, target)
    try:
        trusted = ctx.repository(ref).refresh()
    except RepositoryNotFoundError as e:
        raise _Failed(f"{ref.name} has no Notary v1 trust data ({e}): nothing to migrate") from None
    except NotarError as e:
        raise _Failed(
            f"refusing to migrate {ref.name}: its Notary v1 trust data is not valid now: {e}"
        ) from None
    with RegistryClient(
        ref.domain, credentials=ctx.registry_credentials(), insecure_registries=ctx.insecure_registries
    ) as client:
        tags: list[str] = []
        if ref.tag is None:
            try:
                tags = client.tags(ref.path)
            except RegistryError as e:
                click.echo(f"notar: warning: cannot list the tags of {ref.name} ({e}): only the tags "
                           "Notary v1 signs are reported", err=True)  # fmt: skip
        format_signer: FormatSigner | None = None
        if not dry_run and target is Format.NOTATION:
            from notar.notation import MEDIA_TYPE_COSE, MEDIA_TYPE_JWS
            from notar.signing import NotationFormat

            media_type = MEDIA_TYPE_COSE if envelope == "cose" else MEDIA_TYPE_JWS
            format_signer = NotationFormat(client, key, envelope=media_type)
        elif not dry_run:
            from notar.signing import CosignFormat

            format_signer = CosignFormat(client, key.signer)
        items = migrate_repository(
            trusted,
            client,
            ref,
            key,
            target,
            format_signer,
            registry_tags=tags,
            now=lambda: datetime.now(UTC),
        )
    if ctx.output == "json":
        click.echo(json.dumps([i.to_json(ref.name, target) for i in items], indent=2))
    else:
        for item in items:
            click.echo(_line(item))
    verb = "Would migrate" if dry_run else "Migrated"
    click.echo(
        f"{verb} {ref.name} to {target.display} as {key.name} (key {key.short}): {_summary(items)}", err=True
    )
    failed = [i.tag for i in items if i.status is MigrationStatus.FAILED]
    if failed:
        raise _Failed(f"{len(failed)} tag(s) of {ref.name} failed: {', '.join(failed)}")
