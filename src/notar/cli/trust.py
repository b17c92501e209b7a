"""Signers, signing, revocation, inspection and verified resolution of tags."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from notar.cli._common import BadInput, Context, check_name, trust_options
from notar.client.errors import NotSignedError, RepositoryNotFoundError
from notar.errors import NotarError

if TYPE_CHECKING:
    from notar.crypto import PublicKey
    from notar.signing import Format, Outcome, SigningKey, Subject

# Each command imports what only it needs when it runs: `notar resolve` and `notar inspect` must not load
# the key store, the registry client or the signing formats (bench/startup_bench.py).

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
    from notar.crypto import CryptoError, PublicKey

    check_name(name)
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


_SIGN_HELP = """Sign IMAGE:TAG... in one signing event, in every format asked for.

Each tag is resolved once to its manifest: media type, digest and size from the bytes the registry
sends (a GET, verified). Every format then signs that same digest:

\b
  v1        Notary v1 / Docker Content Trust: all tags in one update of the
            repository's trust data on the trust server, into every delegation
            you hold a key for (targets/releases and targets/<you>), or into
            targets when the repository has no signers
  notation  a Notation (Notary Project) signature, JWS or --envelope cose,
            with the signer's key and certificate chain, stored in the registry
            as a referrer of the digest (referrers API, else the sha256-<hex>
            tag, merged with what others wrote)
  cosign    a cosign key-based signature (ECDSA key), appended to the
            sha256-<hex>.sig tag

--format is repeatable and takes comma-separated lists; without it, $NOTAR_SIGN_FORMATS (like
"v1,notation"), else v1. Notation and cosign sign with one key: signer NAME's (--signer NAME), or the
only signer whose key is in the trust directory (`notar key generate NAME`, or a KMS key added with
`notar signer add NAME IMAGE --key awskms:///...`). Notation also needs that key's certificate, made
once with `notar cert generate NAME` (verifiers trust it through their trust store).

With --recursive, an index (multi-platform image) is signed and so is every manifest it lists, in
Notation and cosign (Notary v1 signs tags only). Signatures are written to the image's own registry;
--source-registry only changes where the manifests are read.

A failure in one format is reported per tag and per format and never undoes or hides another; blobs
go before manifests and a signature manifest before its referrers entry, so nothing half-written
claims success. With -o json, stdout is a list with one entry per tag and format: repository, tag,
digest, mediaType, size, index (the parent index of a child manifest), format, status (signed,
skipped or failed), error, and what was written (roles; signature, envelope, referrers;
signature_tag).

\b
Examples:
  notar sign registry.example.com/team/app:1.4.2
  notar sign registry.example.com/team/app:1.4.2 --format v1,notation,cosign
  notar sign registry.example.com/team/app:1.4.2 --format notation --signer ci \\
      --envelope cose --expiry 365d --annotation build=1234
  NOTAR_SIGN_FORMATS=v1,cosign notar sign registry.example.com/team/app:multi --recursive

\b
Exit codes: 0 every format signed (or skipped) every tag, 1 something failed
(the report says what), 2 bad arguments.
"""


class _SignFailed(click.ClickException):
    """Some format failed for some subject: one ``notar: error:`` line per format and reason, exit 1."""

    exit_code = 1

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0] if lines else "signing failed")
        self.lines = lines

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(f"notar: error: {line}", err=True)


def _given(click_ctx: click.Context, name: str) -> bool:
    return click_ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _sign_formats(click_ctx: click.Context, values: tuple[str, ...]) -> tuple[Format, ...]:
    """--format values, else $NOTAR_SIGN_FORMATS, else v1; with the options that only some formats take."""
    from notar.signing import Format, SigningSetupError, parse_formats

    try:
        if values:
            fmts = parse_formats(values)
            if not fmts:
                raise SigningSetupError("--format: no format given")
        else:
            fmts = parse_formats([os.environ.get("NOTAR_SIGN_FORMATS", "")]) or (Format.V1,)
    except SigningSetupError as e:
        raise BadInput(f"{e} (from {'--format' if values else '$NOTAR_SIGN_FORMATS'})") from None
    notation, oci = frozenset({Format.NOTATION}), frozenset({Format.NOTATION, Format.COSIGN})
    needs = {"envelope": notation, "expiry": notation, "annotations": oci, "signer": oci}
    for option, wanted in needs.items():
        if _given(click_ctx, option) and not wanted & set(fmts):
            names = " or ".join(sorted(f"--format {f.value}" for f in wanted))
            raise BadInput(f"--{option.rstrip('s')} applies to {names} only")
    return fmts


def _signing_key(ctx: Context, signer: str | None) -> SigningKey | str:
    """Signer NAME's key for Notation and cosign, opened once; or why it cannot be used (that fails those
    formats, not the others). Ambiguity is bad input."""
    from notar.signing import AmbiguousSignerError, choose_signer_key, open_signing_key

    store = ctx.keystore()
    try:
        return open_signing_key(store, choose_signer_key(store, signer))
    except AmbiguousSignerError as e:
        raise BadInput(str(e)) from None
    except (NotarError, OSError) as e:
        return " ".join(str(e).split())


def _kms_signing_key(ctx: Context, uri: str) -> SigningKey:
    """``--key awskms:///...``: the KMS key (one GetPublicKey), with the certificate chain the trust directory
    keeps for it (``notar cert generate NAME --key``), named after its stored reference when there is one."""
    from notar.kms import KeyURIError, KmsKeySpecError, KmsKeyUsageError, KmsSigner
    from notar.signing import SigningKey

    try:
        kms_signer = KmsSigner.open(uri)
    except (KeyURIError, KmsKeySpecError, KmsKeyUsageError) as e:
        raise BadInput(f"--key: {e}") from None
    store = ctx.keystore()
    ref = store.reference(kms_signer.key_id)
    chain = store.certificate_chain(kms_signer.key_id)
    return SigningKey(ref.role if ref else str(kms_signer.uri), kms_signer.key_id, kms_signer, chain)


def _sign_report(outcomes: list[Outcome]) -> list[str]:
    """Progress lines (stderr) for what was signed or skipped; the failure lines, grouped by format and reason."""
    from notar.signing import Format, Status

    failures: dict[tuple[Format, str], list[Subject]] = {}
    for o in outcomes:
        if o.status is Status.FAILED:
            failures.setdefault((o.format, o.error or "failed"), []).append(o.subject)
        elif o.status is Status.SKIPPED:
            click.echo(f"Skipped {o.subject} in {o.format.display}: {o.error}", err=True)
        elif o.format is Format.V1:
            roles = ", ".join(o.detail.get("roles", []))
            click.echo(
                f"Signed {o.subject.repository}:{o.subject.tag} ({o.subject.digest}) in {roles}", err=True
            )
        elif o.format is Format.NOTATION:
            from notar.notation import MEDIA_TYPE_COSE  # loaded already: Notation signed

            kind = "COSE" if o.detail.get("envelope") == MEDIA_TYPE_COSE else "JWS"
            click.echo(
                f"Signed {o.subject} with Notation ({kind}): signature {o.detail.get('signature')}", err=True
            )
        else:
            click.echo(f"Signed {o.subject} with cosign: {o.detail.get('signature_tag')}", err=True)
    lines = []
    for (fmt, error), subjects in failures.items():
        lines.append(f"{fmt.display} failed for {', '.join(str(s) for s in subjects)}: {error}")
    return lines


@click.command(help=_SIGN_HELP, short_help="Sign IMAGE:TAG in Notary v1, Notation and/or cosign.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE:TAG...")
@click.option(
    "--format",
    "formats",
    multiple=True,
    metavar="v1|notation|cosign",
    help="Signature format; repeatable, or comma-separated. Default: $NOTAR_SIGN_FORMATS, else v1.",
)
@click.option(
    "--signer",
    envvar="NOTAR_SIGNER",
    metavar="NAME",
    help="Whose key signs Notation and cosign signatures (needed when the trust directory holds the keys "
    "of several signers) [env NOTAR_SIGNER].",
)
@click.option(
    "--key",
    "kms_key",
    envvar="NOTAR_SIGN_KEY",
    metavar="awskms:///KEY",
    help="Sign with this AWS KMS key in every format, instead of the keys in the trust directory (v1: the key "
    "must be a signer of the repository; notation: its certificate made with `notar cert generate NAME --key`). "
    "Without it, a signer added with --key awskms:///... signs through KMS anyway [env NOTAR_SIGN_KEY].",
)
@click.option(
    "--envelope",
    type=click.Choice(["jws", "cose"]),
    default="jws",
    show_default=True,
    envvar="NOTAR_NOTATION_ENVELOPE",
    help="Notation envelope format [env NOTAR_NOTATION_ENVELOPE].",
)
@click.option(
    "--expiry",
    metavar="DURATION",
    envvar="NOTAR_NOTATION_EXPIRY",
    help="Notation: the signature expires after this long, like notation's --expiry: 30m, 12h, 3h20m, "
    "365d [env NOTAR_NOTATION_EXPIRY].",
)
@click.option(
    "--annotation",
    "-a",
    "annotations",
    multiple=True,
    metavar="KEY=VALUE",
    help="Signed metadata: Notation user metadata (in the payload; keys io.cncf.notary* are reserved) and "
    "cosign annotations (the payload's optional). Repeatable.",
)
@click.option(
    "--recursive",
    is_flag=True,
    help="Also sign every manifest an index lists (Notation and cosign), as cosign sign --recursive does.",
)
@click.option(
    "--source-registry",
    envvar="NOTAR_SOURCE_REGISTRY",
    help="Read the manifests from this registry (HOST[:PORT] or URL) instead of the image's own, e.g. the "
    "registry behind a `notar gateway`, which serves signed content only.",
)
@trust_options
@click.pass_context
def sign(
    click_ctx: click.Context,
    ctx: Context,
    images: tuple[str, ...],
    formats: tuple[str, ...],
    signer: str | None,
    envelope: str,
    expiry: str | None,
    annotations: tuple[str, ...],
    recursive: bool,
    source_registry: str | None,
    kms_key: str | None,
) -> None:
    from notar.client.keys import MemoryKeys
    from notar.registry.client import RegistryClient
    from notar.signing import (
        Format,
        FormatSigner,
        SigningSetupError,
        Unavailable,
        V1Format,
        parse_annotations,
        parse_duration,
        resolve_subjects,
        sign_event,
    )

    refs = [ctx.parse(i, need_tag=True) for i in images]
    if len({r.name for r in refs}) != 1:
        raise click.UsageError("all IMAGE:TAG arguments of one `notar sign` must name the same repository")
    fmts = _sign_formats(click_ctx, formats)
    oci = [f for f in fmts if f is not Format.V1]
    try:
        lifetime = parse_duration(expiry) if expiry and Format.NOTATION in fmts else None
    except SigningSetupError as e:
        raise BadInput(f"--expiry: {e}") from None
    try:
        metadata = parse_annotations(annotations, notation=Format.NOTATION in fmts)
    except SigningSetupError as e:
        raise BadInput(f"--annotation: {e}") from None
    if kms_key and _given(click_ctx, "signer"):
        raise BadInput("--key and --signer exclude each other (--key names the key itself)")
    kms = _kms_signing_key(ctx, kms_key) if kms_key else None
    key = kms if kms is not None else _signing_key(ctx, signer) if oci else None
    ref0 = refs[0]
    registry_options: dict[str, Any] = {
        "credentials": ctx.registry_credentials(),
        "insecure_registries": ctx.insecure_registries,
    }
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(RegistryClient(ref0.domain, **registry_options))
        source = target
        if source_registry:
            source = stack.enter_context(RegistryClient(source_registry, **registry_options))
        subjects = resolve_subjects(source, refs, recursive=recursive)
        signers: list[FormatSigner] = []
        for fmt in fmts:
            if fmt is Format.V1 and kms is not None:
                repository = ctx.repository(ref0)
                repository.signing_keys = MemoryKeys([(kms.signer, kms.name)])  # this key only
                signers.append(V1Format(repository, initialize=False))
            elif fmt is Format.V1:
                signers.append(V1Format(ctx.repository(ref0)))
            elif isinstance(key, str) or key is None:
                signers.append(Unavailable(fmt, key or "no key"))
            elif fmt is Format.NOTATION:
                from notar.notation import MEDIA_TYPE_COSE, MEDIA_TYPE_JWS
                from notar.signing import NotationFormat

                try:
                    media_type = MEDIA_TYPE_COSE if envelope == "cose" else MEDIA_TYPE_JWS
                    signers.append(
                        NotationFormat(
                            target, key, envelope=media_type, expiry=lifetime, user_metadata=metadata
                        )
                    )
                except SigningSetupError as e:
                    signers.append(Unavailable(fmt, str(e)))
            else:
                from notar.signing import CosignFormat

                signers.append(CosignFormat(target, key.signer, annotations=metadata))
        outcomes = sign_event(subjects, signers)
    if ctx.output == "json":
        click.echo(json.dumps([o.to_json() for o in outcomes], indent=2))
    failed = _sign_report(outcomes)
    if failed:
        raise _SignFailed(failed)


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
    from notar.client.inspect import inspect_data, render_json, render_pretty

    items, failed = [], []
    for image in images:
        ref = ctx.parse(image)
        try:
            repo = ctx.updater(ref).refresh()
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
        repo = ctx.updater(ref).refresh()
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
