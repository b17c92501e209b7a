"""Signers, signing, revocation, inspection and verified resolution of tags."""

from __future__ import annotations

import json
from pathlib import Path

import click

from notar.cli._common import Context, trust_options
from notar.cli.keys import _check_name
from notar.client import NotSignedError, RepositoryNotFoundError, inspect_data, render_json, render_pretty
from notar.crypto import CryptoError, PublicKey
from notar.registry import RegistryClient
from notar.tuf import FileMeta

__all__ = ["inspect", "resolve", "revoke", "sign", "signer"]


@click.group()
def signer() -> None:
    """Add and remove the people and robots allowed to sign a repository."""


@signer.command("add")
@click.argument("name")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Public key (PUBLIC KEY or CERTIFICATE PEM) of the signer. Repeatable.",
)
@trust_options
def signer_add(ctx: Context, name: str, images: tuple[str, ...], keys: tuple[str, ...]) -> None:
    """Add signer NAME to each repository (creating its trust data on first use, as docker does):
    the keys go into delegation targets/NAME and into targets/releases."""
    _check_name(name)
    publics = []
    for path in keys:
        try:
            publics.append(PublicKey.from_pem(Path(path).read_bytes()))
        except CryptoError as e:
            raise click.BadParameter(f"{path}: {e}", param_hint="--key") from e
    results = []
    for image in images:
        ref = ctx.parse(image)
        created = ctx.repository(ref).add_signer(name, publics)
        if created:
            click.echo(f"Initialized trust data for {ref.name}", err=True)
        click.echo(f"Added signer {name} to {ref.name}", err=True)
        results.append(
            {
                "repository": ref.name,
                "signer": name,
                "initialized": created,
                "keys": [k.key_id for k in publics],
            }
        )
    if ctx.output == "json":
        click.echo(json.dumps(results, indent=2))


@signer.command("remove")
@click.argument("name")
@click.argument("images", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove even the last signer of targets/releases.")
@trust_options
def signer_remove(ctx: Context, name: str, images: tuple[str, ...], force: bool) -> None:
    """Remove signer NAME from each repository (its delegation and its keys in targets/releases)."""
    for image in images:
        ref = ctx.parse(image)
        ctx.repository(ref).remove_signer(name, force=force)
        click.echo(f"Removed signer {name} from {ref.name}", err=True)


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--source-registry",
    envvar="NOTAR_SOURCE_REGISTRY",
    help="Read the manifests from this registry (HOST[:PORT] or URL) instead of the image's own, e.g. the "
    "registry behind a `notar gateway`, which serves signed content only.",
)
@trust_options
def sign(ctx: Context, images: tuple[str, ...], source_registry: str | None) -> None:
    """Sign IMAGE:TAG (several tags of one repository are signed in one update).

    The digest and size come from the registry; the tag is signed into every delegation you hold a key
    for (targets/releases and targets/<you>), or into targets when the repository has no signers.
    """
    refs = [ctx.parse(i, need_tag=True) for i in images]
    names = {r.name for r in refs}
    if len(names) != 1:
        raise click.UsageError("all IMAGE:TAG arguments of one `notar sign` must name the same repository")
    ref0 = refs[0]
    targets: dict[str, FileMeta] = {}
    with RegistryClient(
        source_registry or ref0.domain,
        credentials=ctx.registry_credentials(),
        insecure_registries=ctx.insecure_registries,
    ) as registry:
        for ref in refs:
            assert ref.tag is not None
            # GET, not HEAD: the digest we sign is computed from the bytes received, not a header's claim
            desc = registry.get_manifest(ref.path, ref.digest or ref.tag).descriptor
            algorithm, _, hexdigest = desc.digest.partition(":")
            if algorithm != "sha256":
                raise click.ClickException(f"{ref}: only sha256 manifests can be signed, got {desc.digest}")
            targets[ref.tag] = FileMeta(desc.size, {"sha256": bytes.fromhex(hexdigest)})
    result = ctx.repository(ref0).sign(targets)
    for tag, meta in targets.items():
        click.echo(
            f"Signed {ref0.name}:{tag} (sha256:{meta.hashes['sha256'].hex()}) in {', '.join(result.roles)}",
            err=True,
        )
    if ctx.output == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "repository": ref0.name,
                        "tag": t,
                        "digest": "sha256:" + m.hashes["sha256"].hex(),
                        "size": m.length,
                        "roles": result.roles,
                    }
                    for t, m in targets.items()
                ],
                indent=2,
            )
        )


@click.command()
@click.argument("image")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before revoking every tag of a repository.")
@trust_options
def revoke(ctx: Context, image: str, yes: bool) -> None:
    """Revoke the signature of IMAGE:TAG, or of every tag of IMAGE."""
    ref = ctx.parse(image)
    if ref.tag is None and not yes:
        click.confirm(f"Revoke all signatures of {ref.name}?", abort=True, err=True)
    removed = ctx.repository(ref).revoke([ref.tag] if ref.tag else None)
    click.echo(f"Revoked {', '.join(removed)} in {ref.name}", err=True)
    if ctx.output == "json":
        click.echo(json.dumps({"repository": ref.name, "revoked": removed}))


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--pretty", is_flag=True, help="Human-readable tables (like `docker trust inspect --pretty`).")
@trust_options
def inspect(ctx: Context, images: tuple[str, ...], pretty: bool) -> None:
    """Show who signed which tags, the signers and the administrative keys (docker trust inspect's JSON)."""
    items, failed = [], []
    for image in images:
        ref = ctx.parse(image)
        try:
            repo = ctx.repository(ref).refresh()
        except RepositoryNotFoundError:
            failed.append(image)
            continue
        items.append(inspect_data(image, repo, ref.tag))
    if pretty:
        click.echo("\n\n".join(render_pretty(i) for i in items), nl=False)
    else:
        click.echo(render_json(items))
    if failed:
        raise click.ClickException(f"no signatures or cannot access {', '.join(failed)}")


@click.command()
@click.argument("image")
@trust_options
def resolve(ctx: Context, image: str) -> None:
    """Print IMAGE@sha256:... for IMAGE:TAG, only if valid trust data signs the tag
    (targets/releases first, then targets, as docker pull did). Exit code 1 otherwise."""
    ref = ctx.parse(image)
    tag = ref.tag or "latest"
    try:
        repo = ctx.repository(ref).refresh()
    except RepositoryNotFoundError as e:
        raise NotSignedError(f"No valid trust data for {tag}: {e}") from e
    match = repo.resolve(tag)
    digest = "sha256:" + match.meta.hashes["sha256"].hex()
    if ctx.output == "json":
        click.echo(
            json.dumps(
                {
                    "image": f"{ref.name}:{tag}",
                    "digest": digest,
                    "role": match.role,
                    "size": match.meta.length,
                }
            )
        )
    else:
        click.echo(f"{ref.name}@{digest}")
