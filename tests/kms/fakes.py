"""An in-process stand-in for a boto3 KMS client: signs with a local key, answers scripted errors, records
every call. For unit tests of the error mapping and retries; the lab KMS (a real server) proves the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

_HASHES = {"SHA_256": hashes.SHA256(), "SHA_384": hashes.SHA384(), "SHA_512": hashes.SHA512()}


def client_error(code: str, message: str = "", status: int = 400, action: str = "Sign") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        action,
    )


class FakeKms:
    """*key*: the private key "in KMS"; *errors*: per action, exceptions raised by the next calls in order."""

    def __init__(self, key: Any, *, usage: str = "SIGN_VERIFY", sign_with: Any = None) -> None:
        self.key = key
        self.usage = usage
        self.sign_with = sign_with or key  # another key: KMS "returns a signature by another key"
        self.errors: dict[str, list[BaseException]] = {"Sign": [], "GetPublicKey": []}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _next_error(self, action: str) -> None:
        if self.errors[action]:
            raise self.errors[action].pop(0)

    def get_public_key(self, **params: Any) -> Mapping[str, Any]:
        self.calls.append(("GetPublicKey", params))
        self._next_error("GetPublicKey")
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": params["KeyId"], "PublicKey": spki, "KeyUsage": self.usage}

    def sign(self, **params: Any) -> Mapping[str, Any]:
        self.calls.append(("Sign", params))
        self._next_error("Sign")
        assert params["MessageType"] == "DIGEST"
        algorithm = params["SigningAlgorithm"]
        digest = _HASHES[algorithm[-7:]]
        message = params["Message"]
        if isinstance(self.sign_with, ec.EllipticCurvePrivateKey):
            signature = self.sign_with.sign(message, ec.ECDSA(Prehashed(digest)))
        else:
            assert isinstance(self.sign_with, rsa.RSAPrivateKey)
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            signature = self.sign_with.sign(message, pss, Prehashed(digest))
        return {"KeyId": params["KeyId"], "Signature": signature, "SigningAlgorithm": algorithm}

    def count(self, action: str) -> int:
        return sum(1 for a, _ in self.calls if a == action)
