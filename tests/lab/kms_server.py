"""moto's server with an AWS-faithful KMS ``Sign`` and ``GetPublicKey`` (``python -m tests.lab.kms_server``).

moto 5.2.5 hashes the message again when ``MessageType=DIGEST`` (its signature verifies over
SHA-256(digest)), signs RSASSA-PSS with the maximum salt length (KMS uses the hash length), lets disabled
and pending-deletion keys sign, and answers a wrong key usage with ``ValidationException``. This script
replaces the two handlers notar uses with ones that follow the AWS documentation:

* ``Sign``: ``MessageType=DIGEST`` signs the given digest as is (``Prehashed``; its length must be the
  algorithm's hash length), ``RAW`` hashes a message of at most 4,096 bytes; ECDSA answers DER; RSASSA-PSS
  uses MGF1 with the same hash and a salt as long as the hash; RSASSA-PKCS1-v1_5 as usual;
* both: ``DisabledException`` for a disabled key, ``KMSInvalidStateException`` for a key pending deletion,
  ``UnsupportedOperationException`` for a symmetric/HMAC key (``GetPublicKey``),
  ``InvalidKeyUsageException`` for an ``ENCRYPT_DECRYPT`` key (``Sign``); ``GetPublicKey`` also answers
  ``KeySpec`` (moto only answers the deprecated ``CustomerMasterKeySpec``).

moto's IAM enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``) runs before these handlers, as for any moto call.

Test knobs (environment variables naming files in the lab's work directory):

* ``NOTAR_LAB_KMS_LOG``: one JSON line per ``Sign``/``GetPublicKey`` call (action, key, message type,
  algorithm, message length), so tests count KMS calls made by other processes;
* ``NOTAR_LAB_KMS_FAULTS``: a JSON object ``{"Sign": ["ThrottlingException", ...], ...}``; each call of the
  action consumes the first entry and answers that error instead (``ThrottlingException`` 400,
  ``KMSInternalException`` 500, ``AccessDeniedException`` 400), or goes through (``ok``);
* ``NOTAR_LAB_KMS_KEYS``: a directory where every created asymmetric key's private key is written (PKCS#8
  DER, ``<key id>.der``), so tests can prove that no copy of it ends up anywhere on the host.

Usage: PYTHONPATH=<repository> python -m tests.lab.kms_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.core.exceptions import JsonRESTError
from moto.kms import models, responses

_lock = threading.Lock()
_HASHES = {"SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512}
_FAULT_STATUS = {"KMSInternalException": 500, "DependencyTimeoutException": 503}


class _Error(JsonRESTError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.code = status


def _log(action: str, **fields: Any) -> None:
    path = os.environ.get("NOTAR_LAB_KMS_LOG")
    if not path:
        return
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"action": action, **fields}) + "\n")


def _fault(action: str) -> None:
    path = os.environ.get("NOTAR_LAB_KMS_FAULTS")
    if not path:
        return
    with _lock:
        try:
            plan = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
        except FileNotFoundError:
            return
        queue = plan.get(action) or []
        if not queue:
            return
        code = queue.pop(0)
        Path(path).write_text(json.dumps(plan), encoding="utf-8")
    if code == "ok":  # this call goes through; a later one fails
        return
    raise _Error(code, f"lab fault injected for {action}", _FAULT_STATUS.get(code, 400))


def _usable(key: models.Key) -> None:
    if key.key_state == "Disabled":
        raise _Error("DisabledException", f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise _Error("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def _key(self: responses.KmsResponse, key_id: str) -> models.Key:
    self._validate_key_id(key_id)
    key = self.kms_backend.describe_key(key_id)
    _usable(key)
    return key


def _hash_of(algorithm: str) -> hashes.HashAlgorithm:
    for suffix, cls in _HASHES.items():
        if algorithm.endswith(suffix):
            return cls()
    raise _Error("ValidationException", f"unsupported SigningAlgorithm {algorithm}")


def sign(self: responses.KmsResponse) -> str:
    key_id = self._get_param("KeyId")
    message = self._get_param("Message") or b""
    message_type = self._get_param("MessageType") or "RAW"
    algorithm = self._get_param("SigningAlgorithm") or ""
    _log("Sign", key=key_id, message_type=message_type, algorithm=algorithm, length=len(message))
    _fault("Sign")
    key = _key(self, key_id)
    if key.key_usage != "SIGN_VERIFY":
        raise _Error(
            "InvalidKeyUsageException", f"{key.arn} key usage is {key.key_usage} which is not valid for Sign."
        )
    if algorithm not in key.signing_algorithms:
        raise _Error(
            "InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )
    digest = _hash_of(algorithm)
    if message_type == "DIGEST":
        if len(message) != digest.digest_size:
            raise _Error("ValidationException", "Digest is invalid length for algorithm " + algorithm + ".")
        chosen: hashes.HashAlgorithm | Prehashed = Prehashed(digest)
    elif message_type == "RAW":
        if not 1 <= len(message) <= 4096:
            raise _Error("ValidationException", "Message must be 1 to 4096 bytes for RAW.")
        chosen = digest
    else:
        raise _Error("ValidationException", f"unknown MessageType {message_type}")
    private = key.private_key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        signature = private.sign(message, ec.ECDSA(chosen))
    elif isinstance(private, rsa.RSAPrivateKey):
        if "PSS" in algorithm:
            pad: padding.AsymmetricPadding = padding.PSS(
                mgf=padding.MGF1(digest), salt_length=digest.digest_size
            )
        else:
            pad = padding.PKCS1v15()
        signature = private.sign(message, pad, chosen)
    else:
        raise _Error("UnsupportedOperationException", f"{key.arn} cannot sign")
    return json.dumps(
        {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm}
    )


def get_public_key(self: responses.KmsResponse) -> str:
    key_id = self._get_param("KeyId")
    _log("GetPublicKey", key=key_id)
    _fault("GetPublicKey")
    key = _key(self, key_id)
    if key.key_spec == "SYMMETRIC_DEFAULT" or key.key_spec.startswith("HMAC"):
        raise _Error(
            "UnsupportedOperationException", f"{key.arn} key usage is not supported for GetPublicKey."
        )
    public = key.private_key.public_key()
    return json.dumps(
        {
            "KeyId": key.arn,
            "KeySpec": key.key_spec,
            "CustomerMasterKeySpec": key.key_spec,
            "KeyUsage": key.key_usage,
            "PublicKey": base64.b64encode(public).decode(),
            "SigningAlgorithms": key.signing_algorithms if key.key_usage == "SIGN_VERIFY" else [],
            "EncryptionAlgorithms": key.encryption_algorithms if key.key_usage == "ENCRYPT_DECRYPT" else [],
        }
    )


_create_key = models.KmsBackend.create_key


def create_key(self: models.KmsBackend, *args: Any, **kwargs: Any) -> models.Key:
    key = _create_key(self, *args, **kwargs)
    where = os.environ.get("NOTAR_LAB_KMS_KEYS")
    private = getattr(getattr(key, "private_key", None), "private_key", None)
    if where and isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        Path(where, f"{key.id}.der").write_bytes(der)
    return key


responses.KmsResponse.sign = sign  # type: ignore[method-assign]
responses.KmsResponse.get_public_key = get_public_key  # type: ignore[method-assign]
models.KmsBackend.create_key = create_key  # type: ignore[method-assign]

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
