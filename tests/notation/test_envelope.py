"""Envelope rules, one at a time: JWS and COSE parsing, header rules, algorithm vs key, signatures."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
import pytest

from notar.notation import EnvelopeError, UnsupportedEnvelopeError, parse_envelope
from notar.notation.envelope import MAX_ENVELOPE_SIZE, Algorithm, SigningScheme
from tests.notation import factory as f

JWS = "application/jose+json"
COSE = "application/cose"


def parse_and_verify(media_type: str, blob: bytes) -> Any:
    envelope = parse_envelope(media_type, blob)
    envelope.verify()
    return envelope


def refused(media_type: str, blob: bytes, match: str) -> None:
    with pytest.raises(EnvelopeError, match=match):
        parse_and_verify(media_type, blob)


KEYS = [
    ("rsa2048", "PS256"),
    ("rsa3072", "PS384"),
    ("rsa4096", "PS512"),
    ("ec256", "ES256"),
    ("ec384", "ES384"),
    ("ec521", "ES512"),
]


@pytest.mark.parametrize(("kind", "alg"), KEYS)
def test_jws_each_key_signs_with_its_algorithm(kind: str, alg: str) -> None:
    envelope = parse_and_verify(JWS, f.jws(f.key(kind), f.chain(kind)))
    assert envelope.algorithm is Algorithm(alg)
    assert envelope.target_artifact == f.SUBJECT


@pytest.mark.parametrize(("kind", "alg"), KEYS)
def test_cose_each_key_signs_with_its_algorithm(kind: str, alg: str) -> None:
    envelope = parse_and_verify(COSE, f.cose(f.key(kind), f.chain(kind)))
    assert envelope.algorithm is Algorithm(alg)
    assert envelope.attributes.signing_scheme is SigningScheme.X509


@pytest.mark.parametrize(("kind", "alg"), [("ec256", "ES384"), ("rsa2048", "PS384"), ("rsa3072", "PS256")])
def test_algorithm_must_match_the_leaf_key(kind: str, alg: str) -> None:
    refused(
        JWS, f.jws(f.key(kind), f.chain(kind), alg=alg), f"algorithm {alg} does not match the signing key"
    )


def test_cose_algorithm_must_match_the_leaf_key() -> None:
    refused(COSE, f.cose(f.key("ec384"), f.chain("ec384"), alg="ES256"), "ES256 does not match")


def test_rsa_1024_and_p224_leaf_keys_are_not_supported() -> None:
    refused(JWS, f.jws(f.key("rsa1024"), f.chain("rsa1024"), alg="PS256"), "RSA 1024.*not supported")
    refused(JWS, f.jws(f.key("ec224"), f.chain("ec224"), alg="ES256"), "secp224r1.*not supported")


def _jws_parts(blob: bytes) -> dict[str, Any]:
    return json.loads(blob)  # type: ignore[no-any-return]


def test_tampered_payload_fails_the_signature() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    other = f.Descriptor(f.SUBJECT.media_type, "sha256:" + "1" * 64, f.SUBJECT.size)
    env["payload"] = f.b64url(f.payload_for(other))
    refused(JWS, json.dumps(env).encode(), "signature does not verify")


def test_tampered_cose_payload_fails_the_signature() -> None:
    item = cbor2.loads(f.cose(f.key(), f.chain()))
    protected, unprotected, _payload, signature = item.value
    other = f.Descriptor(f.SUBJECT.media_type, "sha256:" + "1" * 64, f.SUBJECT.size)
    blob = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), f.payload_for(other), signature]))
    refused(COSE, blob, "signature does not verify")


def test_tampered_signature_fails() -> None:
    env = _jws_parts(f.jws(f.key("rsa2048"), f.chain("rsa2048")))
    sig = bytearray(base64.urlsafe_b64decode(env["signature"] + "=="))
    sig[10] ^= 1
    env["signature"] = f.b64url(bytes(sig))
    refused(JWS, json.dumps(env).encode(), "signature does not verify")


def test_ecdsa_signature_must_be_fixed_width_r_s() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    env["signature"] = f.b64url(base64.urlsafe_b64decode(env["signature"] + "==")[:-1])
    refused(JWS, json.dumps(env).encode(), "ECDSA signature is 63 bytes; ES256 needs R\\|\\|S of 64")


def test_signature_by_another_key_than_the_leaf_fails() -> None:
    refused(JWS, f.jws(f.key("ec256-b"), f.chain("ec256")), "signature does not verify")


def test_unknown_critical_header_fails() -> None:
    protected = f.x509_protected(
        crit=["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"],
        **{"io.cncf.notary.verificationPlugin": "some-plugin"},
    )
    refused(
        JWS,
        f.jws(f.key(), f.chain(), protected=protected),
        "unsupported critical header 'io.cncf.notary.verificationPlugin'",
    )


def test_signing_time_may_be_marked_critical() -> None:
    protected = f.x509_protected(crit=["io.cncf.notary.signingScheme", "io.cncf.notary.signingTime"])
    assert (
        parse_and_verify(JWS, f.jws(f.key(), f.chain(), protected=protected)).attributes.signing_time
        is not None
    )


def test_unknown_non_critical_header_is_kept_as_extended_attribute() -> None:
    protected = f.x509_protected(**{"io.cncf.notary.verificationPlugin": "some-plugin"})
    envelope = parse_and_verify(JWS, f.jws(f.key(), f.chain(), protected=protected))
    assert envelope.attributes.extended == {"io.cncf.notary.verificationPlugin": "some-plugin"}


def test_cose_unknown_critical_header_fails() -> None:
    blob = f.cose(
        f.key(), f.chain(), protected={2: ["io.cncf.notary.signingScheme", "x-unknown"], "x-unknown": 1}
    )
    refused(COSE, blob, "unsupported critical header 'x-unknown'")
    blob = f.cose(f.key(), f.chain(), protected={2: ["io.cncf.notary.signingScheme", 4], 4: b"kid"})
    refused(COSE, blob, "unsupported critical header 4")


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"crit": None}, "crit must be a non-empty list"),
        ({"crit": []}, "crit must be a non-empty list"),
        ({"crit": ["io.cncf.notary.signingScheme", "alg"]}, "must not list JOSE headers"),
        ({"crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.signingScheme"]}, "more than once"),
        (
            {"crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]},
            "marked critical but not present",
        ),
        ({"crit": ["io.cncf.notary.signingTime"]}, "io.cncf.notary.signingScheme must be marked critical"),
        (
            {"crit": ["io.cncf.notary.signingScheme", "x-private"], "x-private": 1},
            "unsupported critical header 'x-private'",
        ),
        ({"io.cncf.notary.expiry": "2027-01-01T00:00:00Z"}, "io.cncf.notary.expiry must be marked critical"),
        ({"cty": "application/json"}, "cty is 'application/json'"),
        ({"alg": "RS256"}, "unsupported alg 'RS256'"),
        ({"io.cncf.notary.signingScheme": "notary.default"}, "unsupported signing scheme"),
        (
            {"io.cncf.notary.signingScheme": None, "crit": ["io.cncf.notary.expiry"]},
            "signingScheme is missing",
        ),
        ({"io.cncf.notary.signingTime": None}, "signingTime is required by notary.x509"),
        ({"io.cncf.notary.signingTime": "yesterday"}, "is not an RFC 3339 time"),
        (
            {
                "io.cncf.notary.authenticSigningTime": "2026-12-01T00:00:00Z",
                "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
            },
            "authenticSigningTime is not allowed with notary.x509",
        ),
        (
            {
                "io.cncf.notary.expiry": "2026-12-01T08:00:00Z",
                "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
            },
            "is not after the signing time",
        ),
    ],
)
def test_protected_header_rules(over: dict[str, Any], match: str) -> None:
    refused(JWS, f.jws(f.key(), f.chain(), protected=f.x509_protected(**over), alg="ES256"), match)


def test_signing_authority_scheme_needs_authentic_signing_time() -> None:
    base = {"io.cncf.notary.signingScheme": "notary.x509.signingAuthority"}
    refused(
        JWS,
        f.jws(f.key(), f.chain(), protected=f.x509_protected(**base)),
        "signingTime is not allowed|authenticSigningTime is required",
    )
    ok = f.x509_protected(
        **base,
        **{
            "io.cncf.notary.signingTime": None,
            "io.cncf.notary.authenticSigningTime": "2026-12-01T00:00:00Z",
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
        },
    )
    envelope = parse_and_verify(JWS, f.jws(f.key(), f.chain(), protected=ok))
    assert envelope.attributes.signing_scheme is SigningScheme.X509_SIGNING_AUTHORITY
    assert envelope.attributes.authentic_signing_time is not None
    assert envelope.attributes.signing_time is None


def test_jws_must_have_exactly_the_four_members() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    refused(JWS, json.dumps({**env, "extra": 1}).encode(), "unexpected \\['extra'\\]")
    del env["header"]
    refused(JWS, json.dumps(env).encode(), "missing \\['header'\\]")


def test_jws_base64url_must_be_unpadded_and_url_safe() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    refused(
        JWS,
        json.dumps({**env, "protected": env["protected"] + "="}).encode(),
        "protected is not unpadded base64url",
    )
    refused(
        JWS,
        json.dumps({**env, "signature": env["signature"].replace("-", "+").replace("_", "/") + "+"}).encode(),
        "signature is not",
    )


def test_jws_protected_header_with_duplicate_keys_is_refused() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    raw = base64.urlsafe_b64decode(env["protected"] + "==").decode()
    dup = raw[:-1] + ',"alg":"ES384"}'
    env["protected"] = f.b64url(dup.encode())
    refused(JWS, json.dumps(env).encode(), "duplicate object key 'alg'")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"x5c": []}, "x5c must be a non-empty list"),
        ({"x5c": ["not base64!"]}, "x5c\\[0\\]: invalid base64"),
        (
            {"x5c": [base64.b64encode(b"not a certificate").decode()]},
            "certificate 0 is not a DER certificate",
        ),
        ({"io.cncf.notary.timestampSignature": "%%%"}, "timestampSignature: invalid base64"),
        ({"io.cncf.notary.signingAgent": 7}, "signingAgent must be a string"),
    ],
)
def test_jws_unprotected_header_rules(header: dict[str, Any], match: str) -> None:
    refused(JWS, f.jws(f.key(), f.chain(), header=header), match)


def test_jws_unknown_unprotected_keys_are_ignored() -> None:
    envelope = parse_and_verify(JWS, f.jws(f.key(), f.chain(), header={"io.cncf.notary.SigningAgent": "old"}))
    assert envelope.signing_agent == "notar-tests"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"[]", "expected a JSON object"),
        (b"{}", "targetArtifact is missing"),
        (b'{"TargetArtifact": {}}', "case variant of 'targetArtifact'"),
        (
            b'{"targetArtifact": {"mediaType": "x", "digest": "sha256:abc", "size": 1}}',
            "not a sha256 or sha512 digest",
        ),
        (
            b'{"targetArtifact": {"mediaType": "x", "digest": "sha256:' + b"a" * 64 + b'", "size": -1}}',
            "non-negative",
        ),
        (
            b'{"targetArtifact": {"mediaType": "x", "Digest": "y", "digest": "sha256:'
            + b"a" * 64
            + b'", "size": 1}}',
            "case variant",
        ),
    ],
)
def test_payload_rules(payload: bytes, match: str) -> None:
    refused(JWS, f.jws(f.key(), f.chain(), payload=payload), match)


def test_cose_structure_rules() -> None:
    good = f.cose(f.key(), f.chain())
    refused(COSE, f.cose(f.key(), f.chain(), tag=98), "not a COSE_Sign1_Tagged")
    refused(COSE, good + b"\x00", "1 bytes after the CBOR item")
    item = cbor2.loads(good)
    protected, unprotected, payload, signature = item.value
    refused(
        COSE,
        cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), None, signature])),
        "detached payloads",
    )
    refused(COSE, cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), payload])), "array of 4")
    refused(
        COSE,
        cbor2.dumps(cbor2.CBORTag(18, [b"", dict(unprotected), payload, signature])),
        "non-empty byte string",
    )


def test_cose_protected_header_with_duplicate_labels_is_refused() -> None:
    item = cbor2.loads(f.cose(f.key(), f.chain()))
    protected, unprotected, payload, signature = item.value
    dup = bytearray(protected)
    dup[0] += 1  # one more map entry ...
    dup += cbor2.dumps(1) + cbor2.dumps(-35)  # ... that repeats label 1 (alg)
    refused(
        COSE,
        cbor2.dumps(cbor2.CBORTag(18, [bytes(dup), dict(unprotected), payload, signature])),
        "not valid CBOR",
    )


def test_cose_times_must_be_tag_1() -> None:
    blob = f.cose(
        f.key(), f.chain(), protected={"io.cncf.notary.signingTime": cbor2.CBORTag(0, "2026-12-01T00:00:00Z")}
    )
    refused(COSE, blob, "times must be CBOR tag 1")
    blob = f.cose(f.key(), f.chain(), protected={"io.cncf.notary.signingTime": 1764547200})
    refused(COSE, blob, "times must be CBOR tag 1")


def test_cose_x5chain_may_be_a_single_certificate() -> None:
    leaf_only = [f.cert(f.CertSpec(), f.key())]
    blob = f.cose(f.key(), leaf_only, unprotected={33: f.der(leaf_only[0])})
    assert len(parse_and_verify(COSE, blob).certificate_chain) == 1
    refused(COSE, f.cose(f.key(), leaf_only, unprotected={33: "text"}), "x5chain \\(label 33\\)")


def test_cose_indefinite_lengths_are_refused() -> None:
    blob = bytearray(f.cose(f.key(), f.chain()))
    # 0xd2 0x84: tag 18, array(4) -> make the array indefinite-length (0x9f ... 0xff)
    assert blob[:2] == b"\xd2\x84"
    refused(COSE, b"\xd2\x9f" + bytes(blob[2:]) + b"\xff", "indefinite")


def test_unsupported_media_type_and_size_limit() -> None:
    with pytest.raises(UnsupportedEnvelopeError, match="unsupported signature envelope media type"):
        parse_envelope("application/json", b"{}")
    with pytest.raises(EnvelopeError, match="the limit is 33554432"):
        parse_envelope(JWS, b" " * (MAX_ENVELOPE_SIZE + 1))


def test_jws_and_cose_carry_the_timestamp_token() -> None:
    envelope = parse_and_verify(
        JWS, f.jws(f.key(), f.chain(), timestamp=lambda sig: b"token over " + sig[:4])
    )
    assert envelope.timestamp_token is not None and envelope.timestamp_token.startswith(b"token over ")
    envelope = parse_and_verify(
        COSE, f.cose(f.key(), f.chain(), unprotected={"io.cncf.notary.timestampSignature": b"tok"})
    )
    assert envelope.timestamp_token == b"tok"


def test_overlong_chains_are_refused_before_parsing() -> None:
    env = _jws_parts(f.jws(f.key(), f.chain()))
    env["header"]["x5c"] = env["header"]["x5c"] * 9
    refused(JWS, json.dumps(env).encode(), "18 certificates in the chain; at most 16")
