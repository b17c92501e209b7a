"""The signer's encrypted key and its passphrase in AWS Secrets Manager (boto3, standard credential chain).

Secret values are copied into ``bytearray`` buffers (:class:`SecretBytes`) that the caller wipes when it
is done. Limits, as far as Python allows: boto3 parses the HTTP response into immutable ``str``/``bytes``
objects (and ``decode_private_key`` needs the passphrase as a ``str``); those copies cannot be overwritten,
only dropped so the allocator can reuse their memory. Nothing here logs, prints or puts a secret value in
an exception message; botocore's own DEBUG logging (which would include response bodies) is switched off
around every call.

Endpoint overrides are boto3's: ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, else ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from notar.errors import NotarError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["SecretBytes", "SecretsError", "SecretsManager", "wipe"]

_BOTO_LOGGERS = ("botocore", "boto3", "urllib3")
MAX_SECRET_BYTES = 65536  # Secrets Manager's own limit


class SecretsError(NotarError):
    """A secret cannot be read or written. Never contains a secret value."""


def wipe(buf: bytearray | None) -> None:
    """Overwrite *buf* with zeros, in place."""
    if buf is not None:
        buf[:] = bytes(len(buf))


@dataclass
class SecretBytes:
    """A secret value in a wipeable buffer."""

    name: str
    value: bytearray

    def wipe(self) -> None:
        wipe(self.value)

    def __repr__(self) -> str:  # never show the value
        return f"SecretBytes({self.name!r}, <{len(self.value)} bytes>)"


@contextlib.contextmanager
def _quiet_boto() -> Iterator[None]:
    """botocore logs request and response bodies at DEBUG: never while secrets travel."""
    saved = []
    for name in _BOTO_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _aws_message(err: ClientError) -> tuple[str, str, int]:
    error: dict[str, Any] = dict(err.response.get("Error") or {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if message.lstrip().startswith("<"):  # some endpoints (and moto) answer JSON APIs with XML errors
        inner_code = re.search(r"<Code>([^<]{1,200})</Code>", message)
        inner_msg = re.search(r"<Message>([^<]{1,500})</Message>", message)
        code = inner_code.group(1) if inner_code else code
        message = inner_msg.group(1) if inner_msg else ""
    return code, message[:500], status


_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
}


class SecretsManager:
    """Secrets Manager in one region (credentials and endpoint from boto3's standard chain)."""

    def __init__(self, region: str, *, client: SecretsManagerClient | None = None) -> None:
        self.region = region
        try:
            self._client: SecretsManagerClient = client or boto3.session.Session().client(
                "secretsmanager",
                region_name=region,
                config=Config(
                    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30
                ),
            )
        except BotoCoreError as e:
            raise SecretsError(f"cannot set up the Secrets Manager client for {region}: {e}") from e

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    def _fail(self, action: str, name: str, e: Exception) -> SecretsError:
        where = f"secret {name!r} in {self.region} ({self.endpoint})"
        if isinstance(e, ClientError):
            code, message, status = _aws_message(e)
            detail = f": {code}" + (f": {message}" if message else "")
            if code == "ResourceNotFoundException" or (status == 404 and not code.startswith("Access")):
                return SecretsError(f"{where} does not exist{detail}")
            if code in _DENIED or status in (401, 403):
                return SecretsError(f"access denied to {action} {where}{detail}")
            if code == "DecryptionFailure":
                return SecretsError(f"cannot {action} {where}: the KMS key cannot decrypt it{detail}")
            return SecretsError(f"cannot {action} {where}{detail}")
        if isinstance(e, NoCredentialsError):
            return SecretsError(
                f"cannot {action} {where}: no AWS credentials found (standard credential chain)"
            )
        if isinstance(e, NoRegionError):
            return SecretsError(f"cannot {action} {where}: no region")
        return SecretsError(f"cannot {action} {where}: {type(e).__name__}: {e}")

    def get(self, name: str) -> SecretBytes:
        """The value of secret *name* (SecretString as UTF-8, or SecretBinary) in a wipeable buffer."""
        try:
            with _quiet_boto():
                response: Any = self._client.get_secret_value(SecretId=name)
        except (ClientError, BotoCoreError) as e:
            raise self._fail("read", name, e) from None
        try:
            if response.get("SecretBinary") is not None:
                value = bytearray(response["SecretBinary"])
            elif response.get("SecretString") is not None:
                value = bytearray(response["SecretString"].encode("utf-8"))
            else:
                raise SecretsError(f"secret {name!r} in {self.region} has no value")
        finally:
            response.clear()  # drop the immutable copies as early as we can
            del response
        if len(value) > MAX_SECRET_BYTES:
            wipe(value)
            raise SecretsError(f"secret {name!r} in {self.region} is larger than {MAX_SECRET_BYTES} bytes")
        return SecretBytes(name, value)

    def exists(self, name: str) -> str | None:
        """The ARN of secret *name*, or None if there is none."""
        try:
            with _quiet_boto():
                return str(self._client.describe_secret(SecretId=name)["ARN"])
        except ClientError as e:
            code, _, _ = _aws_message(e)
            if code == "ResourceNotFoundException":
                return None
            raise self._fail("look up", name, e) from None
        except BotoCoreError as e:
            raise self._fail("look up", name, e) from None

    def put(self, name: str, value: bytes | bytearray, *, description: str, kms_key_id: str | None) -> str:
        """Create secret *name*, or store a new version if it exists; returns its ARN."""
        try:
            with _quiet_boto():
                if self.exists(name) is None:
                    kwargs: dict[str, Any] = {"Name": name, "Description": description}
                    if kms_key_id:
                        kwargs["KmsKeyId"] = kms_key_id
                    return str(
                        self._client.create_secret(SecretString=value.decode("utf-8"), **kwargs)["ARN"]
                    )
                return str(
                    self._client.put_secret_value(SecretId=name, SecretString=value.decode("utf-8"))["ARN"]
                )
        except (ClientError, BotoCoreError) as e:
            raise self._fail("write", name, e) from None
