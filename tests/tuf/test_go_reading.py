"""Documents that Go's decoder would read differently from notar are refused (red-team #11, finding 1).

Go's ``encoding/json`` (and docker/go's canonical fork that notary uses) matches object keys to struct
fields exactly first, else case-insensitively (plus U+212A KELVIN SIGN for ``k`` and U+017F LONG S for
``s``), the last match winning. A file ``{"signed": A, "Signed": B, ...}`` signed both ways is read as A
by a reader that matches exactly and as B by Go clients: a split view. Every such document, at every
level of every role, is refused by :meth:`Envelope.from_bytes`, which both notar's client and server use.

The other places where the two readers could differ are pinned down here too, each with what notar does:
invalid UTF-8, unpaired surrogates, number forms, ``null`` where Go leaves a zero value, unknown fields.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from notar.crypto import PrivateKey
from notar.encoding import GoTime, b64encode, canonical_json
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    MetadataError,
    Root,
    Snapshot,
    Targets,
    new_root,
    new_snapshot,
    new_targets,
)

NOW = GoTime.parse("2026-01-01T00:00:00Z")
KEY = PrivateKey.generate()
SIGNER = PrivateKey.generate()
DIGEST_A = bytes(range(32))
DIGEST_B = bytes(range(1, 33))

Doc = dict[str, Any]


def signed_file(signed: Doc, **top: Any) -> bytes:
    """A file whose signature by KEY covers *signed* exactly as Go verifies it (canonical generic value)."""
    method, sig = KEY.sign(canonical_json(signed))
    doc = {"signed": signed, "signatures": [{"keyid": KEY.key_id, "method": method, "sig": b64encode(sig)}]}
    doc.update(top)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def targets_doc() -> Doc:
    body = new_targets(now=NOW)
    body.targets["latest"] = FileMeta(401, {"sha256": DIGEST_A})
    body.delegations.keys[SIGNER.key_id] = SIGNER.public_key
    body.delegations.roles.append(DelegatedRole("targets/releases", [SIGNER.key_id], 1, [""]))
    return body.to_dict()


def root_doc() -> Doc:
    keys = {role: [PrivateKey.generate().public_key] for role in ("root", "targets", "snapshot", "timestamp")}
    return new_root(keys, now=NOW).to_dict()


def snapshot_doc() -> Doc:
    root = Envelope.sign(
        new_root({r: [KEY.public_key] for r in ("root", "targets", "snapshot", "timestamp")}, now=NOW), [KEY]
    )
    targets = Envelope.sign(new_targets(now=NOW), [KEY])
    return new_snapshot({"root": root, "targets": targets}, now=NOW).to_dict()


def _first(d: Doc) -> Any:
    return next(iter(d.values()))


# Each mutation adds, beside a field, a key that Go folds onto it (or onto a map key), in a copy of a
# valid body; the whole body is then validly signed, so only the ambiguity can make notar refuse it.
Mutation = Callable[[Doc], None]
TARGETS_MUTATIONS: dict[str, Mutation] = {
    "signed.Targets": lambda d: d.__setitem__(
        "Targets", {"evil": {"length": 1, "hashes": {"sha256": b64encode(DIGEST_B)}}}
    ),
    "signed.TARGETS alone-ish": lambda d: d.__setitem__("TARGETS", {}),
    "signed.Delegations": lambda d: d.__setitem__("Delegations", {"keys": {}, "roles": []}),
    "signed._TYPE": lambda d: d.__setitem__("_TYPE", "Targets"),
    "signed.Version": lambda d: d.__setitem__("Version", 99),
    "signed.EXPIRES": lambda d: d.__setitem__("EXPIRES", "2099-01-01T00:00:00Z"),
    "targets.latest.Length": lambda d: d["targets"]["latest"].__setitem__("Length", 1),
    "targets.latest.Hashes": lambda d: d["targets"]["latest"].__setitem__(
        "Hashes", {"sha256": b64encode(DIGEST_B)}
    ),
    "targets.latest.Custom": lambda d: d["targets"]["latest"].__setitem__("Custom", {"x": 1}),
    "targets.latest.hashes.SHA256": lambda d: d["targets"]["latest"]["hashes"].__setitem__(
        "SHA256", b64encode(DIGEST_B)
    ),
    "delegations.Roles": lambda d: d["delegations"].__setitem__("Roles", []),
    "delegations.\u212aeys (Kelvin sign)": lambda d: d["delegations"].__setitem__("\u212aeys", {}),
    "delegations.keys upper-case ID": lambda d: d["delegations"]["keys"].__setitem__(
        SIGNER.key_id.upper(), copy.deepcopy(d["delegations"]["keys"][SIGNER.key_id])
    ),
    "delegations.keys.*.KeyType": lambda d: _first(d["delegations"]["keys"]).__setitem__("KeyType", "rsa"),
    "delegations.keys.*.keyVal": lambda d: _first(d["delegations"]["keys"]).__setitem__(
        "keyVal", {"public": "AA=="}
    ),
    "delegations.keys.*.keyval.Public": lambda d: _first(d["delegations"]["keys"])["keyval"].__setitem__(
        "Public", "AA=="
    ),
    "delegations.roles[0].Paths": lambda d: d["delegations"]["roles"][0].__setitem__("Paths", ["nothing/"]),
    "delegations.roles[0].NAME": lambda d: d["delegations"]["roles"][0].__setitem__("NAME", "targets/other"),
    "delegations.roles[0].\u212aeyids": lambda d: d["delegations"]["roles"][0].__setitem__("\u212aeyids", []),
    "delegations.roles[0].Threshold": lambda d: d["delegations"]["roles"][0].__setitem__("Threshold", 5),
}
ROOT_MUTATIONS: dict[str, Mutation] = {
    "signed.Keys": lambda d: d.__setitem__("Keys", {}),
    "signed.Roles": lambda d: d.__setitem__("Roles", {}),
    "signed.Consistent_Snapshot": lambda d: d.__setitem__("Consistent_Snapshot", True),
    "roles.Root": lambda d: d["roles"].__setitem__("Root", copy.deepcopy(d["roles"]["root"])),
    "roles.root.KeyIDs": lambda d: d["roles"]["root"].__setitem__("KeyIDs", []),
    "roles.root.\u017fhreshold? (THRESHOLD)": lambda d: d["roles"]["root"].__setitem__("THRESHOLD", 2),
    "keys.*.keyval.PUBLIC": lambda d: _first(d["keys"])["keyval"].__setitem__("PUBLIC", "AA=="),
}
SNAPSHOT_MUTATIONS: dict[str, Mutation] = {
    "signed.Meta": lambda d: d.__setitem__("Meta", {}),
    "meta.Root": lambda d: d["meta"].__setitem__("Root", copy.deepcopy(d["meta"]["root"])),
    "meta.targets.Hashes": lambda d: d["meta"]["targets"].__setitem__("Hashes", {}),
    "meta.targets.LENGTH": lambda d: d["meta"]["targets"].__setitem__("LENGTH", 3),
}
BODIES: dict[str, tuple[Callable[[], Doc], type[Any], dict[str, Mutation]]] = {
    "targets": (targets_doc, Targets, TARGETS_MUTATIONS),
    "root": (root_doc, Root, ROOT_MUTATIONS),
    "snapshot": (snapshot_doc, Snapshot, SNAPSHOT_MUTATIONS),
}
CASES = [(role, name) for role, (_, _, mutations) in BODIES.items() for name in mutations]


@pytest.mark.parametrize("role", list(BODIES))
def test_the_unmutated_documents_are_accepted(role: str) -> None:
    make, expect, _ = BODIES[role]
    env = Envelope.from_bytes(signed_file(make()), expect=expect)
    assert env.signatures[0].keyid == KEY.key_id


@pytest.mark.parametrize(("role", "mutation"), CASES, ids=[f"{r}:{m}" for r, m in CASES])
def test_a_key_go_folds_onto_a_field_is_refused(role: str, mutation: str) -> None:
    make, expect, mutations = BODIES[role]
    doc = make()
    mutations[mutation](doc)
    with pytest.raises(MetadataError, match="read as|differ only in letter case"):
        Envelope.from_bytes(signed_file(doc), expect=expect)


def test_the_reported_split_view_is_refused() -> None:
    """``{"signed": A, "signatures": SA, "Signed": B, "Signatures": SB}``, A and B both validly signed."""
    a, b = targets_doc(), targets_doc()
    b["targets"]["latest"]["hashes"]["sha256"] = b64encode(DIGEST_B)
    file_b = json.loads(signed_file(b))
    data = signed_file(a, Signed=file_b["signed"], Signatures=file_b["signatures"])
    with pytest.raises(MetadataError, match="'Signed' is read as 'signed' by Go clients"):
        Envelope.from_bytes(data, expect=Targets)
    # the same with only a fold variant of "signatures", or the long s
    for extra in ({"SIGNATURES": file_b["signatures"]}, {"\u017figned": file_b["signed"]}):
        with pytest.raises(MetadataError, match="by Go clients"):
            Envelope.from_bytes(signed_file(a, **extra), expect=Targets)


@pytest.mark.parametrize("field_name", ["KeyID", "Method", "SIG"])
def test_fold_variants_in_a_signature_are_refused(field_name: str) -> None:
    doc = json.loads(signed_file(targets_doc()))
    doc["signatures"][0][field_name] = "x"
    with pytest.raises(MetadataError, match="by Go clients"):
        Envelope.from_bytes(json.dumps(doc).encode(), expect=Targets)


@pytest.mark.parametrize(
    "raw",
    [
        '"signed":{"x":1},',  # a second "signed" (the first is a stand-in)
        '"sig\\u006eed":{"x":1},',  # the same key spelled with an escape
    ],
)
def test_duplicate_keys_after_unescaping_are_refused(raw: str) -> None:
    data = signed_file(targets_doc()).replace(b"{", b"{" + raw.encode(), 1)
    with pytest.raises(MetadataError, match="duplicate object key 'signed'"):
        Envelope.from_bytes(data, expect=Targets)


def test_duplicate_target_names_are_refused_but_case_variants_are_two_tags() -> None:
    doc = targets_doc()
    data = signed_file(doc).replace(b'"targets":{', b'"targets":{"latest":{"length":1,"hashes":{}},', 1)
    with pytest.raises(MetadataError, match="duplicate object key 'latest'"):
        Envelope.from_bytes(data, expect=Targets)
    # docker tags are case-sensitive and Go keeps map keys exactly: "Latest" is another tag, for both
    doc["targets"]["Latest"] = {"length": 1, "hashes": {"sha256": b64encode(DIGEST_B)}}
    env = Envelope.from_bytes(signed_file(doc), expect=Targets)
    assert set(env.signed.targets) == {"latest", "Latest"}


# -- the other places where Go and Python could read the same bytes differently ---------------------
def _with_raw(doc: Doc, placeholder: str, literal: str) -> bytes:
    return signed_file(doc).replace(json.dumps(placeholder).encode(), literal.encode())


@pytest.mark.parametrize(
    ("literal", "why"),
    [
        ("2.0", "integer literal"),  # Go: "cannot unmarshal number 2.0 into ... int"
        ("2e0", "integer literal"),
        ("1E+2", "integer literal"),
        ("1e400", "integer literal"),  # Go: +Inf, an error
        ("9007199254740993", "too large"),  # Go's generic float64 would round it: other signed bytes
        ("-0", "version cannot be less than one"),  # 0 for both readers
        ("null", "expected an integer"),  # Go leaves 0: "version cannot be less than one"
    ],
)
def test_version_number_forms(literal: str, why: str) -> None:
    doc = targets_doc()
    doc["version"] = "@version@"
    with pytest.raises(MetadataError, match=why):
        Envelope.from_bytes(_with_raw(doc, "@version@", literal), expect=Targets)


def test_minus_zero_reads_as_zero_like_go() -> None:
    doc = targets_doc()
    doc["targets"]["latest"]["length"] = 0
    data = signed_file(doc).replace(b'"length":0', b'"length":-0')
    env = Envelope.from_bytes(data, expect=Targets)
    assert env.signed.targets["latest"].length == 0
    assert env.signed_bytes == canonical_json(doc)  # Go's canonical form of -0 is 0 as well


@pytest.mark.parametrize(
    ("path", "accepted"),
    [
        # Go reads null as the zero value; where that is usable notar reads the same ...
        (("delegations",), True),
        (("targets",), True),
        (("delegations", "roles", 0, "paths"), True),
        (("delegations", "roles", 0, "keyids"), True),
        (("targets", "latest", "custom"), True),
        # ... and where notar would need to invent a value it refuses the document instead
        (("targets", "latest", "length"), False),  # Go: a 0-byte target
        (("targets", "latest", "hashes"), False),  # Go: no hashes
        (("delegations", "roles", 0, "threshold"), False),  # Go: 0, an invalid threshold
        (("expires",), False),  # Go: year 1, expired
        (("_type",), False),
    ],
)
def test_null_fields(path: tuple[str | int, ...], accepted: bool) -> None:
    doc = targets_doc()
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = None
    data = signed_file(doc)
    if accepted:
        env = Envelope.from_bytes(data, expect=Targets)
        assert env.signed_bytes == canonical_json(doc)
    else:
        with pytest.raises(MetadataError):
            Envelope.from_bytes(data, expect=Targets)


def test_null_consistent_snapshot_is_refused() -> None:
    doc = root_doc()
    doc["consistent_snapshot"] = None  # Go: false; notar refuses rather than guess
    with pytest.raises(MetadataError, match="consistent_snapshot"):
        Envelope.from_bytes(signed_file(doc), expect=Root)


def test_unknown_fields_are_signed_and_ignored_by_both() -> None:
    doc = targets_doc()
    doc["x-vendor"] = {"note": "kept"}
    doc["targets"]["latest"]["x-extra"] = 1
    env = Envelope.from_bytes(signed_file(doc), expect=Targets)
    assert env.signed_bytes == canonical_json(doc)  # covered by the signature, as in Go
    assert env.signed.unrecognized == {"x-vendor": {"note": "kept"}}
    assert b"x-vendor" not in env.go_reencoded()  # Go's typed structs drop it when re-serialising


@pytest.mark.parametrize(
    "data",
    [
        b'{"signed":{"_type":"Targets","x":"\xff"},"signatures":[]}',  # Go: U+FFFD
        b'{"signed":{"_type":"Targets","x":"\\udc00"},"signatures":[]}',  # Go: U+FFFD
        b'\xef\xbb\xbf{"signed":{},"signatures":[]}',
    ],
)
def test_text_go_would_replace_is_refused(data: bytes) -> None:
    with pytest.raises(MetadataError, match="UTF-8|surrogate|malformed"):
        Envelope.from_bytes(data, expect=Targets)


def test_control_characters_in_names_round_trip_through_a_valid_file() -> None:
    """The file escapes them as Go's json.Marshal does; the signature covers them raw (canonical form)."""
    body = new_targets(now=NOW)
    name = 'c\x01\x08\x0c\t\n\r\x1f\x7f<>&\u2028"\\ é'
    body.targets[name] = FileMeta(3, {"sha256": DIGEST_A})
    env = Envelope.sign(body, [KEY])
    assert b"\x01" not in env.data and b"\n" not in env.data
    assert b"\\u0001\\u0008\\u000c\\t\\n\\r\\u001f" in env.data
    assert json.loads(env.data)["signed"]["targets"][name]["length"] == 3  # valid JSON for any reader
    parsed = Envelope.from_bytes(env.data, expect=Targets)
    assert name in parsed.signed.targets and parsed.signed_bytes == env.signed_bytes
    assert b"\x01" in parsed.signed_bytes  # what Go's MarshalCanonical signs
