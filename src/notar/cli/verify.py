"""``notar verify``: verify the signatures of an image where they live, in its registry.

Notation (the default) as ``notation verify`` does it, from notation's own trust policy and trust store
(:mod:`notar.notation.loader`); cosign (``--key cosign.pub``) from cosign's ``sha256-<hex>.sig`` tag
(:mod:`notar.cosign`). The registry work (resolving the tag, finding the referrers, fetching within the
size limits) is :mod:`notar.registry`; the verdicts are the pure packages'. Exit codes: 0 verified,
1 not verified or the registry failed, 2 bad input (reference, policy, trust store, key).

Size: the command's two formats share the reference, registry and output code (notation's messages,
``-o json``); the verdicts come from the pure packages.
"""

from __future__ import annotations

import dataclasses
import io
import json
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from notar.notation import (
    Descriptor,
    NoApplicablePolicyError,
    SignatureBlob,
    SignatureManifestError,
    SignatureResult,
    Status,
    Step,
    TrustPolicyDocument,
    TrustPolicyStatement,
    TrustStore,
    TrustStoreError,
    Verdict,
    parse_signature_manifest,
    verify_artifact,
)
from notar.notation.certs import subject_text
from notar.notation.loader import (
    default_config_dir,
)
from notar.notation.manifest import MAX_MANIFEST_SIZE, check_blob
from notar.notation.policy import Level
from notar.notation.verify import MAX_SIGNATURES
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    BlobNotFoundError,
    DigestMismatchError,
    DockerConfigCredentials,
    InvalidReferenceError,
    ManifestNotFoundError,
    Reference,
    Referrer,
    Referrers,
    RegistryClient,
    RegistryProtocolError,
    list_referrers,
    parse_reference,
    read_cosign_signatures,
)

__all__ = ["verify"]

_TAG_WARNING = (
    "Warning: The resolved digest may not point to the same signed artifact, since tags are mutable."
)


class _BadInput(click.ClickException):
    """Bad input (reference, policy, trust store, key): one ``notar: error:`` line, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


class _NotVerified(click.ClickException):
    """Verification failed: notation's ``Error: ...`` block (the reasons indented below it), exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


def _bad(message: str) -> NoReturn:
    raise _BadInput(message)


# ------------------------------------------------------------------------------------- input files


def _reference(text: str) -> Reference:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as e:
        _bad(str(e))
    return ref if ref.tag or ref.digest else dataclasses.replace(ref, tag="latest")


def _read_file(path: Path, *, limit: int, what: str) -> bytes:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            _bad(f"{what} {path}: not a regular file")
        if st.st_size > limit:
            _bad(f"{what} {path}: {st.st_size} bytes; the limit is {limit}")
        return path.read_bytes()
    except OSError as e:
        _bad(f"{what} {path}: {e.strerror or e}")


def _notation_files(
    trust_policy: Path | None, trust_store: Path | None
) -> tuple[TrustPolicyDocument, TrustStore]:
    """The trust policy and trust store: the overrides, else notation's configuration directory."""
    from notar.config import ConfigError
    from notar.signing.verification import read_notation_files  # the readers the gateway and UI use

    try:
        policy, store, _source = read_notation_files(
            default_config_dir(),
            trust_policy=trust_policy,
            trust_store=trust_store,
            missing_policy_hint=" (write notation's trust policy there, or pass --trust-policy FILE)",
        )
    except ConfigError as e:
        _bad(str(e))
    return policy, store


def _statement(policy: TrustPolicyDocument, store: TrustStore, repository: str) -> TrustPolicyStatement:
    """The statement for *repository*, with every trust store it names present and readable."""
    try:
        statement = policy.statement_for(repository)
    except NoApplicablePolicyError as e:
        _bad(f'{e}: add its registryScopes (host included) or a "*" statement to the trust policy')
    if statement.level is not Level.SKIP:
        for ref in statement.trust_stores:
            try:
                store.certificates(ref)
            except TrustStoreError as e:
                _bad(f"{e} (named by trust policy statement {statement.name!r})")
    return statement


def _load_cosign_key(path: Path) -> Any:
    from notar.cosign import CosignError, load_public_key  # only this path needs cosign

    try:
        return load_public_key(_read_file(path, limit=1024 * 1024, what="public key"))
    except CosignError as e:
        _bad(f"public key {path}: {e}")


# ------------------------------------------------------------------------------------ the registry


def _client(ref: Reference, insecure_registries: Sequence[str]) -> RegistryClient:
    return RegistryClient(
        ref.domain, credentials=DockerConfigCredentials(), insecure_registries=tuple(insecure_registries)
    )


def _resolve(client: RegistryClient, ref: Reference) -> Descriptor:
    """The manifest the reference names (a digest-verified GET), as the subject descriptor."""
    manifest = client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
    if ref.digest is None:
        click.echo(
            f"Resolved artifact tag `{ref.tag}` to digest `{manifest.digest}` before verification.", err=True
        )
        click.echo(_TAG_WARNING, err=True)
    return Descriptor(manifest.media_type, manifest.digest, manifest.size)


def _fetch_signature(
    client: RegistryClient, repo: str, referrer: Referrer
) -> tuple[SignatureBlob, str | None]:
    """The envelope of one signature manifest, or an empty blob and why there is none.

    A missing or malformed signature manifest fails that signature (at integrity), not the command:
    the other signatures may still verify. A registry that cannot be reached fails the command.
    """
    nothing = SignatureBlob("", b"", referrer.digest)
    if referrer.size > MAX_MANIFEST_SIZE:
        return nothing, f"signature manifest is {referrer.size} bytes; the limit is {MAX_MANIFEST_SIZE}"
    try:
        data = client.get_manifest(repo, referrer.digest).data
        manifest = parse_signature_manifest(data)
        buf = io.BytesIO()
        client.get_blob(repo, manifest.envelope.digest, buf, expected_size=manifest.envelope.size)
        check_blob(manifest.envelope, buf.getvalue())
    except ManifestNotFoundError:
        return nothing, "the signature manifest is listed but not in the registry"
    except BlobNotFoundError:
        return nothing, "the signature envelope blob is not in the registry"
    except (SignatureManifestError, RegistryProtocolError, DigestMismatchError) as e:
        return nothing, str(e)
    return SignatureBlob(manifest.envelope.media_type, buf.getvalue(), referrer.digest), None


def _signature_blobs(
    client: RegistryClient, repo: str, referrers: Referrers, limit: int, problems: dict[str, str]
) -> Iterator[SignatureBlob]:
    """Fetch signatures as the verifier asks for them; beyond *limit* nothing is fetched."""
    for i, referrer in enumerate(referrers.referrers):
        if i >= limit:
            yield SignatureBlob("", b"", referrer.digest)  # only counted, never evaluated
            return
        blob, problem = _fetch_signature(client, repo, referrer)
        if problem is not None:
            problems[referrer.digest] = problem
        yield blob


def _with_problems(verdict: Verdict, problems: Mapping[str, str]) -> Verdict:
    """The verdict with the integrity reason of each unfetchable signature saying why it was not fetched."""
    if not problems:
        return verdict
    results = []
    for result in verdict.results:
        problem = problems.get(result.label)
        if problem is not None:
            steps = tuple(
                dataclasses.replace(s, reason=problem)
                if s.step is Step.INTEGRITY and s.status is Status.FAILED
                else s
                for s in result.steps
            )
            result = dataclasses.replace(result, steps=steps)
        results.append(result)
    return dataclasses.replace(verdict, results=tuple(results))


# ---------------------------------------------------------------------------------------- output


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _signature_json(result: SignatureResult) -> dict[str, Any]:
    failure = result.failure
    out: dict[str, Any] = {
        "digest": result.label,
        "mediaType": result.media_type or None,
        "verified": result.verified,
        "failedStep": str(failure.step) if failure else None,
        "reason": failure.reason if failure else None,
        "steps": [
            {"step": str(s.step), "action": str(s.action), "status": str(s.status), "reason": s.reason}
            for s in result.steps
        ],
    }
    env = result.envelope
    if env is not None:
        out["signedBy"] = subject_text(env.leaf)
        out["signingScheme"] = str(env.attributes.signing_scheme)
        out["signingTime"] = _time(env.attributes.signing_time or env.attributes.authentic_signing_time)
        out["expiry"] = _time(env.attributes.expiry)
        out["userMetadata"] = dict(env.target_artifact.annotations)
    return out


def _notation_json(verdict: Verdict, shown: str, tag: str | None, referrers: Referrers) -> dict[str, Any]:
    return {
        "reference": shown,
        "tag": tag,
        "format": "notation",
        "subject": {
            "mediaType": verdict.subject.media_type,
            "digest": verdict.subject.digest,
            "size": verdict.subject.size,
        },
        "verified": verdict.verified,
        "result": "Success" if verdict.verified else "Failure",
        "trustPolicy": {"statement": verdict.statement.name, "level": str(verdict.statement.level)},
        "referrers": str(referrers.source),
        "signatures": [_signature_json(r) for r in verdict.results],
    }


def _failure_block(verdict: Verdict, shown: str) -> str:
    if not verdict.results:
        return (
            f'Error: signature verification failed: no signature is associated with "{shown}", '
            "make sure the artifact was signed successfully"
        )
    lines = [f"Error: signature verification failed for all the signatures associated with {shown}"]
    for result in verdict.results:
        failure = result.failure
        why = f"{failure.step} failed: {failure.reason}" if failure else "not evaluated"
        lines.append(f"  {result.label} ({result.media_type or 'no envelope'}): {why}")
    return "\n".join(lines)


def _print_success(verdict: Verdict, shown: str) -> None:
    accepted = verdict.accepted
    if accepted is None:  # level skip
        click.echo(f"Trust policy is configured to skip signature verification for {shown}")
        return
    for step in accepted.steps:
        if step.status is Status.LOGGED:
            click.echo(
                f"Warning: {step.step} verification failed (logged, not enforced): {step.reason}", err=True
            )
    click.echo(f"Successfully verified signature for {shown}")
    metadata = accepted.envelope.target_artifact.annotations if accepted.envelope is not None else {}
    if metadata:
        width = max(3, *(len(k) for k in metadata))
        click.echo("\nThe artifact was signed with the following user metadata.\n")
        click.echo(f"{'KEY':<{width}}  VALUE")
        for key, value in metadata.items():
            click.echo(f"{key:<{width}}  {value}")


# ---------------------------------------------------------------------------------- verification


def _verify_notation(
    client: RegistryClient,
    ref: Reference,
    subject: Descriptor,
    policy: TrustPolicyDocument,
    store: TrustStore,
    *,
    max_signatures: int,
    output: str,
) -> None:
    shown = f"{ref.name}@{subject.digest}"
    referrers = list_referrers(
        client, ref.path, subject.digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE
    )
    problems: dict[str, str] = {}
    verdict = verify_artifact(
        _signature_blobs(client, ref.path, referrers, max_signatures, problems),
        subject=subject,
        repository=ref.name,
        policy=policy,
        trust_store=store,
        now=datetime.now(UTC),
        max_signatures=max_signatures,
    )
    verdict = _with_problems(verdict, problems)
    if output == "json":
        click.echo(
            json.dumps(
                _notation_json(verdict, shown, ref.tag if ref.digest is None else None, referrers), indent=2
            )
        )
    if not verdict.verified:
        raise _NotVerified(_failure_block(verdict, shown))
    if output != "json":
        _print_success(verdict, shown)


def _verify_cosign(
    client: RegistryClient, ref: Reference, subject: Descriptor, key: Any, *, output: str
) -> None:
    from notar.cosign import CosignError, verify_signatures

    shown = f"{ref.name}@{subject.digest}"
    found = read_cosign_signatures(client, ref.path, subject.digest)
    results = []
    problem = None
    if found.manifest is None:
        problem = f"no cosign signature is associated with {shown} (no tag {found.tag})"
    else:
        try:
            results = verify_signatures(found.manifest.data, found.payloads, key, digest=subject.digest)
        except CosignError as e:
            problem = f"{found.tag}: {e}"
    signatures = [
        {
            "index": r.index,
            "digest": r.digest,
            "verified": r.verified,
            "reason": found.missing.get(r.digest or "", r.reason) if not r.verified else r.reason,
            "dockerReference": r.docker_reference,
        }
        for r in results
    ]
    verified = any(r.verified for r in results)
    if output == "json":
        document = {
            "reference": shown,
            "tag": ref.tag if ref.digest is None else None,
            "format": "cosign",
            "signatureTag": found.tag,
            "verified": verified,
            "result": "Success" if verified else "Failure",
            "signatures": signatures,
        }
        click.echo(json.dumps(document, indent=2))
    if problem is not None:
        raise _NotVerified(f"Error: signature verification failed: {problem}")
    if not verified:
        lines = [
            f"Error: signature verification failed for all the cosign signatures associated with {shown}"
        ]
        lines += [f"  layer {s['index']} ({s['digest'] or 'no digest'}): {s['reason']}" for s in signatures]
        raise _NotVerified("\n".join(lines))
    if output != "json":
        click.echo(f"Successfully verified cosign signature for {shown}")
        click.echo(
            "Not checked: transparency log (Rekor) entries, like cosign verify --insecure-ignore-tlog.",
            err=True,
        )


_HELP = """Verify the signatures of IMAGE in its registry, as `notation verify` does.

IMAGE is NAME:TAG or NAME@DIGEST (NAME alone means NAME:latest). A tag is first resolved to a digest
(from the manifest's bytes); the digest is what is verified and printed. Tags are mutable: verify,
and pull, by digest.

\b
Notation signatures (the default):
  found   referrers of the digest with artifactType
          application/vnd.cncf.notary.signature: the registry's referrers
          API, or without one the sha256-<hex> tag (referrers tag schema)
  policy  --trust-policy FILE, else CONFIG/trustpolicy.oci.json, else
          CONFIG/trustpolicy.json; the statement whose registryScopes
          names REGISTRY/REPOSITORY (host included, as in
          registry.example.com/team/app) applies, else the "*" one
  store   --trust-store DIR, else CONFIG/truststore: certificates (PEM
          or DER) in x509/{ca,signingAuthority,tsa}/<name>/
  CONFIG  $XDG_CONFIG_HOME/notation, else ~/.config/notation

Each signature goes through the steps integrity (the envelope parses, its signature verifies with the
leaf certificate, it signs this digest), authenticity (the chain meets the Notary Project rules and
holds a certificate of the statement's trust stores; the signer is a trusted identity), expiry,
authentic timestamp (RFC 3161 tokens against the tsa stores) and revocation; each is enforced,
logged or skipped as the statement's level says. One signature that passes is enough. Not supported:
plugins, and fetching OCSP/CRL (a chain that names OCSP or CRL locations has an unknown revocation
status, which fails under strict unless the policy overrides revocation).

With --key cosign.pub, cosign signatures are verified instead: the layers of the sha256-<hex>.sig
tag, whose payload must be signed by the key (ECDSA, RSA or Ed25519 over SHA-256) and name this
digest. Transparency log (Rekor) entries are not checked, as with `cosign verify
--insecure-ignore-tlog`.

Registry credentials come from docker's config ($DOCKER_CONFIG/config.json and credential helpers).
With -o json, stdout has every signature and the status of each of its steps.

\b
Exit codes: 0 verified, 1 not verified (or the registry failed),
2 bad input (reference, trust policy, trust store, key).
"""


@click.command(
    help=_HELP, short_help="Verify the Notation (or cosign) signatures of an image in its registry."
)
@click.argument("image", metavar="IMAGE[:TAG|@DIGEST]")
@click.option(
    "--trust-policy",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="NOTAR_TRUST_POLICY",
    help="Trust policy file. Default: notation's, in $XDG_CONFIG_HOME/notation or ~/.config/notation.",
)
@click.option(
    "--trust-store",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NOTAR_TRUST_STORE",
    help="Trust store directory (holding x509/<type>/<name>/). Default: notation's truststore directory.",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="NOTAR_COSIGN_KEY",
    help="Verify cosign signatures with this public key (cosign.pub PEM) instead of Notation signatures.",
)
@click.option(
    "--max-signatures",
    type=click.IntRange(1, 10_000),
    default=MAX_SIGNATURES,
    show_default=True,
    envvar="NOTAR_MAX_SIGNATURES",
    help="Evaluate at most this many Notation signatures.",
)
@click.option(
    "--insecure-registry",
    "insecure_registries",
    multiple=True,
    envvar="NOTAR_INSECURE_REGISTRIES",
    help="Registry reachable over plain HTTP (loopback registries always are). Repeatable.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format on stdout.",
)
def verify(
    image: str,
    trust_policy: Path | None,
    trust_store: Path | None,
    key: Path | None,
    max_signatures: int,
    insecure_registries: tuple[str, ...],
    output: str,
) -> None:
    ref = _reference(image)
    if key is not None:
        if trust_policy is not None or trust_store is not None:
            _bad("--key verifies cosign signatures; --trust-policy and --trust-store are for Notation's")
        public_key = _load_cosign_key(key)
        with _client(ref, insecure_registries) as client:
            subject = _resolve(client, ref)
            _verify_cosign(client, ref, subject, public_key, output=output)
        return
    policy, store = _notation_files(trust_policy, trust_store)
    _statement(policy, store, ref.name)
    for warning in store.warnings:
        click.echo(f"Warning: {warning}", err=True)
    with _client(ref, insecure_registries) as client:
        subject = _resolve(client, ref)
        _verify_notation(client, ref, subject, policy, store, max_signatures=max_signatures, output=output)
