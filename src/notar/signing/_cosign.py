"""cosign signatures from a signing event: sign each digest, append it to ``sha256-<hex>.sig`` (see
:mod:`._formats`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from notar.cosign import CosignSignature, append_signature, sign_image
from notar.crypto import DigestSigner
from notar.registry import (
    DEFAULT_DOMAIN,
    MEDIA_TYPE_OCI_MANIFEST,
    Reference,
    RegistryClient,
    RetryPolicy,
    Update,
    append_cosign_signature,
)
from notar.registry.referrers import DEFAULT_RETRY
from notar.signing._formats import DEFAULT_WORKERS, per_digest
from notar.signing._model import Format, Outcome, Subject

__all__ = ["CosignFormat", "cosign_docker_reference"]


def cosign_docker_reference(ref: Reference) -> str:
    """The ``docker-reference`` cosign writes: the repository, ``index.docker.io/...`` for Docker Hub."""
    domain = "index.docker.io" if ref.domain == DEFAULT_DOMAIN else ref.domain
    return f"{domain}/{ref.path}"


class CosignFormat:
    """cosign: a key-based signature per digest, appended to its ``sha256-<hex>.sig`` image."""

    format: Final = Format.COSIGN

    def __init__(
        self,
        client: RegistryClient,
        signer: DigestSigner,
        *,
        annotations: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.client = client
        self.signer = signer
        self.annotations = dict(annotations or {})
        self.retry = retry
        self.workers = workers

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        def sign_one(subject: Subject) -> Mapping[str, Any]:
            signature = sign_image(
                cosign_docker_reference(subject.reference),
                subject.digest,
                self.signer,
                annotations=self.annotations or None,
            )
            update = append_cosign_signature(
                self.client, subject.reference.path, subject.digest, _appender(signature), retry=self.retry
            )
            return {
                "signature_tag": update.tag,
                "signature": signature.digest,
                "key_id": self.signer.public_key.key_id,
            }

        return per_digest(subjects, self.format, sign_one, self.workers)


def _appender(signature: CosignSignature) -> Callable[[bytes | None, bytes | None], Update | None]:
    def append(manifest: bytes | None, config: bytes | None) -> Update | None:
        artifact = append_signature(manifest, config, signature)
        if not artifact.appended:
            return None
        return Update(artifact.manifest, MEDIA_TYPE_OCI_MANIFEST, artifact.blobs)

    return append
