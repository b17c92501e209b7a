"""Signature manifest helpers: both forms, limits, the envelope layer, thumbprints, blobs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from notar.notation import SignatureManifestError, is_signature_manifest, parse_signature_manifest
from notar.notation.manifest import (
    ARTIFACT_TYPE,
    EMPTY_CONFIG,
    MAX_MANIFEST_SIZE,
    THUMBPRINT_ANNOTATION,
    ManifestForm,
    chain_thumbprints,
    check_blob,
    referrers_tag,
)
from tests.notation import factory as f

ENVELOPE = f.Descriptor("application/jose+json", "sha256:" + "c" * 64, 2070)


def manifest(**over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": EMPTY_CONFIG.to_json(),
        "layers": [ENVELOPE.to_json()],
        "subject": f.SUBJECT.to_json(),
        "annotations": {THUMBPRINT_ANNOTATION: json.dumps(["a" * 64, "b" * 64])},
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def data(**over: Any) -> bytes:
    return json.dumps(manifest(**over)).encode()


def test_current_form() -> None:
    parsed = parse_signature_manifest(data())
    assert parsed.form is ManifestForm.ARTIFACT_TYPE
    assert parsed.envelope == ENVELOPE and parsed.subject == f.SUBJECT
    assert parsed.thumbprints == ("a" * 64, "b" * 64)
    assert EMPTY_CONFIG.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_older_form_and_no_subject() -> None:
    old = data(
        artifactType=None,
        config={**EMPTY_CONFIG.to_json(), "mediaType": ARTIFACT_TYPE},
        subject=None,
        annotations=None,
    )
    parsed = parse_signature_manifest(old)
    assert (
        parsed.form is ManifestForm.CONFIG_MEDIA_TYPE
        and parsed.subject is None
        and parsed.thumbprints is None
    )


def test_recognition() -> None:
    assert is_signature_manifest(manifest())
    assert is_signature_manifest(manifest(artifactType=None, config={"mediaType": ARTIFACT_TYPE}))
    assert not is_signature_manifest(manifest(artifactType="application/vnd.dev.cosign.artifact.sig.v1+json"))
    assert not is_signature_manifest(
        manifest(config={"mediaType": "application/vnd.oci.image.config.v1+json"})
    )


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"schemaVersion": 1}, "schemaVersion must be 2"),
        ({"mediaType": "application/vnd.oci.image.index.v1+json"}, "is not an OCI image manifest"),
        ({"artifactType": "application/example"}, "not a Notation signature manifest"),
        ({"layers": []}, "exactly one layer"),
        ({"layers": [ENVELOPE.to_json(), ENVELOPE.to_json()]}, "exactly one layer"),
        (
            {"layers": [{**ENVELOPE.to_json(), "mediaType": "application/vnd.oci.image.layer.v1.tar"}]},
            "is not application/jose\\+json or application/cose",
        ),
        ({"layers": [{**ENVELOPE.to_json(), "size": 32 * 1024 * 1024 + 1}]}, "envelope is 33554433 bytes"),
        ({"layers": [{**ENVELOPE.to_json(), "digest": "md5:abc"}]}, "not a sha256 or sha512 digest"),
        ({"subject": {"mediaType": "x"}}, "subject: digest must be a string"),
        ({"annotations": {THUMBPRINT_ANNOTATION: "nope"}}, "is not a JSON array"),
        ({"annotations": {THUMBPRINT_ANNOTATION: json.dumps(["A" * 64])}}, "lowercase hex SHA-256"),
        ({"annotations": {"k": 1}}, "annotations must map strings to strings"),
    ],
)
def test_refusals(over: dict[str, Any], match: str) -> None:
    with pytest.raises(SignatureManifestError, match=match):
        parse_signature_manifest(data(**over))


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(SignatureManifestError, match="the limit is 4194304"):
        parse_signature_manifest(b"{" + b" " * MAX_MANIFEST_SIZE + b"}")


def test_cose_layer_is_accepted() -> None:
    layer = {**ENVELOPE.to_json(), "mediaType": "application/cose"}
    assert parse_signature_manifest(data(layers=[layer])).envelope.media_type == "application/cose"


def test_thumbprints_blobs_and_tags() -> None:
    leaf, root = f.chain()
    assert chain_thumbprints([leaf, root]) == (
        hashlib.sha256(f.der(leaf)).hexdigest(),
        hashlib.sha256(f.der(root)).hexdigest(),
    )
    blob = b"envelope bytes"
    descriptor = f.Descriptor("application/cose", "sha256:" + hashlib.sha256(blob).hexdigest(), len(blob))
    check_blob(descriptor, blob)
    with pytest.raises(SignatureManifestError, match="does not match the digest"):
        check_blob(descriptor, b"envelope bytez")
    with pytest.raises(SignatureManifestError, match="15 bytes, the descriptor says 14"):
        check_blob(descriptor, blob + b"!")
    assert referrers_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    with pytest.raises(SignatureManifestError):
        referrers_tag("nodigest")
