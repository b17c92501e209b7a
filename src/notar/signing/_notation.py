"""Notation signatures from a signing event: sign each digest, store it as a referrer (see :mod:`._formats`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from notar.notation import MEDIA_TYPE_JWS, sign_artifact
from notar.notation import Descriptor as NotationDescriptor
from notar.registry import RegistryClient, RetryPolicy, add_referrer
from notar.registry.referrers import DEFAULT_RETRY
from notar.signing._formats import DEFAULT_WORKERS, per_digest
from notar.signing._keys import SigningKey
from notar.signing._model import Format, Outcome, Subject

__all__ = ["NotationFormat"]


class NotationFormat:
    """Notation: a JWS (default) or COSE signature per digest, stored as a referrer of the digest."""

    format: Final = Format.NOTATION

    def __init__(
        self,
        client: RegistryClient,
        key: SigningKey,
        *,
        envelope: str = MEDIA_TYPE_JWS,
        expiry: timedelta | None = None,
        user_metadata: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry: RetryPolicy = DEFAULT_RETRY,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.client = client
        self.key = key
        self.chain = key.require_chain()
        self.envelope = envelope
        self.expiry = expiry
        self.user_metadata = dict(user_metadata or {})
        self.clock = clock
        self.retry = retry
        self.workers = workers

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        signing_time = self.clock()  # one signing event, one signing time
        expiry = signing_time + self.expiry if self.expiry is not None else None

        def sign_one(subject: Subject) -> Mapping[str, Any]:
            desc = subject.descriptor
            artifact = sign_artifact(
                NotationDescriptor(desc.media_type, desc.digest, desc.size),
                self.key.signer,
                self.chain,
                signing_time=signing_time,
                media_type=self.envelope,
                expiry=expiry,
                user_metadata=self.user_metadata or None,
            )
            added = add_referrer(
                self.client,
                subject.reference.path,
                artifact.manifest,
                media_type=artifact.descriptor.media_type,
                blobs=artifact.blobs,
                retry=self.retry,
            )
            return {
                "signature": added.referrer.digest,
                "envelope": self.envelope,
                "referrers": str(added.source),
                "key_id": self.key.key_id,
            }

        return per_digest(subjects, self.format, sign_one, self.workers)
