"""Typed TUF metadata as Notary v1 writes it.

Each role class validates in ``from_dict`` and writes exactly Go notary's field set in ``to_dict``
(fields notar does not know are kept, so that read-then-write changes nothing). :class:`Envelope`
holds a parsed or freshly signed file: the role body, its signatures, the canonical bytes the
signatures cover and the file bytes.

Size: one dataclass per TUF shape with its reader and writer; the shapes nest (file metas in targets,
snapshot and timestamp; keys in root and delegations), so splitting by role would split the shapes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from notar.crypto import CryptoError, PublicKey, Signer
from notar.encoding import (
    EncodingError,
    GoTime,
    b64decode,
    b64encode,
    canonical_json,
    go_file_escape,
    go_fold,
    loads_strict,
)
from notar.tuf import roles
from notar.tuf.errors import MetadataError

__all__ = [
    "DelegatedRole",
    "Delegations",
    "Envelope",
    "FileMeta",
    "Role",
    "Root",
    "Signature",
    "Signed",
    "Snapshot",
    "Targets",
    "Timestamp",
]

HASH_LENGTHS = {"sha256": 32, "sha512": 64}


# -- small helpers ------------------------------------------------------------------------------------
def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MetadataError(f"{what}: expected an object, got {_typename(value)}")
    return value


def _typename(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MetadataError(f"{what}: expected a string, got {_typename(value)}")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MetadataError(f"{what}: expected an integer, got {_typename(value)}")
    return value


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise MetadataError(f"{what}: expected an array, got {_typename(value)}")
    return [_str(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _or(value: Any, default: Any) -> Any:
    """*value*, or *default* when it is null or absent (Go decodes null into an empty map/slice)."""
    return default if value is None else value


def _rest(d: Mapping[str, Any], known: Iterable[str], what: str) -> dict[str, Any]:
    """The fields of struct-like object *d* that are not in *known* (kept, and ignored, as Go ignores them).

    A key that is not a known field but that Go's decoder folds onto one (``"Signed"``, ``"\\u017figned"``,
    ``"TARGETS"``) is refused: Go would read it as that field and notar would not (a split view).
    """
    known = tuple(known)
    rest = {k: v for k, v in d.items() if k not in known}
    if rest:
        folded = {go_fold(k): k for k in known}
        for key in rest:
            field_name = folded.get(go_fold(key))
            if field_name is not None:
                raise MetadataError(
                    f"{what}: key {key!r} is read as {field_name!r} by Go clients; refusing the ambiguity"
                )
    return rest


def _map(value: Any, what: str) -> dict[str, Any]:
    """A JSON object used as a map with a fixed vocabulary of keys (hashes, meta, key IDs, role names).

    Go keeps such keys exactly; keys that differ only in case are still refused, as no writer makes
    them and readers that normalise case would disagree.
    """
    d = _obj(value, what)
    if len(d) > 1 and len({go_fold(k) for k in d}) != len(d):
        raise MetadataError(f"{what}: keys that differ only in letter case")
    return d


def _b64(value: Any, what: str) -> bytes:
    try:
        return b64decode(_str(value, what), what=what)
    except EncodingError as e:
        raise MetadataError(str(e)) from e


def _key(value: Any, what: str) -> PublicKey:
    try:
        return PublicKey.from_dict(value, what=what)
    except CryptoError as e:
        raise MetadataError(str(e)) from e


# -- building blocks ------------------------------------------------------------------------------------
@dataclass(slots=True)
class FileMeta:
    """Length and hashes of a file (a target, or another role's metadata file)."""

    length: int
    hashes: dict[str, bytes]
    custom: Any = None  # raw JSON passthrough; written only when not None
    unrecognized: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: bytes, *, algorithms: Iterable[str] = ("sha256", "sha512")) -> FileMeta:
        """Length and hashes of *data* (both sha256 and sha512 by default, as notary writes)."""
        return cls(len(data), {alg: hashlib.new(alg, data).digest() for alg in algorithms})

    @classmethod
    def from_dict(cls, value: Any, what: str = "file meta") -> FileMeta:
        d = _obj(value, what)
        length = _int(d.get("length"), f"{what}.length")
        if length < 0:
            raise MetadataError(f"{what}.length: must not be negative")
        hashes = {}
        for alg, digest in _map(d.get("hashes"), f"{what}.hashes").items():
            raw = _b64(digest, f"{what}.hashes.{alg}")
            if alg in HASH_LENGTHS and len(raw) != HASH_LENGTHS[alg]:
                raise MetadataError(f"{what}.hashes.{alg}: invalid {alg} digest length {len(raw)}")
            hashes[alg] = raw
        return cls(length, hashes, d.get("custom"), _rest(d, ("length", "hashes", "custom"), what))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hashes": {alg: b64encode(h) for alg, h in self.hashes.items()},
            "length": self.length,
        }
        if self.custom is not None:
            out["custom"] = self.custom
        out.update(self.unrecognized)
        return out

    def sha256_hex(self) -> str | None:
        digest = self.hashes.get("sha256")
        return digest.hex() if digest is not None else None


@dataclass(slots=True)
class Role:
    """A root-level role entry: key IDs and threshold."""

    keyids: list[str]
    threshold: int
    unrecognized: dict[str, Any] = field(default_factory=dict)
    keyids_null: bool = False  # Go writes a nil slice as null; kept so a re-encoding is byte-exact

    @classmethod
    def from_dict(cls, value: Any, what: str) -> Role:
        d = _obj(value, what)
        raw = d.get("keyids")
        keyids = _str_list(raw, f"{what}.keyids") if raw is not None else []
        return cls(
            keyids,
            _int(d.get("threshold"), f"{what}.threshold"),
            _rest(d, ("keyids", "threshold"), what),
            raw is None,
        )

    def to_dict(self) -> dict[str, Any]:
        keyids = None if self.keyids_null and not self.keyids else list(self.keyids)
        return {"keyids": keyids, "threshold": self.threshold, **self.unrecognized}


@dataclass(slots=True)
class DelegatedRole:
    """A delegation: name, key IDs, threshold and path prefixes (``[""]`` = every path)."""

    name: str
    keyids: list[str]
    threshold: int
    paths: list[str] = field(default_factory=list)
    unrecognized: dict[str, Any] = field(default_factory=dict)
    keyids_null: bool = False  # see Role.keyids_null

    @classmethod
    def from_dict(cls, value: Any, what: str) -> DelegatedRole:
        d = _obj(value, what)
        paths, raw = d.get("paths"), d.get("keyids")
        return cls(
            name=_str(d.get("name"), f"{what}.name"),
            keyids=_str_list(raw, f"{what}.keyids") if raw is not None else [],
            threshold=_int(d.get("threshold"), f"{what}.threshold"),
            paths=_str_list(paths, f"{what}.paths") if paths is not None else [],
            unrecognized=_rest(d, ("name", "keyids", "threshold", "paths"), what),
            keyids_null=raw is None,
        )

    def to_dict(self) -> dict[str, Any]:
        keyids = None if self.keyids_null and not self.keyids else list(self.keyids)
        out: dict[str, Any] = {"keyids": keyids, "name": self.name, "threshold": self.threshold}
        if self.paths:  # Go: `paths,omitempty`
            out["paths"] = list(self.paths)
        out.update(self.unrecognized)
        return out

    def matches(self, target: str) -> bool:
        """Whether *target* is inside this role's paths (string prefixes, not globs)."""
        return any(target.startswith(p) for p in self.paths)


@dataclass(slots=True)
class Delegations:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    roles: list[DelegatedRole] = field(default_factory=list)
    unrecognized: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: Any, what: str = "delegations") -> Delegations:
        if value is None:
            return cls()
        d = _obj(value, what)
        keys = {
            _str(kid, f"{what}.keys"): _key(k, f"{what}.keys.{kid}")
            for kid, k in _map(_or(d.get("keys"), {}), f"{what}.keys").items()
        }
        raw_roles = _or(d.get("roles"), [])
        if not isinstance(raw_roles, list):
            raise MetadataError(f"{what}.roles: expected an array, got {_typename(raw_roles)}")
        dr = [DelegatedRole.from_dict(r, f"{what}.roles[{i}]") for i, r in enumerate(raw_roles)]
        return cls(keys, dr, _rest(d, ("keys", "roles"), what))

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": {kid: k.to_dict() for kid, k in self.keys.items()},
            "roles": [r.to_dict() for r in self.roles],
            **self.unrecognized,
        }

    def role(self, name: str) -> DelegatedRole | None:
        for r in self.roles:
            if r.name == name:
                return r
        return None


# -- role bodies ------------------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class Signed:
    """Fields every role body has."""

    TYPE: ClassVar[str] = ""
    ROLE: ClassVar[str] = ""
    _KNOWN: ClassVar[tuple[str, ...]] = ("_type", "expires", "version")

    version: int
    expires: GoTime
    unrecognized: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _common(cls, d: dict[str, Any]) -> dict[str, Any]:
        what = cls.ROLE
        typ = d.get("_type")
        if typ != cls.TYPE:
            raise MetadataError(f"{what} type metadata invalid: expected type {cls.TYPE}, not {typ}")
        version = _int(d.get("version"), f"{what}.version")
        if version < 1:
            raise MetadataError(f"{what} type metadata invalid: version cannot be less than one")
        try:
            expires = GoTime.parse(_str(d.get("expires"), f"{what}.expires"), what=f"{what}.expires")
        except EncodingError as e:
            raise MetadataError(str(e)) from e
        return {"version": version, "expires": expires, "unrecognized": _rest(d, cls._KNOWN, what)}

    def _common_dict(self) -> dict[str, Any]:
        return {"_type": self.TYPE, "expires": self.expires.format(), "version": self.version}

    @classmethod
    def from_dict(cls, value: Any) -> Signed:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def is_expired(self, now: GoTime) -> bool:
        return self.expires < now


@dataclass(slots=True, kw_only=True)
class Root(Signed):
    TYPE: ClassVar[str] = "Root"
    ROLE: ClassVar[str] = roles.ROOT
    _KNOWN: ClassVar[tuple[str, ...]] = (
        "_type",
        "expires",
        "version",
        "keys",
        "roles",
        "consistent_snapshot",
    )

    keys: dict[str, PublicKey]
    roles: dict[str, Role]
    consistent_snapshot: bool = False

    @classmethod
    def from_dict(cls, value: Any) -> Root:
        d = _obj(value, "root")
        common = cls._common(d)
        keys = {kid: _key(k, f"root.keys.{kid}") for kid, k in _map(d.get("keys"), "root.keys").items()}
        role_map = {
            name: Role.from_dict(r, f"root.roles.{name}")
            for name, r in _map(d.get("roles"), "root.roles").items()
        }
        cs = d.get("consistent_snapshot", False)
        if not isinstance(cs, bool):
            raise MetadataError("root.consistent_snapshot: expected a boolean")
        for base in roles.BASE_ROLES:
            r = role_map.get(base)
            if r is None:
                raise MetadataError(f"root type metadata invalid: missing {base} role specification")
            if r.threshold < 1:
                raise MetadataError(f"root type metadata invalid: {base} role has invalid threshold")
            for kid in r.keyids:
                if kid not in keys:
                    raise MetadataError(
                        f"root type metadata invalid: key {kid} of role {base} is not in keys"
                    )
        return cls(keys=keys, roles=role_map, consistent_snapshot=cs, **common)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._common_dict(),
            "consistent_snapshot": self.consistent_snapshot,
            "keys": {kid: k.to_dict() for kid, k in self.keys.items()},
            "roles": {name: r.to_dict() for name, r in self.roles.items()},
            **self.unrecognized,
        }

    def role_keys(self, role: str) -> tuple[dict[str, PublicKey], int]:
        """The keys (by ID) and threshold of base *role*."""
        r = self.roles[role]
        return {kid: self.keys[kid] for kid in r.keyids if kid in self.keys}, r.threshold


@dataclass(slots=True, kw_only=True)
class Targets(Signed):
    TYPE: ClassVar[str] = "Targets"
    ROLE: ClassVar[str] = roles.TARGETS
    _KNOWN: ClassVar[tuple[str, ...]] = ("_type", "expires", "version", "targets", "delegations")

    targets: dict[str, FileMeta] = field(default_factory=dict)
    delegations: Delegations = field(default_factory=Delegations)

    @classmethod
    def from_dict(cls, value: Any) -> Targets:
        d = _obj(value, "targets")
        common = cls._common(d)
        files = {
            name: FileMeta.from_dict(fm, f"targets.targets.{name}")
            for name, fm in _obj(_or(d.get("targets"), {}), "targets.targets").items()
        }
        return cls(targets=files, delegations=Delegations.from_dict(d.get("delegations")), **common)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._common_dict(),
            "delegations": self.delegations.to_dict(),
            "targets": {name: fm.to_dict() for name, fm in self.targets.items()},
            **self.unrecognized,
        }

    def check_delegations(self, role: str) -> None:
        """Notary's structure rules for the delegations a targets file of *role* may list."""
        for r in self.delegations.roles:
            if not roles.is_delegation(r.name) or roles.parent_role(r.name) != role:
                raise MetadataError(f"delegation {r.name!r} is not a valid direct child of {role}")
            if r.threshold < 1:
                raise MetadataError(f"delegation {r.name} has invalid threshold {r.threshold}")
            for kid in r.keyids:
                if kid not in self.delegations.keys:
                    raise MetadataError(f"delegation {r.name} uses key {kid} that is not in delegations.keys")


@dataclass(slots=True, kw_only=True)
class _MetaSigned(Signed):
    """Snapshot and timestamp: a ``meta`` map of role name -> file meta, some of which must carry sha256."""

    _KNOWN: ClassVar[tuple[str, ...]] = ("_type", "expires", "version", "meta")
    _REQUIRED: ClassVar[tuple[str, ...]] = ()

    meta: dict[str, FileMeta] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: Any) -> Self:
        what = cls.ROLE
        d = _obj(value, what)
        common = cls._common(d)
        meta = {
            name: FileMeta.from_dict(fm, f"{what}.meta.{name}")
            for name, fm in _map(d.get("meta"), f"{what}.meta").items()
        }
        for required in cls._REQUIRED:
            fm = meta.get(required)
            if fm is None or "sha256" not in fm.hashes:
                raise MetadataError(f"{what} type metadata invalid: missing sha256 of {required}")
        return cls(meta=meta, **common)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._common_dict(),
            "meta": {name: fm.to_dict() for name, fm in self.meta.items()},
            **self.unrecognized,
        }


@dataclass(slots=True, kw_only=True)
class Snapshot(_MetaSigned):
    TYPE: ClassVar[str] = "Snapshot"
    ROLE: ClassVar[str] = roles.SNAPSHOT
    _REQUIRED: ClassVar[tuple[str, ...]] = (roles.ROOT, roles.TARGETS)


@dataclass(slots=True, kw_only=True)
class Timestamp(_MetaSigned):
    TYPE: ClassVar[str] = "Timestamp"
    ROLE: ClassVar[str] = roles.TIMESTAMP
    _REQUIRED: ClassVar[tuple[str, ...]] = (roles.SNAPSHOT,)


_TYPES: dict[str, type[Signed]] = {c.TYPE: c for c in (Root, Targets, Snapshot, Timestamp)}


# -- envelope ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    method: str
    sig: bytes

    @classmethod
    def from_dict(cls, value: Any, what: str) -> Signature:
        d = _obj(value, what)
        _rest(d, ("keyid", "method", "sig"), what)
        return cls(
            keyid=_str(d.get("keyid"), f"{what}.keyid"),
            method=_str(d.get("method"), f"{what}.method").lower(),
            sig=_b64(d.get("sig"), f"{what}.sig"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "method": self.method, "sig": b64encode(self.sig)}


S = TypeVar("S", bound=Signed)


@dataclass(slots=True)
class Envelope(Generic[S]):
    """A metadata file: ``{"signed": <body>, "signatures": [...]}``.

    ``signed_bytes`` are the canonical bytes the signatures cover: for a parsed file, the canonical
    encoding of the ``signed`` value exactly as parsed (every field kept); for a newly signed body, the
    canonical encoding of ``signed.to_dict()``. ``data`` are the file bytes (as received, or as Go writes
    them for a file notar signs).
    """

    signed: S
    signatures: list[Signature]
    signed_bytes: bytes
    data: bytes

    @property
    def role_type(self) -> str:
        return self.signed.TYPE

    @classmethod
    def from_bytes(
        cls, data: bytes, *, expect: type[S] | None = None, role: str | None = None
    ) -> Envelope[S]:
        """Parse a metadata file. *expect* fixes the body type; *role* names a targets file's role."""
        what = role or (expect.ROLE if expect else "metadata")
        try:
            doc = loads_strict(data, what=what)
        except EncodingError as e:
            raise MetadataError(str(e)) from e
        doc = _obj(doc, what)
        _rest(doc, ("signed", "signatures"), what)
        signed_value = _obj(doc.get("signed"), f"{what}.signed")
        raw_sigs = doc.get("signatures")
        if raw_sigs is None:
            raw_sigs = []
        if not isinstance(raw_sigs, list):
            raise MetadataError(f"{what}.signatures: expected an array, got {_typename(raw_sigs)}")
        sigs = [Signature.from_dict(s, f"{what}.signatures[{i}]") for i, s in enumerate(raw_sigs)]
        typ = signed_value.get("_type")
        body_cls: type[Signed] | None = (
            expect if expect is not None else _TYPES.get(typ) if isinstance(typ, str) else None
        )
        if body_cls is None:
            raise MetadataError(f"{what}: unknown metadata type {typ!r}")
        try:
            body = body_cls.from_dict(signed_value)
            if isinstance(body, Targets):
                body.check_delegations(role or roles.TARGETS)
        except MetadataError as e:
            # the messages name the body type ("targets.version: ..."); make sure they name the file
            name, text = role or body_cls.ROLE, str(e)
            if name == body_cls.ROLE and text.startswith((f"{name}.", f"{name} ", f"{name}:")):
                raise
            raise MetadataError(f"{name}: {text}") from e
        try:
            signed_bytes = canonical_json(signed_value)
        except EncodingError as e:
            raise MetadataError(f"{what}: {e}") from e
        return cls(body, sigs, signed_bytes, bytes(data))  # type: ignore[arg-type]

    @classmethod
    def sign(cls, body: S, signers: Iterable[Signer | tuple[Signer, str]]) -> Envelope[S]:
        """Sign *body* with every signer and encode the file as Go does.

        A signer may be paired with the key ID to write in its signature (a root certificate's TUF ID,
        which differs from the private key's canonical ID).
        """
        signed_bytes = canonical_json(body.to_dict())
        sigs = []
        for item in signers:
            signer, keyid = item if isinstance(item, tuple) else (item, item.public_key.key_id)
            method, sig = signer.sign(signed_bytes)
            sigs.append(Signature(keyid, method, sig))
        return cls(body, sigs, signed_bytes, encode_file(signed_bytes, sigs))

    def with_signatures(self, signatures: list[Signature]) -> Envelope[S]:
        """The same body with another signature list (file bytes re-encoded)."""
        return Envelope(
            self.signed, list(signatures), self.signed_bytes, encode_file(self.signed_bytes, signatures)
        )

    def file_meta(self) -> FileMeta:
        """Length, sha256 and sha512 of the file bytes (what snapshot and timestamp record)."""
        return FileMeta.from_data(self.data)

    def go_reencoded(self) -> bytes:
        """The file as Go notary-server re-serialises it from its typed structs (§4.13 of the protocol notes).

        Unknown fields dropped, ``expires`` re-formatted; used to predict the hashes a Go server computes.
        """
        body = dict(self.signed.to_dict())
        for k in self.signed.unrecognized:
            body.pop(k, None)
        return encode_file(canonical_json(body), self.signatures)


def encode_file(signed_bytes: bytes, signatures: Iterable[Signature]) -> bytes:
    """``{"signed":...,"signatures":[...]}`` exactly as Go's ``json.Marshal`` writes it."""
    sig_text = b",".join(canonical_json(s.to_dict()) for s in signatures)
    return go_file_escape(b'{"signed":' + signed_bytes + b',"signatures":[' + sig_text + b"]}")
