"""``notar import`` and ``notar export``: move repositories' trust data between Notary v1 servers."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from notar.cli._common import Context, trust_options
from notar.client import TrustCache, TrustServer, trust_dir_keys
from notar.client.moving import MoveReport, move_repository
from notar.errors import NotarError
from notar.tuf import TrustPinning, roles

__all__ = ["export", "import_"]

_IMPORT_HELP = """Bring repositories' trust data from another Notary v1 server to this notar server.

For each IMAGE, the whole trust data on the old server (--from: a Go notary-server, Docker Hub's
notary.docker.io, another notar) is downloaded and verified by notar's client from root version 1:
every root rotation, the timestamp, the snapshot, targets and every delegation (signatures, hashes,
versions, expiry; the root this trust directory cached for IMAGE, if any, must be in that history, and
--root-key-id pins as everywhere). Then it is stored on the notar server (--server) with its full root
history, and the keys the old server held move: the notar server makes its own timestamp key (and
snapshot key, when the old server held that one), and one new root version listing them is signed with
the repository's root key from the trust directory (NOTAR_ROOT_PASSPHRASE, or a prompt).

Nothing else changes: the same root key, the same targets and delegation files byte for byte (so the
same signers and signatures), versions that only go up. Every client that trusted the repository on the
old server, docker and notary included, reads it from notar without resetting anything: it walks from
the root it cached to the new one. After storing, notar reads the repository back as such a client and
checks that every signed tag resolves as before.

\b
Refused, with the step named, nothing stored:
  trust data on the old server that does not verify (tampered, rolled
  back, expired); a root key not in the trust directory; a repository
  the notar server already has (--force replaces it, and only by a
  history newer for every role, so no client sees a rollback).

\b
Examples:
  notar import registry.example.com/app --from https://notary.old:4443 \\
      --server https://notar.example.com:4443
  notar import --dry-run -o json registry.example.com/app registry.example.com/db \\
      --from https://notary.old:4443 --from-tls-ca old-ca.pem
"""

_EXPORT_HELP = """Copy repositories' trust data from this notar server to another Notary v1 server.

The way out, with the same guarantees as `notar import`: the history is verified from root version 1,
the root key from the trust directory signs the root versions that give the destination (--to) its own
timestamp (and snapshot) key, and every client that trusted the repository on notar keeps working there.

To another notar server, the history is stored as it is, in one transaction. A Go notary-server takes
trust data only through its update API, one root version at a time: the root versions are replayed, each
signed with the root keys the trust directory holds (clients whose cache holds a root signed by a key
that is no longer here would have to reset), the targets and delegation files are uploaded as they are,
and the timestamp and snapshot versions are brought past notar's so no client sees a rollback.
Delegations that clients ignore (expired, badly signed) are not carried to a Go server, which refuses
them; the report lists them.

\b
Examples:
  notar export registry.example.com/app --to https://notary.new:4443 --to-tls-ca new-ca.pem
"""


def _cached(cache: TrustCache, gun: str) -> dict[str, bytes]:
    """What this trust directory trusted before for *gun*: root, timestamp, snapshot, targets files."""
    out = {}
    for role in (roles.ROOT, roles.TIMESTAMP, roles.SNAPSHOT, roles.TARGETS):
        data = cache.load(gun, role)
        if data is not None:
            out[role] = data
    return out


class _Failed(click.ClickException):
    exit_code = 1


def _report_text(report: MoveReport, verb: str) -> str:
    lines = [
        f"{verb} {report.gun}: {report.source} -> {report.destination}"
        + (" (dry run: nothing was written)" if report.dry_run else "")
    ]
    lines.append(
        f"  root versions 1-{report.root_versions} carried; root version {report.new_root_version} "
        + ("would move" if report.dry_run else "moves")
        + " the server-held keys"
    )
    for role in (roles.TIMESTAMP, roles.SNAPSHOT):
        moved = report.rotated.get(role)
        if moved is not None:
            lines.append(f"  {role} key: {', '.join(moved['from'])} -> {', '.join(moved['to'])}")
        elif role == roles.SNAPSHOT and report.snapshot_key == "client":
            lines.append("  snapshot key: held in the trust directory (unchanged)")
        elif report.dry_run:
            lines.append(f"  {role} key: would be made by {report.destination}")
    files = ", ".join(f"{r} v{v}" for r, v in report.versions.items())
    lines.append(f"  files: {files}")
    lines.append(
        f"  {report.targets} signed tag{'s' if report.targets != 1 else ''}; delegations: "
        + (", ".join(report.delegations) or "none")
    )
    for role, why in report.ignored.items():
        lines.append(f"  ignored by clients (carried as it is): {role}: {why}")
    for item in report.skipped:
        lines.append(f"  not carried: {item}")
    if report.stored:
        lines.append(
            "  at the destination: " + ", ".join(f"{r} v{v}" for r, v in sorted(report.stored.items()))
        )
    return "\n".join(lines)


def _run(
    ctx: Context,
    images: Sequence[str],
    *,
    other: str,
    other_ca: str | None,
    importing: bool,
    dry_run: bool,
    force: bool,
) -> None:
    if not other.startswith(("https://", "http://")):
        raise click.UsageError(f"{'--from' if importing else '--to'} must be an http(s) URL, got {other!r}")
    refs = [ctx.parse(image) for image in images]
    keystore = ctx.keystore()
    keys = trust_dir_keys(keystore)
    cache = TrustCache(ctx.trust_dir)
    verb = (
        ("Would import" if dry_run else "Imported")
        if importing
        else ("Would export" if dry_run else "Exported")
    )
    reports, failed = [], 0
    for ref in refs:
        gun = ref.name
        here = ctx.server_url(ref)
        there = other.rstrip("/")
        pinning = TrustPinning(certs={gun: list(ctx.root_key_ids)}) if ctx.root_key_ids else None
        with (
            TrustServer(there, verify=other_ca or True) as remote,
            TrustServer(here, verify=ctx.verify_for(here)) as local,
        ):
            source, destination = (remote, local) if importing else (local, remote)
            try:
                report = move_repository(
                    gun,
                    source,
                    destination,
                    keys=keys,
                    trusted=_cached(cache, gun),
                    pinning=pinning,
                    dry_run=dry_run,
                    force=force,
                )
            except NotarError as e:
                failed += 1
                click.echo(f"notar: error: {gun}: {e}", err=True)
                continue
        reports.append(report)
        if ctx.output == "json":
            continue
        click.echo(_report_text(report, verb))
    if ctx.output == "json":
        click.echo(json.dumps([r.to_json() for r in reports], indent=2))
    if failed:
        raise _Failed(
            f"{failed} of {len(refs)} repositor{'y' if len(refs) == 1 else 'ies'} not {'imported' if importing else 'exported'}"
        )


@click.command("import", help=_IMPORT_HELP)
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--from", "source", required=True, metavar="URL", help="The old Notary v1 server.")
@click.option(
    "--from-tls-ca",
    type=click.Path(dir_okay=False, exists=True),
    help="CA bundle for the old server (default: the system CAs).",
)
@click.option(
    "--dry-run", is_flag=True, help="Download and verify everything, check the keys; write nothing."
)
@click.option(
    "--force", is_flag=True, help="Replace trust data the notar server has (only by a newer history)."
)
@trust_options
def import_(
    ctx: Context, images: tuple[str, ...], source: str, from_tls_ca: str | None, dry_run: bool, force: bool
) -> None:
    _run(ctx, images, other=source, other_ca=from_tls_ca, importing=True, dry_run=dry_run, force=force)


@click.command("export", help=_EXPORT_HELP)
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--to", "destination", required=True, metavar="URL", help="The other Notary v1 server.")
@click.option(
    "--to-tls-ca",
    type=click.Path(dir_okay=False, exists=True),
    help="CA bundle for the other server (default: the system CAs).",
)
@click.option(
    "--dry-run", is_flag=True, help="Download and verify everything, check the keys; write nothing."
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace trust data the other server has (a notar server only, and only by a newer history).",
)
@trust_options
def export(
    ctx: Context, images: tuple[str, ...], destination: str, to_tls_ca: str | None, dry_run: bool, force: bool
) -> None:
    _run(ctx, images, other=destination, other_ca=to_tls_ca, importing=False, dry_run=dry_run, force=force)
