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
    metavar="FILE|awskms:///KEY",
    help="The signer's public key: a PUBLIC KEY or CERTIFICATE PEM file, or an AWS KMS key "
    "(awskms:///alias/NAME, awskms:///<key id or ARN>, awskms://ENDPOINT/...; ECC_NIST_P256). Repeatable.",
)
@trust_options
def signer_add(ctx: Context, name: str, images: tuple[str, ...], keys: tuple[str, ...]) -> None:
    """Add signer NAME to each repository (creating its trust data on first use, as docker does):
    the keys go into delegation targets/NAME and into targets/releases.

    \b
    A key that never leaves AWS KMS:
      notar signer add ci registry.example.com/team/app --key awskms:///alias/release-signer
      notar sign registry.example.com/team/app:1.4.2      # signs through KMS
    The public key comes from KMS (GetPublicKey; the key ID is computed as for any ECDSA
    key) and the reference is kept in the trust directory (private/<key ID>.kms, no secret
    in it), so `notar sign` finds the signer's key as it finds a key file and asks KMS to
    sign (MessageType=DIGEST, one Sign call per signed role). Docker and notary verify only
    ECC_NIST_P256 keys: other key specs are refused here. Region and credentials come from
    the standard AWS chain (AWS_REGION, AWS_PROFILE, role...); the endpoint from the URI or
    AWS_ENDPOINT_URL_KMS. IAM: kms:GetPublicKey here, kms:Sign when signing.
    """
    _check_name(name)
    publics: list[PublicKey] = []
    kms_keys: dict[str, tuple[str, PublicKey]] = {}  # key ID -> (URI, public key)
    for value in keys:
        if _is_kms(value):
            uri, public = _kms_public_key(value)
            kms_keys[public.key_id] = (uri, public)
            publics.append(public)
            continue
        path = Path(value)
        if not path.is_file():
            raise click.BadParameter(f"{value}: no such file (or an awskms:/// key)", param_hint="--key")
        try:
            publics.append(PublicKey.from_pem(path.read_bytes()))
        except CryptoError as e:
            raise click.BadParameter(f"{value}: {e}", param_hint="--key") from e
    new_references = _keep_kms_references(ctx, name, kms_keys)
    results = []
    try:
        for image in images:
            ref = ctx.parse(image)
            created = ctx.repository(ref).add_signer(name, publics)
            if created:
                click.echo(f"Initialized trust data for {ref.name}", err=True)
            click.echo(f"Added signer {name} to {ref.name}", err=True)
            result: dict[str, object] = {
                "repository": ref.name,
                "signer": name,
                "initialized": created,
                "keys": [k.key_id for k in publics],
            }
            if kms_keys:
                result["kms_keys"] = {kid: uri for kid, (uri, _public) in kms_keys.items()}
            results.append(result)
    finally:
        if not results:  # nothing was added anywhere: do not leave new references behind
            keystore = ctx.keystore()
            for key_id in new_references:
                keystore.remove_reference(key_id)
    for key_id, (uri, _public) in kms_keys.items():
        click.echo(
            f"{name}'s key {key_id[:7]} stays in AWS KMS ({uri}); notar sign signs through it", err=True
        )
    if ctx.output == "json":
        click.echo(json.dumps(results, indent=2))


def _is_kms(value: str) -> bool:
    from notar.kms import is_key_uri

    return is_key_uri(value)


def _kms_public_key(value: str) -> tuple[str, PublicKey]:
    """The KMS key's URI and public key (one GetPublicKey call); Notary v1 needs ECC_NIST_P256."""
    from notar.kms import KeyURIError, KmsKeySpecError, KmsKeyUsageError, KmsSigner

    try:
        kms_signer = KmsSigner.open(value)
        kms_signer.check_notary_v1()
    except (KeyURIError, KmsKeySpecError, KmsKeyUsageError) as e:
        raise click.BadParameter(str(e), param_hint="--key") from None
    return str(kms_signer.uri), kms_signer.public_key


def _keep_kms_references(ctx: Context, name: str, kms_keys: dict[str, tuple[str, PublicKey]]) -> list[str]:
    """Store a reference for each KMS key of signer *name* (private/<key ID>.kms); the IDs stored anew."""
    if not kms_keys:
        return []
    from notar.keystore import KeyExistsError

    keystore = ctx.keystore()
    stored = []
    for key_id, (uri, public) in kms_keys.items():
        existed = keystore.reference(key_id) is not None
        try:
            keystore.add_reference(uri, public, role=name)
        except KeyExistsError as e:
            raise click.BadParameter(str(e), param_hint="--key") from None
        if not existed:
            stored.append(key_id)
    return stored


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
