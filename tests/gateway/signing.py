"""Notation and cosign signers for the gateway tests, built from notar's libraries (not `notar sign`).

:class:`NotationSigner` has a key and a self-signed code-signing certificate (``notar.notation.certgen``);
it writes a notation configuration directory that trusts it (``trustpolicy.json`` + ``truststore/x509/ca``)
and signs a manifest with :func:`notar.notation.sign_artifact`, stored with
:func:`notar.registry.add_referrer` (the real registry has no referrers API: the ``sha256-<hex>`` index).
:class:`CosignSigner` signs with :func:`notar.cosign.sign_image` and appends to the ``.sig`` tag with
:func:`notar.registry.append_cosign_signature`. Both can write through the gateway or straight to the
registry: they take a :class:`notar.registry.RegistryClient`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notar.cosign import append_signature, sign_image
from notar.crypto import PrivateKey
from notar.notation import Descriptor, sign_artifact
from notar.notation.certgen import parse_subject, self_signed_signing_certificate
from notar.registry import (
    MEDIA_TYPE_OCI_MANIFEST,
    ReferrerAdded,
    RegistryClient,
    TaggedUpdate,
    Update,
    add_referrer,
    append_cosign_signature,
    compute_digest,
)


class NotationSigner:
    """A Notation signer with its own self-signed certificate, subject ``C=US,ST=WA,O=notar-tests,CN=<name>``."""

    def __init__(self, name: str = "gateway-tests", *, days: int = 30, now: datetime | None = None) -> None:
        self.name = name
        self.subject = f"C=US,ST=WA,O=notar-tests,CN={name}"
        self._crypto = ec.generate_private_key(ec.SECP256R1())
        self.key = PrivateKey(self._crypto)
        now = now or datetime.now(UTC)
        self.chain: tuple[x509.Certificate, ...] = self_signed_signing_certificate(
            self._crypto, subject=parse_subject(self.subject), now=now - timedelta(minutes=5), days=days
        )

    def pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def config_dir(self, directory: Path, *, scopes: tuple[str, ...] = ("*",), level: str = "strict") -> Path:
        """A notation configuration directory whose one statement trusts this signer for *scopes*."""
        store = directory / "truststore" / "x509" / "ca" / self.name
        store.mkdir(parents=True, exist_ok=True)
        (store / f"{self.name}.crt").write_bytes(self.pem())
        statement: dict[str, object] = {
            "name": f"{self.name}-statement",
            "registryScopes": list(scopes),
            "signatureVerification": {"level": level},
        }
        if level != "skip":
            statement |= {
                "trustStores": [f"ca:{self.name}"],
                "trustedIdentities": [f"x509.subject: {self.subject}"],
            }
        policy = {"version": "1.0", "trustPolicies": [statement]}
        (directory / "trustpolicy.json").write_text(json.dumps(policy))
        return directory

    def sign(
        self, client: RegistryClient, repo: str, manifest: bytes, media_type: str = MEDIA_TYPE_OCI_MANIFEST
    ) -> ReferrerAdded:
        """Sign the manifest whose bytes are *manifest* and store the signature as a referrer."""
        subject = Descriptor(media_type, compute_digest(manifest), len(manifest))
        artifact = sign_artifact(subject, self.key, self.chain, signing_time=datetime.now(UTC))
        return add_referrer(client, repo, artifact.manifest, blobs=artifact.blobs)


class CosignSigner:
    """A cosign key pair; :meth:`pub` is what ``--cosign-key`` takes."""

    def __init__(self) -> None:
        self.key = PrivateKey.generate()

    def pub(self, path: Path) -> Path:
        path.write_bytes(
            self.key.public_key.to_crypto().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return path

    def sign(self, client: RegistryClient, repo: str, reference: str, digest: str) -> TaggedUpdate:
        """Append a signature of *digest* (``reference`` is the docker-reference it names) to its ``.sig`` tag."""
        signature = sign_image(reference, digest, self.key)

        def append(manifest: bytes | None, config: bytes | None) -> Update | None:
            made = append_signature(manifest, config, signature)
            return Update(made.manifest, MEDIA_TYPE_OCI_MANIFEST, made.blobs) if made.appended else None

        return append_cosign_signature(client, repo, digest, append)
