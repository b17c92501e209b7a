"""One release: fetch the signer's secrets, decrypt the key in memory, (push,) sign, publish, verify.

Order (each step timed in :attr:`ReleaseResult.phases`, seconds):

``secrets``  both secrets from Secrets Manager, into wipeable buffers;
``decrypt``  the encrypted key decrypted in memory (``decode_private_key``), never written anywhere;
``check``    trust data refreshed and verified; the signer must be a delegation of the repository that
             lists our key, and ``targets/releases`` must list it too (else docker would not see it);
``push``     with ``src``: blobs and manifest(s) uploaded by digest (the tag is not moved yet); without
             ``src``: the manifest GET from the registry (digest and size of what is signed);
``notation`` / ``cosign``  with those ``formats``: the same digest signed in that format through the
             signing-event seam (:mod:`notar.signing`) and stored in the registry (a referrer; a layer of
             ``sha256-<hex>.sig``). Each is tried even when the other failed; a failure stops the task
             here, before Notary v1 says anything about the tag (signatures of a digest claim nothing
             about a tag);
``sign``     the targets/<signer> and targets/releases updates built and signed (plus the TUF refreshes
             around the publish that :meth:`Repository.sign` does);
``publish``  the POST of the signed update to the trust server;
``tag``      with ``src``: the tag moved to the signed manifest (sign before tag);
``verify``   a fresh :class:`Updater` resolves the tag through the trust server to the same digest, and
             the registry serves that digest under the tag; each Notation / cosign signature is read back
             from the registry and must verify with the certificate / key it was made with.

``formats`` without ``v1`` skip ``check``, ``sign``, ``publish`` and the trust-server half of ``verify``:
no trust server is contacted. Notation needs the signer's certificate chain: the ``certificate`` phase
reads it from ``cert_secret_name`` into a wipeable buffer (public data, but kept to memory like the rest).

The key never touches the file system: the repository's ``keys`` store is a :class:`FileKeyStore` on the
trust directory whose passphrase source always refuses, and signing uses :class:`MemoryKeys` only. The
buffers holding the secrets are overwritten when the task ends, whatever happens.

A task with ``key: awskms:///...`` has no key to fetch or decrypt: ``secrets`` and ``decrypt`` are replaced
by ``key``, one ``GetPublicKey`` call (the key must be ``ECC_NIST_P256``, what docker verifies), and the
``sign`` phase asks KMS to sign each changed role (``MessageType=DIGEST``). Every role is signed before
anything is published, so a KMS failure part-way publishes nothing.

Size: one release is one ordered pipeline of phases with one cleanup; keeping it in one module keeps the
no-residue guarantee (what is wiped, when) readable in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from notar.client import (
    MemoryKeys,
    Repository,
    RepositoryNotFoundError,
    TrustCache,
    TrustedRepo,
    TrustServer,
    Updater,
)
from notar.client.updater import RELEASES
from notar.crypto import DigestSigner, PrivateKey, Signer
from notar.errors import NotarError
from notar.keystore import (
    CallbackPassphrases,
    CertificateFileError,
    FileKeyStore,
    WrongPassphraseError,
    decode_certificate_chain,
    decode_private_key,
)
from notar.registry import (
    CredentialProvider,
    Credentials,
    Descriptor,
    Reference,
    RegistryClient,
    RegistryError,
)
from notar.release._secrets import SecretBytes, SecretsManager
from notar.release._task import ReleaseTask
from notar.signing import (
    CosignFormat,
    Format,
    FormatSigner,
    NotationFormat,
    SigningKey,
    Status,
    Subject,
    Unavailable,
    cosign_docker_reference,
    cosign_signature_by,
    notation_signature_by,
    sign_event,
)
from notar.transfer import ManifestBlob, collect_image, open_source, upload_content
from notar.tuf import FileMeta, TrustPinning, roles

__all__ = ["PHASES", "ReleaseError", "ReleaseOptions", "ReleaseResult", "release", "run_tasks"]

PHASES = (
    "secrets",
    "decrypt",
    "key",
    "certificate",
    "check",
    "push",
    "notation",
    "cosign",
    "sign",
    "publish",
    "tag",
    "verify",
)

Progress = Callable[[ReleaseTask, str, str], None]
"""progress(task, phase, message): called when a phase starts ("start") and ends ("done")."""


class ReleaseError(NotarError):
    """A release step failed; the message says which and why (never secret values)."""


def _default_server(ref: Reference) -> str:
    return "https://notary.docker.io" if ref.domain == "docker.io" else f"https://{ref.domain}"


@dataclass
class ReleaseOptions:
    """What all tasks of a run share: the trust directory, trust server rules, registry access."""

    trust_dir: Path
    server_url: Callable[[Reference], str] = _default_server
    tls_verify: Callable[[str], Any] = lambda _url: True
    registry_credentials: CredentialProvider | Credentials | None = None
    insecure_registries: tuple[str, ...] = ()
    root_key_ids: tuple[str, ...] = ()
    secrets: Callable[[str], SecretsManager] = SecretsManager
    kms_signer: Callable[[ReleaseTask], Signer] = field(default=lambda task: kms_signer(task))


@dataclass
class ReleaseResult:
    task: ReleaseTask
    ok: bool = False
    digest: str | None = None
    size: int | None = None
    key_id: str | None = None
    trust_server: str | None = None
    roles: list[str] = field(default_factory=list)
    pushed: bool = False
    error: str | None = None
    failed_phase: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    signatures: list[dict[str, Any]] = field(default_factory=list)  # per format: status, error, what

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.task.image,
            "ok": self.ok,
            "digest": self.digest,
            "size": self.size,
            "signer": self.task.signer_name,
            "key_id": self.key_id,
            "trust_server": self.trust_server,
            "roles": self.roles,
            "pushed": self.pushed,
            "error": self.error,
            "failed_phase": self.failed_phase,
            "phases": {k: round(v, 6) for k, v in self.phases.items()},
            "formats": list(self.task.formats),
            "signatures": self.signatures,
        }


class _TimedServer(TrustServer):
    """A :class:`TrustServer` that adds up the time spent publishing."""

    publish_seconds = 0.0

    def publish(self, gun: str, files: Mapping[str, bytes]) -> None:
        start = time.perf_counter()
        try:
            super().publish(gun, files)
        finally:
            self.publish_seconds += time.perf_counter() - start


def _refuse(_key_id: str, _alias: str) -> str | None:
    return None  # the trust directory's keys are never unlocked by a release


def _passphrase_text(buf: bytearray) -> str:
    # surrogateescape: never fails (and never puts bytes of the passphrase into a UnicodeDecodeError)
    return bytes(buf).decode("utf-8", "surrogateescape")


def decrypt_key(key: SecretBytes, passphrase: SecretBytes) -> PrivateKey:
    """The private key from the encrypted PEM in *key*, in memory only. Refuses unencrypted keys."""
    if b"-----BEGIN" not in key.value:
        raise ReleaseError(f"secret {key.name!r} does not hold a PEM private key")
    text = _passphrase_text(passphrase.value)
    try:
        candidates = [text]
        stripped = text.rstrip("\r\n")
        if stripped != text and stripped:
            candidates.append(stripped)  # a passphrase stored with `echo`'s newline
        for i, candidate in enumerate(candidates):
            try:
                decoded = decode_private_key(bytes(key.value), candidate)
                break
            except WrongPassphraseError:
                if i == len(candidates) - 1:
                    raise ReleaseError(
                        f"the passphrase in secret {passphrase.name!r} does not decrypt the key in secret "
                        f"{key.name!r}"
                    ) from None
        else:  # pragma: no cover - the loop either breaks or raises
            raise ReleaseError("internal error: no passphrase tried")
    except NotarError as e:
        if isinstance(e, ReleaseError):
            raise
        raise ReleaseError(f"secret {key.name!r}: {e}") from None
    finally:
        del text
    if not decoded.encrypted:
        raise ReleaseError(
            f"secret {key.name!r} holds an UNENCRYPTED private key; store the encrypted key file "
            "(`notar secrets put-signer` does) and its passphrase in a separate secret"
        )
    return decoded.key


def check_signer(
    trusted: TrustedRepo, gun: str, signer: str, key: Signer, key_secret: str, *, key_label: str | None = None
) -> str:
    """The key ID under which *signer* lists *key* in *gun*; raises if it cannot sign releases.

    *key_label* names where the key is, for messages (default: ``the key in secret <key_secret>``).
    """
    key_id = key.public_key.key_id
    label = key_label or f"the key in secret {key_secret!r}"
    top = trusted.targets[roles.TARGETS].signed
    role = f"targets/{signer}"
    entry = top.delegations.role(role)
    if entry is None:
        names = sorted(r.name.removeprefix("targets/") for r in top.delegations.roles if r.name != RELEASES)
        raise ReleaseError(
            f"{signer} is not a signer (delegation {role}) of {gun}; signers: {', '.join(names) or 'none'}. "
            f"Add it first: notar signer add {signer} {gun} --key {signer}.pub"
        )

    def ours(kid: str) -> bool:
        pub = top.delegations.keys.get(kid)
        return kid == key_id or (pub is not None and pub.canonical_key_id == key_id)

    listed = [kid for kid in entry.keyids if ours(kid)]
    if not listed:
        raise ReleaseError(
            f"{label} (key ID {key_id[:12]}) is not a key of signer {signer} "
            f"in {gun} (its keys: {', '.join(k[:12] for k in entry.keyids) or 'none'})"
        )
    releases = top.delegations.role(RELEASES)
    if releases is None or not any(ours(kid) for kid in releases.keyids):
        raise ReleaseError(
            f"the key of signer {signer} (key ID {key_id[:12]}) is not in {RELEASES} of {gun}: "
            "docker would not trust the signature. Re-add the signer with `notar signer add`"
        )
    return listed[0]


@contextlib.contextmanager
def _phase(result: ReleaseResult, name: str, progress: Progress | None) -> Iterator[None]:
    if progress:
        progress(result.task, name, "start")
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        result.failed_phase = name
        raise
    finally:
        result.phases[name] = result.phases.get(name, 0.0) + time.perf_counter() - start
    if progress:
        progress(result.task, name, "done")


def _scrub(message: str, secrets: list[SecretBytes]) -> str:
    """Defence in depth: never let a secret value (or a line of it) through in a message."""
    for secret in secrets:
        if not any(secret.value):  # empty or already wiped
            continue
        text = _passphrase_text(secret.value)
        for piece in {text, text.strip(), *(line.strip() for line in text.splitlines())}:
            if len(piece) >= 4 and piece in message:
                message = message.replace(piece, "***")
    return message


def release(task: ReleaseTask, options: ReleaseOptions, progress: Progress | None = None) -> ReleaseResult:
    """Run one task; never raises for a failed release (see ``ok``/``error``/``failed_phase``)."""
    result = ReleaseResult(task)
    held: list[SecretBytes] = []
    signing = MemoryKeys()
    try:
        _release(task, options, progress, result, signing, held)
    except (NotarError, OSError) as e:
        result.error = _scrub(str(e) or type(e).__name__, held)
    except Exception as e:  # a bug must not stop the other tasks, nor print secrets
        result.error = _scrub(f"internal error: {type(e).__name__}: {e}", held)
    finally:
        signing.clear()
        for secret in held:
            secret.wipe()
    return result


def _release(
    task: ReleaseTask,
    options: ReleaseOptions,
    progress: Progress | None,
    result: ReleaseResult,
    signing: MemoryKeys,
    held: list[SecretBytes],
) -> None:
    ref = task.reference
    assert ref.tag is not None
    url = options.server_url(ref)
    result.trust_server = url

    v1 = "v1" in task.formats
    if not v1:
        result.trust_server = None  # not contacted
    key: Signer
    if task.key:
        with _phase(result, "key", progress):
            key = options.kms_signer(task)
        signing.add(key, task.signer_name)
        key_label = f"the KMS key {task.key}"
    else:
        key = _secrets_key(task, options, progress, result, held)
        signing.add(key, task.signer_name)
        key_label = None
    key_id = key.public_key.key_id
    chain = _certificate_chain(task, options, progress, result, held) if "notation" in task.formats else None

    pinning = TrustPinning(certs={ref.name: list(options.root_key_ids)}) if options.root_key_ids else None
    server = _TimedServer(url, verify=options.tls_verify(url))
    cache = TrustCache(options.trust_dir)
    no_unlock = FileKeyStore(options.trust_dir, CallbackPassphrases(_refuse, max_attempts=1))
    repo = Repository(
        ref.name, server=server, cache=cache, keys=no_unlock, signing_keys=signing, pinning=pinning
    )
    try:
        if v1:
            with _phase(result, "check", progress):
                try:
                    trusted = repo.refresh()
                except RepositoryNotFoundError as e:
                    raise ReleaseError(
                        f"{ref.name} has no trust data on {url}: initialise it and add the signer first "
                        f"(notar signer add {task.signer_name} {ref.name} --key {task.signer_name}.pub)"
                    ) from e
                result.key_id = check_signer(
                    trusted, ref.name, task.signer_name, key, task.key_secret_name, key_label=key_label
                )
        else:
            result.key_id = key_id
        del key

        with RegistryClient(
            ref.domain,
            credentials=options.registry_credentials,
            insecure_registries=options.insecure_registries,
        ) as registry:
            pushed: ManifestBlob | None = None
            with _phase(result, "push", progress):
                try:
                    if task.src is not None:
                        pushed = _push_by_digest(registry, ref, task.src)
                        desc = pushed.descriptor
                        result.pushed = True
                    else:
                        desc = registry.get_manifest(ref.path, ref.tag).descriptor
                    digest, size = desc.digest, desc.size
                except RegistryError as e:
                    raise ReleaseError(f"registry {ref.domain}: {e}") from e
            algorithm, _, hexdigest = digest.partition(":")
            if algorithm != "sha256":
                raise ReleaseError(f"{task.image}: only sha256 manifests can be signed, got {digest}")
            result.digest, result.size = digest, size

            subject = Subject(ref, desc)
            signer = signing.get(key_id)[0]
            _sign_other_formats(task, registry, subject, signer, chain, result, progress)

            if v1:
                with _phase(result, "sign", progress):
                    signed = repo.sign(
                        {ref.tag: FileMeta(size, {"sha256": bytes.fromhex(hexdigest)})}, initialize=False
                    )
                    result.roles = signed.roles
                result.phases["publish"] = server.publish_seconds
                result.phases["sign"] -= server.publish_seconds
                result.signatures.append(
                    {"format": "v1", "status": "signed", "error": None, "roles": signed.roles}
                )

            if pushed is not None:
                with _phase(result, "tag", progress):
                    try:
                        registry.put_manifest(ref.path, ref.tag, pushed.data, pushed.descriptor.media_type)
                    except RegistryError as e:
                        raise ReleaseError(
                            f"signed, but moving the tag failed: registry {ref.domain}: {e}"
                        ) from e

            with _phase(result, "verify", progress):
                if v1:
                    fresh = Updater(
                        ref.name, server, TrustCache(options.trust_dir), pinning=pinning
                    ).refresh()
                    match = fresh.resolve(ref.tag)
                    resolved = "sha256:" + match.meta.hashes["sha256"].hex()
                    if resolved != digest or match.meta.length != size:
                        raise ReleaseError(
                            f"verification failed: the trust server resolves {task.image} to {resolved}, "
                            f"not the signed {digest}"
                        )
                try:
                    served = registry.get_manifest(ref.path, ref.tag).digest
                except RegistryError as e:
                    raise ReleaseError(f"verification failed: registry {ref.domain}: {e}") from e
                if served != digest:
                    raise ReleaseError(
                        f"verification failed: the registry serves {served} under {ref.tag}, but {digest} was signed"
                    )
                _verify_other_formats(registry, subject, signer, chain, result)
        result.ok = True
    finally:
        server.close()


def _secrets_key(
    task: ReleaseTask,
    options: ReleaseOptions,
    progress: Progress | None,
    result: ReleaseResult,
    held: list[SecretBytes],
) -> PrivateKey:
    """The ``secrets`` and ``decrypt`` phases: the encrypted key and its passphrase from Secrets Manager,
    decrypted in memory; the buffers are wiped as soon as the key is out (and by :func:`release` anyway)."""
    with _phase(result, "secrets", progress):
        secrets = options.secrets(task.region)
        held.append(secrets.get(task.key_secret_name))
        held.append(secrets.get(task.passphrase_secret_name))
    key_secret, pass_secret = held
    with _phase(result, "decrypt", progress):
        key = decrypt_key(key_secret, pass_secret)
    key_secret.wipe()
    pass_secret.wipe()
    return key


def _certificate_chain(
    task: ReleaseTask,
    options: ReleaseOptions,
    progress: Progress | None,
    result: ReleaseResult,
    held: list[SecretBytes],
) -> tuple[x509.Certificate, ...]:
    """The ``certificate`` phase: the signer's PEM certificate chain (leaf first) from
    ``cert_secret_name``, read into a wipeable buffer and parsed in memory."""
    assert task.cert_secret_name is not None
    with _phase(result, "certificate", progress):
        secret = options.secrets(task.region).get(task.cert_secret_name)
        held.append(secret)
        try:
            chain = decode_certificate_chain(bytes(secret.value), what=f"secret {task.cert_secret_name!r}")
        except CertificateFileError as e:
            raise ReleaseError(f"{e}: store the PEM chain `notar cert generate` writes") from None
        finally:
            secret.wipe()
    return chain


def _sign_other_formats(
    task: ReleaseTask,
    registry: RegistryClient,
    subject: Subject,
    signer: Signer,
    chain: tuple[x509.Certificate, ...] | None,
    result: ReleaseResult,
    progress: Progress | None,
) -> None:
    """The ``notation`` and ``cosign`` phases (those in ``task.formats``), through the signing-event seam.

    Each is tried even when the other failed; a failure is recorded in :attr:`ReleaseResult.signatures`
    and, once both were tried, raised: Notary v1 is not signed and the tag is not moved."""
    failed: list[str] = []
    for fmt in task.formats:
        if fmt == "v1":
            continue
        if not isinstance(signer, DigestSigner):
            raise ReleaseError(f"the signer's key cannot sign a precomputed digest, which {fmt} needs")
        format_signer: FormatSigner
        if fmt == "notation":
            assert chain is not None
            key = SigningKey(task.signer_name, signer.public_key.key_id, signer, chain)
            try:
                format_signer = NotationFormat(registry, key)
            except NotarError as e:
                format_signer = Unavailable(Format.NOTATION, str(e))
        else:
            format_signer = CosignFormat(registry, signer)
        with _phase(result, fmt, progress):
            [outcome] = sign_event([subject], [format_signer])
        result.signatures.append(
            {"format": fmt, "status": outcome.status.value, "error": outcome.error, **outcome.detail}
        )
        if outcome.status is Status.FAILED:
            if result.failed_phase is None:
                result.failed_phase = fmt
            failed.append(f"{outcome.format.display}: {outcome.error}")
    if failed:
        signed = [s["format"] for s in result.signatures if s["status"] == "signed"]
        done = f"{', '.join(signed)} signed; " if signed else ""
        after = "v1 not signed, " if "v1" in task.formats else ""
        raise ReleaseError("; ".join(failed) + f" ({done}{after}the tag was not moved)")


def _verify_other_formats(
    registry: RegistryClient,
    subject: Subject,
    signer: Signer,
    chain: tuple[x509.Certificate, ...] | None,
    result: ReleaseResult,
) -> None:
    """Part of ``verify``: each Notation / cosign signature written is found again in the registry and
    verifies with the certificate / key it was made with."""
    for entry in result.signatures:
        if entry["format"] == "notation":
            assert chain is not None
            found = notation_signature_by(
                registry, subject.reference.path, subject.descriptor, chain[0], now=datetime.now(UTC)
            )
        elif entry["format"] == "cosign":
            found = cosign_signature_by(
                registry,
                subject.reference.path,
                subject.digest,
                signer.public_key,
                docker_reference=cosign_docker_reference(subject.reference),
            )
        else:
            continue
        if found is None:
            raise ReleaseError(
                f"verification failed: no {entry['format']} signature of {subject.digest} by this signer "
                "verifies in the registry"
            )


def kms_signer(task: ReleaseTask) -> Signer:
    """The ``key`` phase of a KMS task: the key's public key (one ``GetPublicKey``), which must be
    ``ECC_NIST_P256`` (Notary v1); the region is the key ARN's, else the task's, else boto3's."""
    from notar.kms import KmsError, KmsSigner, client_for, parse_key_uri

    assert task.key is not None
    try:
        uri = parse_key_uri(task.key)
        signer = KmsSigner.open(uri, client=client_for(uri, region=task.region or None))
        signer.check_notary_v1()
    except KmsError as e:
        raise ReleaseError(str(e)) from None
    return signer


def _push_by_digest(registry: RegistryClient, ref: Reference, src: Path) -> ManifestBlob:
    """Upload the image for ``ref.tag`` from *src* by digest with :mod:`notar.transfer` (no tag yet).

    A top manifest whose descriptor uses another algorithm is also stored under its sha256, which is
    what gets signed (as ``notar.transfer.push_image`` does).
    """
    assert ref.tag is not None
    with open_source(src, tag=ref.tag) as source:
        content = collect_image(source)
        upload_content(content, source, ref.path, registry=registry)
    root = content.root
    sha = "sha256:" + hashlib.sha256(root.data).hexdigest()
    if root.descriptor.digest != sha:
        registry.put_manifest(ref.path, sha, root.data, root.descriptor.media_type)
        return ManifestBlob(Descriptor(root.descriptor.media_type, sha, len(root.data)), root.data)
    return root


def run_tasks(
    tasks: list[ReleaseTask], options: ReleaseOptions, progress: Progress | None = None
) -> list[ReleaseResult]:
    """Every task, in order; a failed task does not stop the others."""
    return [release(task, options, progress) for task in tasks]
