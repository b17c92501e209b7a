"""Token authentication compatible with the docker registry token specification.

A request carries ``Authorization: Bearer <JWT>``; the token is signed by a key whose certificate chains
to the configured root bundle (``x5c`` header), or whose libtrust key ID (``kid``) names a key of a
certificate in that bundle. Claims: ``iss`` = issuer, ``aud`` = service, ``exp``/``nbf`` (60 s leeway)
and ``access`` = ``[{"type":"repository","name":<gun>,"actions":[...]}]``. Without a valid token the
server answers 401 with a ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` challenge.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from notar.crypto import load_certificate_bundle
from notar.server.errors import ServerError

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

__all__ = ["Access", "TokenAuth", "libtrust_key_id"]

_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]


@dataclass(frozen=True, slots=True)
class Access:
    """One required right: ``repository:<gun>:push`` or ``registry:catalog:*``."""

    type: str
    name: str
    action: str

    def detail(self) -> dict[str, str]:
        return {"Type": self.type, "Class": "", "Name": self.name, "Action": self.action}


_MAX_CHAIN = 5
_CLOCK_SKEW = timedelta(seconds=60)


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_path(path: Sequence[x509.Certificate]) -> None:
    """What x509 path validation adds to the signatures: every certificate valid now, every issuer a CA
    (basic constraints, key usage, path length), and a leaf allowed to sign (key usage)."""
    now = datetime.now(UTC)
    for depth, cert in enumerate(path):
        if not cert.not_valid_before_utc - _CLOCK_SKEW <= now <= cert.not_valid_after_utc + _CLOCK_SKEW:
            raise ValueError(f"token certificate {cert.subject.rfc4514_string()} is expired or not yet valid")
        usage = _extension(cert, x509.KeyUsage)
        if depth == 0:
            if usage is not None and not usage.digital_signature:
                raise ValueError("the token's certificate may not sign (key usage)")
            continue
        constraints = _extension(cert, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise ValueError(f"token certificate issuer {cert.subject.rfc4514_string()} is not a CA")
        if constraints.path_length is not None and depth - 1 > constraints.path_length:
            raise ValueError(f"token certificate chain too long for {cert.subject.rfc4514_string()}")
        if usage is not None and not usage.key_cert_sign:
            raise ValueError(
                f"token certificate issuer {cert.subject.rfc4514_string()} may not sign certificates"
            )


def libtrust_key_id(public_key: Any) -> str:
    """docker/libtrust key ID: base32 of the first 240 bits of sha256(DER SPKI), in 12 groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


class TokenAuth:
    """Checks bearer tokens against required accesses."""

    def __init__(self, *, realm: str, service: str, issuer: str, root_bundle: Path) -> None:
        self.realm, self.service, self.issuer = realm, service, issuer
        self.roots = load_certificate_bundle(root_bundle.read_bytes())
        self._by_kid = {libtrust_key_id(c.public_key()): c for c in self.roots}

    def challenge(self, accesses: Sequence[Access], error: str | None) -> ServerError:
        scopes: dict[tuple[str, str], list[str]] = {}
        for a in accesses:
            scopes.setdefault((a.type, a.name), []).append(a.action)
        scope = " ".join(f"{t}:{n}:{','.join(actions)}" for (t, n), actions in scopes.items())
        header = f'Bearer realm="{self.realm}",service="{self.service}",scope="{scope}"'
        if error:
            header += f',error="{error}"'
        return ServerError(
            "UNAUTHORIZED", [a.detail() for a in accesses], headers={"WWW-Authenticate": header}
        )

    def _signing_key(self, token: str) -> Any:
        header = jwt.get_unverified_header(token)
        chain = header.get("x5c")
        if chain:
            if not isinstance(chain, list) or not 1 <= len(chain) <= _MAX_CHAIN:
                raise ValueError("token x5c must be a list of 1 to 5 certificates")
            certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in chain]
            for child, parent in itertools.pairwise(certs):
                child.verify_directly_issued_by(parent)
            path = list(certs)
            last = certs[-1]
            if not any(last == root for root in self.roots):
                issuer = next((r for r in self.roots if r.subject == last.issuer), None)
                if issuer is None:
                    raise ValueError("token certificate chain is not trusted")
                last.verify_directly_issued_by(issuer)
                path.append(issuer)
            _check_path(path)
            return certs[0].public_key()
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self._by_kid:
            return self._by_kid[kid].public_key()
        raise ValueError("token has no trusted signing key")

    def check(self, authorization: str | None, accesses: Sequence[Access]) -> None:
        """Raise a 401 challenge unless *authorization* grants every access in *accesses*."""
        if not authorization or not authorization.startswith("Bearer "):
            raise self.challenge(accesses, None)
        token = authorization[len("Bearer ") :].strip()
        try:
            claims = jwt.decode(
                token,
                key=self._signing_key(token),
                algorithms=_ALGORITHMS,
                audience=self.service,
                issuer=self.issuer,
                leeway=60,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, InvalidSignature, ValueError, TypeError, KeyError) as e:
            raise self.challenge(accesses, "invalid_token") from e
        granted: dict[tuple[str, str], set[str]] = {}
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and isinstance(entry.get("actions"), list):
                key = (str(entry.get("type")), str(entry.get("name")))
                granted.setdefault(key, set()).update(str(a) for a in entry["actions"])
        for a in accesses:
            have = granted.get((a.type, a.name), set())
            # "*" in the token grants everything; a required "*" needs "*" itself
            if not ("*" in have or a.action in have):
                raise self.challenge(accesses, "insufficient_scope")
