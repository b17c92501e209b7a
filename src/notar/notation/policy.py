"""Notation trust policy documents (``trustpolicy.json``, version 1.0): parse, validate, select, match.

A document holds statements; each statement says, for some repositories (``registryScopes``), how
strictly to verify (``signatureVerification``), which trust stores anchor the signer
(``trustStores``: ``"ca:name"``, ``"signingAuthority:name"``, ``"tsa:name"``) and which signers are
acceptable (``trustedIdentities``: ``"*"`` or ``"x509.subject: C=US, ST=WA, O=Acme"``).

Verification runs five steps (:class:`Step`) and a *level* says what happens when one fails
(:class:`Action`): ``enforce`` (the signature fails), ``log`` (reported, not fatal) or ``skip`` (not run):

============  =========  ============  ==================  ======  ==========
level         integrity  authenticity  authenticTimestamp  expiry  revocation
============  =========  ============  ==================  ======  ==========
strict        enforce    enforce       enforce             enforce enforce
permissive    enforce    enforce       log                 log     log
audit         enforce    log           log                 log     log
skip          skip       skip          skip                skip    skip
============  =========  ============  ==================  ======  ==========

``override`` changes single steps of a level (not ``skip``): ``integrity`` cannot be overridden, and
only ``revocation`` may be set to ``skip`` (as in notation-go; the others take ``enforce`` or ``log``).

Validation is strict and every error is one line naming the statement: version ``"1.0"``; at least one
statement; names non-empty and unique; scopes are fully qualified repositories (``registry[:port]/path``,
lowercase path, no tag or digest) or ``"*"``, which must be the only scope of its statement and appear in
one statement at most; no scope in two statements; a ``skip`` statement has no trust stores or
identities, any other has both; store types are ``ca``/``signingAuthority``/``tsa`` and names
``[A-Za-z0-9_.-]+``; ``"*"`` is the only identity of its statement; ``x509.subject`` identities are
distinguished names with at least ``C``, ``ST`` and ``O``, no repeated attribute, no multi-valued RDN,
and none a subset of another in the same statement; unknown keys are refused (notation ignores them,
and a misspelt key would silently change the policy).

Selection (:meth:`TrustPolicyDocument.statement_for`): the statement listing the repository exactly,
else the one with ``"*"``, else :class:`NoApplicablePolicyError`.

Size: one section of the Notary Project specification (document, validation, scopes, levels and
overrides, identities), kept together so its rules read in the specification's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from notar.encoding import EncodingError, loads_strict
from notar.notation.errors import NoApplicablePolicyError, TrustPolicyError

__all__ = [
    "LEVEL_ACTIONS",
    "Action",
    "Level",
    "Step",
    "StoreRef",
    "StoreType",
    "TrustPolicyDocument",
    "TrustPolicyStatement",
    "TrustedIdentity",
    "VerifyTimestamp",
    "parse_distinguished_name",
    "parse_trust_policy",
    "subject_attributes",
]


class Step(StrEnum):
    """The verification steps, in the order they run (names as in the policy's ``override``)."""

    INTEGRITY = "integrity"
    AUTHENTICITY = "authenticity"
    EXPIRY = "expiry"
    AUTHENTIC_TIMESTAMP = "authenticTimestamp"
    REVOCATION = "revocation"


class Action(StrEnum):
    """What a failed step does: fail the signature, be reported only, or not run at all."""

    ENFORCE = "enforce"
    LOG = "log"
    SKIP = "skip"


class Level(StrEnum):
    """The four signature verification levels."""

    STRICT = "strict"
    PERMISSIVE = "permissive"
    AUDIT = "audit"
    SKIP = "skip"


class VerifyTimestamp(StrEnum):
    """When an RFC 3161 timestamp is checked: ``always``, or only once the signing chain has expired."""

    ALWAYS = "always"
    AFTER_CERT_EXPIRY = "afterCertExpiry"


class StoreType(StrEnum):
    """Trust store types: signing roots (``ca``), signing authorities, timestamping authorities."""

    CA = "ca"
    SIGNING_AUTHORITY = "signingAuthority"
    TSA = "tsa"


_E, _L, _S = Action.ENFORCE, Action.LOG, Action.SKIP
#: The action of each step at each level (before ``override``).
LEVEL_ACTIONS: Mapping[Level, Mapping[Step, Action]] = {
    Level.STRICT: dict.fromkeys(Step, _E),
    Level.PERMISSIVE: {
        Step.INTEGRITY: _E,
        Step.AUTHENTICITY: _E,
        Step.EXPIRY: _L,
        Step.AUTHENTIC_TIMESTAMP: _L,
        Step.REVOCATION: _L,
    },
    Level.AUDIT: {
        Step.INTEGRITY: _E,
        Step.AUTHENTICITY: _L,
        Step.EXPIRY: _L,
        Step.AUTHENTIC_TIMESTAMP: _L,
        Step.REVOCATION: _L,
    },
    Level.SKIP: dict.fromkeys(Step, _S),
}

_STORE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?\Z"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-*)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z")
_IDENTITY_PREFIX = "x509.subject"
_MANDATORY_RDNS = ("C", "ST", "O")
#: Short names of subject attributes, as Go's ``pkix.Name.String`` writes them (others: dotted OID).
_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.POSTAL_CODE: "POSTALCODE",
}
_ATTRIBUTE_TYPE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)\Z")


@dataclass(frozen=True)
class StoreRef:
    """A named trust store of one type (``"ca:acme"``)."""

    type: StoreType
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> StoreRef:
        """Parse ``"type:name"``; raise :class:`TrustPolicyError` for other types or bad names."""
        kind, sep, name = text.partition(":")
        if not sep:
            raise TrustPolicyError(f"trust store {text!r} is not of the form type:name")
        try:
            store_type = StoreType(kind)
        except ValueError:
            raise TrustPolicyError(
                f"trust store {text!r} has unsupported type {kind!r} (ca, signingAuthority or tsa)"
            ) from None
        if not _STORE_NAME.match(name):
            raise TrustPolicyError(
                f"trust store {text!r} has an invalid name (letters, digits, '_', '.', '-')"
            )
        return cls(store_type, name)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str, *, what: str) -> str:
    out = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        pair = value[i + 1 : i + 3]
        if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
            out.append(int(pair, 16))
            i += 3
        elif i + 1 < len(value):
            out += value[i + 1].encode("utf-8")
            i += 2
        else:
            raise TrustPolicyError(f"{what}: dangling escape at the end of a value")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise TrustPolicyError(f"{what}: escaped value is not UTF-8") from None


def parse_distinguished_name(text: str, *, what: str = "distinguished name") -> dict[str, str]:
    """Parse an RFC 4514 DN (``C=US, ST=WA, O=Acme``) into ``{TYPE: value}``.

    Types are upper-cased; values are unescaped (``\\,`` and ``\\2C`` forms) and trimmed. Multi-valued
    RDNs (``+``) and repeated types are refused, as notation does.
    """
    if not text.strip():
        raise TrustPolicyError(f"{what}: empty distinguished name")
    result: dict[str, str] = {}
    for rdn in _split_unescaped(text, ","):
        if len(_split_unescaped(rdn, "+")) > 1:
            raise TrustPolicyError(f"{what}: multi-valued RDN {rdn.strip()!r} is not supported")
        kind, sep, value = rdn.partition("=")
        kind = kind.strip()
        if not sep or not _ATTRIBUTE_TYPE.match(kind):
            raise TrustPolicyError(f"{what}: {rdn.strip()!r} is not TYPE=value")
        kind = kind.upper()
        if kind in result:
            raise TrustPolicyError(f"{what}: attribute {kind} appears more than once")
        stripped = value.strip()
        if stripped.endswith("\\") and value.endswith(" "):  # an escaped trailing space
            stripped += " "
        result[kind] = _unescape(stripped, what=what)
    return result


def subject_attributes(name: x509.Name) -> dict[str, str] | str:
    """A certificate subject as ``{TYPE: value}`` for identity matching, or why it cannot be matched.

    Types use Go's short names (``C``, ``ST``, ``L``, ``O``, ``OU``, ``CN``, ``SERIALNUMBER``,
    ``STREET``, ``POSTALCODE``), else the dotted OID. A subject with a multi-valued RDN or a repeated
    attribute type cannot be matched (notation refuses to parse it too).
    """
    out: dict[str, str] = {}
    for rdn in name.rdns:
        attrs = list(rdn)
        if len(attrs) != 1:
            return "the signing certificate subject has a multi-valued RDN"
        attr = attrs[0]
        kind = _SHORT_NAMES.get(attr.oid, attr.oid.dotted_string)
        if kind in out:
            return f"the signing certificate subject repeats attribute {kind}"
        value = attr.value
        out[kind] = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return out


@dataclass(frozen=True)
class TrustedIdentity:
    """``"*"`` (any signer) or an ``x509.subject`` DN that must be a subset of the leaf's subject."""

    text: str
    attributes: Mapping[str, str] | None  # None for "*"

    @property
    def is_wildcard(self) -> bool:
        """True for ``"*"``."""
        return self.attributes is None

    @classmethod
    def parse(cls, text: str, *, what: str) -> TrustedIdentity:
        """Parse ``"*"`` or ``"x509.subject: <DN>"`` (C, ST and O are mandatory)."""
        if text == "*":
            return cls(text, None)
        prefix, sep, dn = text.partition(":")
        if not sep or prefix.strip() != _IDENTITY_PREFIX:
            raise TrustPolicyError(
                f"{what}: trusted identity {text!r} must be '*' or start with '{_IDENTITY_PREFIX}:'"
            )
        attrs = parse_distinguished_name(dn, what=f"{what}: trusted identity {text!r}")
        missing = [a for a in _MANDATORY_RDNS if a not in attrs]
        if missing:
            raise TrustPolicyError(
                f"{what}: trusted identity {text!r} lacks {', '.join(missing)} (C, ST and O are required)"
            )
        return cls(text, attrs)

    def matches(self, subject: x509.Name) -> bool:
        """Whether a leaf certificate with *subject* is this identity."""
        if self.attributes is None:
            return True
        leaf = subject_attributes(subject)
        if isinstance(leaf, str):
            return False
        return all(leaf.get(k) == v for k, v in self.attributes.items())


@dataclass(frozen=True)
class TrustPolicyStatement:
    """One validated statement; :attr:`actions` already has the level and its override applied."""

    name: str
    registry_scopes: tuple[str, ...]
    level: Level
    actions: Mapping[Step, Action]
    verify_timestamp: VerifyTimestamp
    trust_stores: tuple[StoreRef, ...]
    trusted_identities: tuple[TrustedIdentity, ...]

    def action(self, step: Step) -> Action:
        """What a failure of *step* does under this statement."""
        return self.actions[step]

    def stores_of(self, store_type: StoreType) -> tuple[StoreRef, ...]:
        """The statement's trust stores of one type, in policy order."""
        return tuple(ref for ref in self.trust_stores if ref.type is store_type)


@dataclass(frozen=True)
class TrustPolicyDocument:
    """A validated trust policy document (version 1.0)."""

    version: str
    statements: tuple[TrustPolicyStatement, ...]

    def statement_for(self, repository: str) -> TrustPolicyStatement:
        """The statement for a fully qualified repository (``registry/path``): exact scope, else ``"*"``."""
        wildcard = None
        for statement in self.statements:
            if repository in statement.registry_scopes:
                return statement
            if "*" in statement.registry_scopes:
                wildcard = statement
        if wildcard is None:
            raise NoApplicablePolicyError(f"no trust policy statement applies to repository {repository!r}")
        return wildcard


def _check_known(obj: Mapping[str, Any], known: set[str], *, what: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise TrustPolicyError(f"{what}: unknown key(s) {', '.join(map(repr, unknown))}")


def _string_list(value: Any, *, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TrustPolicyError(f"{what} must be a list of strings")
    return list(value)


def _check_scope(scope: str, *, what: str) -> None:
    domain, sep, path = scope.partition("/")
    if not sep or not _DOMAIN.match(domain) or not _REPOSITORY.match(path):
        raise TrustPolicyError(
            f"{what}: registry scope {scope!r} is not a fully qualified repository"
            " (registry/path, lowercase, no scheme, tag or digest) or '*'"
        )


def _actions(level: Level, override: Any, *, what: str) -> dict[Step, Action]:
    actions = dict(LEVEL_ACTIONS[level])
    if override is None:
        return actions
    if not isinstance(override, dict):
        raise TrustPolicyError(f"{what}: override must be an object")
    if override and level is Level.SKIP:
        raise TrustPolicyError(f"{what}: level 'skip' cannot be overridden")
    for key, value in override.items():
        try:
            step = Step(key)
        except ValueError:
            raise TrustPolicyError(
                f"{what}: override of unknown step {key!r} (authenticity, authenticTimestamp, expiry, revocation)"
            ) from None
        try:
            action = Action(value)
        except ValueError:
            raise TrustPolicyError(
                f"{what}: override action {value!r} for {key} is not enforce, log or skip"
            ) from None
        if step is Step.INTEGRITY:
            raise TrustPolicyError(f"{what}: integrity cannot be overridden")
        if action is Action.SKIP and step is not Step.REVOCATION:
            raise TrustPolicyError(f"{what}: {key} cannot be skipped (only revocation can)")
        actions[step] = action
    return actions


def _statement(raw: Any, index: int) -> TrustPolicyStatement:
    if not isinstance(raw, dict):
        raise TrustPolicyError(f"trust policy statement {index} is not an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TrustPolicyError(f"trust policy statement {index} has no name")
    what = f"trust policy statement {name!r}"
    _check_known(
        raw,
        {"name", "registryScopes", "signatureVerification", "trustStores", "trustedIdentities"},
        what=what,
    )

    scopes = _string_list(raw.get("registryScopes"), what=f"{what}: registryScopes")
    if not scopes:
        raise TrustPolicyError(f"{what}: registryScopes is empty")
    if "*" in scopes and len(scopes) > 1:
        raise TrustPolicyError(f"{what}: the wildcard scope '*' cannot be combined with other scopes")
    if len(set(scopes)) != len(scopes):
        raise TrustPolicyError(f"{what}: registryScopes lists a scope twice")
    for scope in scopes:
        if scope != "*":
            _check_scope(scope, what=what)

    verification = raw.get("signatureVerification")
    if not isinstance(verification, dict):
        raise TrustPolicyError(f"{what}: signatureVerification is missing or not an object")
    _check_known(
        verification, {"level", "override", "verifyTimestamp"}, what=f"{what}: signatureVerification"
    )
    level_value = verification.get("level")
    if level_value is None:
        raise TrustPolicyError(f"{what}: signatureVerification.level is missing")
    try:
        level = Level(level_value)
    except ValueError:
        raise TrustPolicyError(
            f"{what}: invalid signature verification level {level_value!r} (strict, permissive, audit or skip)"
        ) from None
    actions = _actions(level, verification.get("override"), what=what)
    stamp_value = verification.get("verifyTimestamp", VerifyTimestamp.ALWAYS.value)
    try:
        verify_timestamp = VerifyTimestamp(stamp_value)
    except ValueError:
        raise TrustPolicyError(
            f"{what}: verifyTimestamp {stamp_value!r} is not 'always' or 'afterCertExpiry'"
        ) from None

    stores = _string_list(raw.get("trustStores"), what=f"{what}: trustStores")
    identities = _string_list(raw.get("trustedIdentities"), what=f"{what}: trustedIdentities")
    if level is Level.SKIP:
        if stores or identities:
            raise TrustPolicyError(
                f"{what}: level 'skip' takes no trustStores or trustedIdentities; remove them"
            )
        return TrustPolicyStatement(name, tuple(scopes), level, actions, verify_timestamp, (), ())
    if not stores:
        raise TrustPolicyError(f"{what}: no trustStores")
    if not identities:
        raise TrustPolicyError(f"{what}: no trustedIdentities")
    refs = []
    for text in stores:
        try:
            refs.append(StoreRef.parse(text))
        except TrustPolicyError as e:
            raise TrustPolicyError(f"{what}: {e}") from None
    if len(set(refs)) != len(refs):
        raise TrustPolicyError(f"{what}: trustStores lists a store twice")
    if "*" in identities and len(identities) > 1:
        raise TrustPolicyError(f"{what}: the wildcard identity '*' cannot be combined with other identities")
    parsed = [TrustedIdentity.parse(text, what=what) for text in identities]
    for a in parsed:
        for b in parsed:
            if (
                a is not b
                and a.attributes is not None
                and b.attributes is not None
                and all(b.attributes.get(k) == v for k, v in a.attributes.items())
            ):
                raise TrustPolicyError(f"{what}: trusted identities {a.text!r} and {b.text!r} overlap")
    return TrustPolicyStatement(
        name, tuple(scopes), level, actions, verify_timestamp, tuple(refs), tuple(parsed)
    )


def parse_trust_policy(data: bytes | str, *, source: str = "trust policy") -> TrustPolicyDocument:
    """Parse and validate a trust policy document; raise :class:`TrustPolicyError` (one line).

    *source* (a file name) prefixes JSON errors.
    """
    try:
        raw = loads_strict(data, what=source)
    except EncodingError as e:
        raise TrustPolicyError(str(e)) from e
    if not isinstance(raw, dict):
        raise TrustPolicyError(f"{source}: expected a JSON object")
    _check_known(raw, {"version", "trustPolicies"}, what=source)
    version = raw.get("version")
    if version != "1.0":
        raise TrustPolicyError(f"{source}: unsupported trust policy version {version!r} (expected '1.0')")
    policies = raw.get("trustPolicies")
    if not isinstance(policies, list) or not policies:
        raise TrustPolicyError(f"{source}: trustPolicies must be a non-empty list of statements")
    statements = [_statement(p, i) for i, p in enumerate(policies)]
    names: set[str] = set()
    scopes: dict[str, str] = {}
    for st in statements:
        if st.name in names:
            raise TrustPolicyError(f"{source}: more than one statement is named {st.name!r}")
        names.add(st.name)
        for scope in st.registry_scopes:
            if scope in scopes:
                if scope == "*":
                    raise TrustPolicyError(
                        f"{source}: the wildcard scope '*' is in statements {scopes[scope]!r} and {st.name!r}; only one may have it"
                    )
                raise TrustPolicyError(
                    f"{source}: registry scope {scope!r} is in statements {scopes[scope]!r} and {st.name!r}"
                )
            scopes[scope] = st.name
    return TrustPolicyDocument(version, tuple(statements))
