"""The TUF model on our own data: signing, verification rules and malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notar.crypto import PrivateKey, make_root_certificate
from notar.encoding import GoTime, canonical_json
from notar.tuf import (
    DelegatedRole,
    Envelope,
    ExpiredError,
    FileMeta,
    HashMismatchError,
    InvalidKeyIDError,
    MetadataError,
    NoSignaturesError,
    RoleError,
    RoleKeys,
    Root,
    RootError,
    Signature,
    Snapshot,
    Targets,
    ThresholdError,
    Timestamp,
    TrustPinning,
    VersionError,
    check_expiry,
    check_hashes,
    check_version,
    delegated_role_keys,
    new_root,
    new_snapshot,
    new_targets,
    new_timestamp,
    roles,
    verify_root,
    verify_signatures,
)

NOW = GoTime.parse("2026-11-27T10:00:00.123456789Z")
GUN = "example.com/team/app"
KEYS = {name: PrivateKey.generate("ed25519" if name == "timestamp" else "ecdsa") for name in roles.BASE_ROLES}


def make_root(
    gun: str = GUN, *, root_key: PrivateKey = KEYS["root"], version: int = 1
) -> tuple[Envelope[Root], Any]:
    cert = make_root_certificate(root_key, gun, now=NOW.to_datetime())
    body = new_root(
        {
            "root": [cert],
            "targets": [KEYS["targets"].public_key],
            "snapshot": [KEYS["snapshot"].public_key],
            "timestamp": [KEYS["timestamp"].public_key],
        },
        now=NOW,
        version=version,
    )
    return Envelope.sign(body, [(root_key, cert.key_id)]), cert


def test_new_metadata_looks_like_notary() -> None:
    root, cert = make_root()
    doc = json.loads(root.data)
    assert list(doc) == ["signed", "signatures"]
    assert list(doc["signatures"][0]) == ["keyid", "method", "sig"]
    assert doc["signatures"][0]["keyid"] == cert.key_id
    signed = doc["signed"]
    assert list(signed) == ["_type", "consistent_snapshot", "expires", "keys", "roles", "version"]
    assert signed["consistent_snapshot"] is False and signed["_type"] == "Root"
    assert signed["expires"] == "2036-11-24T10:00:00.123456789Z"  # +3650 days, nanoseconds kept
    assert all(k["keyval"]["private"] is None for k in signed["keys"].values())
    assert not root.data.endswith(b"\n") and b" " not in root.data
    targets = Envelope.sign(new_targets(now=NOW), [KEYS["targets"]])
    assert json.loads(targets.data)["signed"] == {
        "_type": "Targets",
        "delegations": {"keys": {}, "roles": []},
        "expires": "2029-11-26T10:00:00.123456789Z",
        "targets": {},
        "version": 1,
    }
    assert targets.go_reencoded() == targets.data


def test_sign_parse_verify_chain() -> None:
    root, _ = make_root()
    verify_root(root, GUN, now=NOW)
    body = new_targets(now=NOW)
    body.targets["1.0"] = FileMeta(401, {"sha256": bytes(32)})
    targets = Envelope.sign(body, [KEYS["targets"]])
    snap = Envelope.sign(new_snapshot({"root": root, "targets": targets}, now=NOW), [KEYS["snapshot"]])
    ts = Envelope.sign(new_timestamp(snap, now=NOW), [KEYS["timestamp"]])
    for env, role in ((targets, "targets"), (snap, "snapshot"), (ts, "timestamp")):
        parsed: Envelope[Any] = Envelope.from_bytes(env.data)
        assert parsed.data == env.data and parsed.signed_bytes == env.signed_bytes
        verify_signatures(parsed, RoleKeys.from_root(root.signed, role))
        check_expiry(parsed.signed, NOW, role)
    check_hashes(snap.data, ts.signed.meta["snapshot"], "snapshot", check_length=True)
    check_hashes(targets.data, snap.signed.meta["targets"], "targets", check_length=True)
    assert set(snap.signed.meta) == {"root", "targets"}
    assert set(snap.signed.meta["root"].hashes) == {"sha256", "sha512"}


def test_threshold_counts_distinct_valid_keys() -> None:
    a, b, c = (PrivateKey.generate() for _ in range(3))
    keys = {k.key_id: k.public_key for k in (a, b, c)}
    body = new_targets(now=NOW)
    two = Envelope.sign(body, [a, b])
    assert verify_signatures(two, RoleKeys("targets", keys, 2)) == {a.key_id, b.key_id}
    dup = Envelope.sign(body, [a, a])
    with pytest.raises(ThresholdError, match="valid signatures did not meet threshold for targets"):
        verify_signatures(dup, RoleKeys("targets", keys, 2))
    # a signature by a key outside the role is skipped, invalid extra signatures are tolerated
    outsider = PrivateKey.generate()
    mixed = Envelope.sign(body, [outsider, a])
    bad = Signature(b.key_id, "ecdsa", bytes(64))
    mixed = mixed.with_signatures([*mixed.signatures, bad])
    assert verify_signatures(mixed, RoleKeys("targets", keys, 1)) == {a.key_id}
    with pytest.raises(ThresholdError):
        verify_signatures(mixed, RoleKeys("targets", keys, 2))
    with pytest.raises(NoSignaturesError, match="tuf: data has no signatures"):
        verify_signatures(two.with_signatures([]), RoleKeys("targets", keys, 1))
    with pytest.raises(ThresholdError):
        verify_signatures(two, RoleKeys("targets", keys, 0))


def test_key_id_must_match_key_content() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    env = Envelope.sign(new_targets(now=NOW), [a])
    with pytest.raises(InvalidKeyIDError, match="key ID is not valid for key content"):
        verify_signatures(env, RoleKeys("targets", {a.key_id: b.public_key}, 1))


def test_signature_over_canonical_parsed_value_not_raw_bytes() -> None:
    key = PrivateKey.generate()
    body = new_targets(now=NOW)
    body.targets["a<b>&c\u2028"] = FileMeta(1, {"sha256": bytes(32)})
    env = Envelope.sign(body, [key])
    assert b"\\u003c" in env.data and b"\\u2028" in env.data  # escaped in the file
    assert b"a<b>&c" in env.signed_bytes  # raw in what was signed
    parsed = Envelope.from_bytes(env.data, expect=Targets)
    verify_signatures(parsed, RoleKeys("targets", {key.key_id: key.public_key}, 1))
    # non-canonical whitespace and key order still verify (Go re-canonicalises too), bytes are kept
    doc = json.loads(env.data)
    loose = json.dumps({"signatures": doc["signatures"], "signed": doc["signed"]}, indent=2).encode()
    reparsed = Envelope.from_bytes(loose, expect=Targets)
    verify_signatures(reparsed, RoleKeys("targets", {key.key_id: key.public_key}, 1))
    assert reparsed.data == loose


def test_tampering_breaks_signatures() -> None:
    key = PrivateKey.generate()
    env = Envelope.sign(new_targets(now=NOW), [key])
    tampered = env.data.replace(b'"version":1', b'"version":2')
    with pytest.raises(ThresholdError):
        verify_signatures(Envelope.from_bytes(tampered), RoleKeys("targets", {key.key_id: key.public_key}, 1))
    # an unknown field added by an attacker is covered by the signature too
    doc = json.loads(env.data)
    doc["signed"]["extra"] = 1
    extra = Envelope.from_bytes(json.dumps(doc).encode(), expect=Targets)
    assert extra.signed.unrecognized == {"extra": 1}
    with pytest.raises(ThresholdError):
        verify_signatures(extra, RoleKeys("targets", {key.key_id: key.public_key}, 1))


def test_expiry_version_and_hashes() -> None:
    body = new_targets(now=NOW)
    with pytest.raises(ExpiredError, match="targets expired at"):
        check_expiry(body, body.expires.add(seconds=1), "targets")
    check_expiry(body, body.expires, "targets")
    body.version = 3
    check_version(body, 3, "targets")
    with pytest.raises(VersionError, match="version 3 is lower than current version 4"):
        check_version(body, 4, "targets")
    data = b"hello"
    meta = FileMeta.from_data(data)
    check_hashes(data, meta, "x", check_length=True)
    with pytest.raises(HashMismatchError, match="sha256 checksum for x did not match"):
        check_hashes(b"hellO", meta, "x")
    with pytest.raises(HashMismatchError, match="length"):
        check_hashes(data + b" ", FileMeta(5, dict(meta.hashes)), "x", check_length=True)
    with pytest.raises(HashMismatchError, match="no checksums for supported algorithms"):
        check_hashes(data, FileMeta(5, {"md5": b"x"}), "x")
    only512 = FileMeta.from_data(data, algorithms=("sha512",))
    check_hashes(data, only512, "x")
    with pytest.raises(HashMismatchError, match="sha512"):
        check_hashes(b"other", only512, "x")


def _mutate(env: Envelope[Any], fn: Any) -> bytes:
    doc = json.loads(env.data)
    fn(doc)
    return json.dumps(doc).encode()


MALFORMED = [
    ("not json", lambda d: None, b"{not json"),
    ("array", lambda d: None, b"[]"),
    ("signed missing", lambda d: d.pop("signed"), None),
    ("signatures not array", lambda d: d.__setitem__("signatures", {}), None),
    ("signature not object", lambda d: d.__setitem__("signatures", [1]), None),
    ("bad sig base64", lambda d: d["signatures"][0].__setitem__("sig", "@@"), None),
    ("keyid not string", lambda d: d["signatures"][0].__setitem__("keyid", 5), None),
    ("unknown type", lambda d: d["signed"].__setitem__("_type", "Bogus"), None),
    ("lower-case type", lambda d: d["signed"].__setitem__("_type", "targets"), None),
    ("version string", lambda d: d["signed"].__setitem__("version", "1"), None),
    ("version bool", lambda d: d["signed"].__setitem__("version", True), None),
    ("version zero", lambda d: d["signed"].__setitem__("version", 0), None),
    ("version fraction", lambda d: d["signed"].__setitem__("version", 1.5), None),
    ("expires bad", lambda d: d["signed"].__setitem__("expires", "tomorrow"), None),
    ("expires missing", lambda d: d["signed"].pop("expires"), None),
    ("targets not object", lambda d: d["signed"].__setitem__("targets", []), None),
    (
        "target length negative",
        lambda d: d["signed"]["targets"].__setitem__("t", {"length": -1, "hashes": {}}),
        None,
    ),
    (
        "target bad hash",
        lambda d: d["signed"]["targets"].__setitem__("t", {"length": 1, "hashes": {"sha256": "AA=="}}),
        None,
    ),
    (
        "delegation not child",
        lambda d: d["signed"]["delegations"]["roles"].append(
            {"name": "targets/a/b", "keyids": [], "threshold": 1}
        ),
        None,
    ),
    (
        "delegation bad name",
        lambda d: d["signed"]["delegations"]["roles"].append(
            {"name": "targets/Upper", "keyids": [], "threshold": 1}
        ),
        None,
    ),
    (
        "delegation zero threshold",
        lambda d: d["signed"]["delegations"]["roles"].append(
            {"name": "targets/a", "keyids": [], "threshold": 0}
        ),
        None,
    ),
    (
        "delegation unknown key",
        lambda d: d["signed"]["delegations"]["roles"].append(
            {"name": "targets/a", "keyids": ["ab"], "threshold": 1}
        ),
        None,
    ),
    (
        "delegation key bad",
        lambda d: d["signed"]["delegations"]["keys"].__setitem__("ab", {"keytype": 1}),
        None,
    ),
]


@pytest.mark.parametrize(("name", "fn", "raw"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_targets(name: str, fn: Any, raw: bytes | None) -> None:
    env = Envelope.sign(new_targets(now=NOW), [KEYS["targets"]])
    data = raw if raw is not None else _mutate(env, fn)
    with pytest.raises(MetadataError) as info:
        Envelope.from_bytes(data, expect=Targets)
    assert str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    "fn",
    [
        lambda d: d["signed"]["roles"].pop("snapshot"),
        lambda d: d["signed"]["roles"]["root"].__setitem__("threshold", 0),
        lambda d: d["signed"]["roles"]["root"]["keyids"].append("00" * 32),
        lambda d: d["signed"].__setitem__("consistent_snapshot", "no"),
        lambda d: d["signed"]["keys"].__setitem__("x", {"keytype": "ecdsa", "keyval": {"public": "%%"}}),
    ],
)
def test_malformed_root(fn: Any) -> None:
    root, _ = make_root()
    with pytest.raises(MetadataError):
        Envelope.from_bytes(_mutate(root, fn), expect=Root)


def test_malformed_snapshot_and_timestamp() -> None:
    root, _ = make_root()
    targets = Envelope.sign(new_targets(now=NOW), [KEYS["targets"]])
    snap = Envelope.sign(new_snapshot({"root": root, "targets": targets}, now=NOW), [KEYS["snapshot"]])
    with pytest.raises(MetadataError, match="sha256 of targets"):
        Envelope.from_bytes(_mutate(snap, lambda d: d["signed"]["meta"].pop("targets")), expect=Snapshot)
    ts = Envelope.sign(new_timestamp(snap, now=NOW), [KEYS["timestamp"]])
    with pytest.raises(MetadataError, match="sha256 of snapshot"):
        Envelope.from_bytes(
            _mutate(ts, lambda d: d["signed"]["meta"]["snapshot"]["hashes"].pop("sha256")), expect=Timestamp
        )
    with pytest.raises(MetadataError, match="expected type Timestamp, not Snapshot"):
        Envelope.from_bytes(snap.data, expect=Timestamp)


def test_root_trust_rules() -> None:
    root, cert = make_root()
    verify_root(root, GUN, now=NOW)
    with pytest.raises(RootError, match="unable to retrieve valid leaf certificates"):
        verify_root(root, "example.com/other", now=NOW)
    with pytest.raises(RootError, match="unable to retrieve valid leaf certificates"):
        verify_root(root, GUN, now=NOW.add(days=3651))  # certificate expired
    # a root signed by a key that is not its root key
    wrong = Envelope.sign(root.signed, [KEYS["targets"]])
    with pytest.raises(RootError, match="integrity of roots"):
        verify_root(wrong, GUN, now=NOW)
    # plain (non-certificate) root keys are not accepted
    plain = new_root({r: [KEYS[r].public_key] for r in roles.BASE_ROLES}, now=NOW)
    with pytest.raises(RootError, match="unable to retrieve valid leaf certificates"):
        verify_root(Envelope.sign(plain, [KEYS["root"]]), GUN, now=NOW)
    # trust pinning
    verify_root(root, GUN, now=NOW, pinning=TrustPinning(certs={GUN: [cert.key_id]}))
    verify_root(root, GUN, now=NOW, pinning=TrustPinning(certs={"example.com/*": [cert.key_id]}))
    with pytest.raises(RootError, match="trust_pinning"):
        verify_root(root, GUN, now=NOW, pinning=TrustPinning(certs={GUN: ["00" * 32]}))
    with pytest.raises(RootError, match="trust on first use is disabled"):
        verify_root(root, GUN, now=NOW, pinning=TrustPinning(disable_tofu=True))


def test_root_rotation() -> None:
    old, old_cert = make_root()
    new_key = PrivateKey.generate()
    new_cert = make_root_certificate(new_key, GUN, now=NOW.to_datetime())
    body = new_root(
        {"root": [new_cert], **{r: [KEYS[r].public_key] for r in ("targets", "snapshot", "timestamp")}},
        now=NOW,
        version=2,
        extra_keys=[old_cert],
    )
    both = Envelope.sign(body, [(KEYS["root"], old_cert.key_id), (new_key, new_cert.key_id)])
    verify_root(both, GUN, trusted=old.signed, now=NOW)
    only_new = Envelope.sign(body, [(new_key, new_cert.key_id)])
    with pytest.raises(RootError, match="could not rotate trust"):
        verify_root(only_new, GUN, trusted=old.signed, now=NOW)
    only_old = Envelope.sign(body, [(KEYS["root"], old_cert.key_id)])
    with pytest.raises(RootError, match="integrity of roots"):
        verify_root(only_old, GUN, trusted=old.signed, now=NOW)
    # the previous root's certificate may have expired; rotation still works
    verify_root(both, GUN, trusted=old.signed, now=NOW)


def test_delegation_walk_and_paths() -> None:
    alice, bob = PrivateKey.generate(), PrivateKey.generate()
    top = new_targets(now=NOW)
    top.delegations.keys[alice.key_id] = alice.public_key
    top.delegations.roles.append(DelegatedRole("targets/releases", [alice.key_id], 1, ["v1/", "v2/"]))
    child = new_targets(now=NOW, role="targets/releases")
    child.delegations.keys[bob.key_id] = bob.public_key
    child.delegations.roles.append(DelegatedRole("targets/releases/qa", [bob.key_id], 1, ["v1/a", "v3/"]))
    Envelope.sign(child, [alice])  # check_delegations happens on parse:
    Envelope.from_bytes(Envelope.sign(child, [alice]).data, role="targets/releases")
    with pytest.raises(MetadataError):
        Envelope.from_bytes(Envelope.sign(child, [alice]).data, role="targets")
    trusted = {"targets": top, "targets/releases": child}
    rk = delegated_role_keys("targets/releases", trusted)
    assert rk.threshold == 1 and set(rk.keys) == {alice.key_id} and list(rk.paths or []) == ["v1/", "v2/"]
    qa = delegated_role_keys("targets/releases/qa", trusted)
    assert set(qa.keys) == {bob.key_id} and list(qa.paths or []) == [
        "v1/a"
    ]  # restricted to the parent's paths
    with pytest.raises(RoleError, match="delegation does not exist"):
        delegated_role_keys("targets/nobody", trusted)
    with pytest.raises(RoleError):
        delegated_role_keys("targets", trusted)
    assert DelegatedRole("targets/x", [], 1, [""]).matches("anything")
    assert not DelegatedRole("targets/x", [], 1, []).matches("anything")


def test_role_names() -> None:
    good = ["targets/releases", "targets/a/b", "targets/a-b_c9"]
    bad = [
        "targets",
        "targets/",
        "targets//a",
        "targets/A",
        "targets/a/",
        "targets/../x",
        "targets/./x",
        "target/a",
        "targets/" + "a" * 250,
        "targets/a b",
        "targets/é",
    ]
    assert all(roles.is_delegation(r) for r in good)
    assert not any(roles.is_delegation(r) for r in bad)
    assert all(roles.is_valid_role(r) for r in ("root", "targets", "snapshot", "timestamp"))
    assert roles.is_wildcard_delegation("targets/*") and roles.is_wildcard_delegation("targets/a/*")
    assert not roles.is_wildcard_delegation("targets/A/*")
    assert roles.parent_role("targets/a/b") == "targets/a" and roles.role_depth("targets/a/b") == 3


target_names = st.text(min_size=1, max_size=20).filter(
    lambda s: all(ord(c) >= 0x20 for c in s) and s[:1] < "\ud800"
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        target_names,
        st.tuples(st.integers(min_value=0, max_value=2**40), st.binary(min_size=32, max_size=32)),
        max_size=6,
    ),
    st.integers(min_value=1, max_value=2**31),
)
def test_property_targets_round_trip(files: dict[str, tuple[int, bytes]], version: int) -> None:
    body = new_targets(now=NOW, version=version)
    for name, (length, digest) in files.items():
        body.targets[name] = FileMeta(length, {"sha256": digest})
    try:
        env = Envelope.sign(body, [KEYS["timestamp"]])
    except Exception as e:  # only lone surrogates cannot be encoded
        assert "Unicode" in str(e)
        return
    parsed = Envelope.from_bytes(env.data, expect=Targets)
    assert parsed.data == env.data
    assert canonical_json(parsed.signed.to_dict()) == env.signed_bytes
    assert {n: (f.length, f.hashes["sha256"]) for n, f in parsed.signed.targets.items()} == files
    verify_signatures(
        parsed, RoleKeys("targets", {KEYS["timestamp"].key_id: KEYS["timestamp"].public_key}, 1)
    )
