"""cosign key-based container image signatures: sign, store in a ``.sig`` manifest, verify. Pure.

Its own package, beside :mod:`notar.notation` rather than in it: cosign is a different format with a
different payload, storage (a ``sha256-<hex>.sig`` tag whose layers accumulate) and policy ("signed by
one of these keys"); ADR 0008 gives each format its signer and verifier behind the shared seams. It
shares only the key-access seam (:class:`notar.crypto.DigestSigner`) and the OCI descriptor type.

* :mod:`~notar.cosign.sign` -- the simplesigning payload and its ECDSA/SHA-256 DER signature;
* :mod:`~notar.cosign.manifest` -- the ``.sig`` manifest and config blob: build, append a signature;
* :mod:`~notar.cosign.verify` -- which layers a public key signed for a digest.

Nothing here opens a connection or reads a file: the registry writer pushes the bytes returned.
"""

from __future__ import annotations

from notar.cosign.errors import CosignError, CosignManifestError, CosignSigningError
from notar.cosign.manifest import (
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_MANIFEST,
    CosignArtifact,
    append_signature,
    build_signature_manifest,
    parse_sig_manifest,
    signature_tag,
)
from notar.cosign.sign import (
    SIGNATURE_ANNOTATION,
    SIGNATURE_TYPE,
    SIMPLESIGNING_MEDIA_TYPE,
    CosignSignature,
    sign_image,
    simplesigning_payload,
)
from notar.cosign.verify import LayerResult, load_public_key, verify_signatures

__all__ = [
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_MANIFEST",
    "SIGNATURE_ANNOTATION",
    "SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "CosignArtifact",
    "CosignError",
    "CosignManifestError",
    "CosignSignature",
    "CosignSigningError",
    "LayerResult",
    "append_signature",
    "build_signature_manifest",
    "load_public_key",
    "parse_sig_manifest",
    "sign_image",
    "signature_tag",
    "simplesigning_payload",
    "verify_signatures",
]
