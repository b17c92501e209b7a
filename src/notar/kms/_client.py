"""Calling AWS KMS: one boto3 client per (endpoint, region), bounded retries, one-line errors.

boto3 is imported only when a KMS key is first used (commands that never touch KMS do not pay for it).
Credentials and region come from boto3's standard chain (environment, profile, web identity, instance
role); the endpoint from the key URI, else ``AWS_ENDPOINT_URL_KMS`` / ``AWS_ENDPOINT_URL`` (boto3 reads
them itself). botocore's own retries are off: :func:`call` retries throttling (``ThrottlingException``,
``LimitExceededException``), KMS-side failures (``KMSInternalException``, ``DependencyTimeoutException``,
HTTP 5xx) and connection errors/timeouts a bounded number of times with jittered exponential backoff,
then raises a :class:`~notar.kms.errors.KmsError` that names the action, the key and the cause. Denials,
disabled or deleted keys and wrong key usage are never retried.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from notar.kms._uri import KeyURI
from notar.kms.errors import (
    KmsAccessDeniedError,
    KmsError,
    KmsKeyStateError,
    KmsKeyUsageError,
    KmsThrottledError,
    KmsUnavailableError,
)

__all__ = ["KmsClient", "RetryPolicy", "call", "client_for"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0

_THROTTLED = frozenset(
    {"ThrottlingException", "LimitExceededException", "Throttling", "TooManyRequestsException"}
)
_SERVER_SIDE = frozenset(
    {"KMSInternalException", "DependencyTimeoutException", "InternalFailure", "ServiceUnavailable"}
)
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
    }
)


class KmsClient(Protocol):
    """The two KMS operations notar uses (a boto3 KMS client is one; tests may wrap or fake it)."""

    def sign(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_public_key(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often a retryable KMS failure is tried again: *attempts* in all, backoff base/cap in seconds."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to ``min(cap, base * 2**(attempt-1))`` after failed *attempt*."""
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


_clients: dict[tuple[str | None, str | None], KmsClient] = {}
_clients_lock = threading.Lock()


def client_for(uri: KeyURI, *, region: str | None = None) -> KmsClient:
    """The (cached, thread-safe) boto3 KMS client for *uri*'s endpoint and region: the key ARN's region,
    else *region*, else boto3's (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile)."""
    region = uri.region or region
    key = (uri.endpoint_url, region)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, NoRegionError

        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
        try:
            client: KmsClient = boto3.session.Session().client(
                "kms", region_name=region, endpoint_url=uri.endpoint_url, config=config
            )
        except NoRegionError:
            raise KmsError(
                f"no AWS region for KMS key {uri}: set AWS_REGION (or AWS_DEFAULT_REGION, a profile's region) "
                "or name the key by its ARN"
            ) from None
        except BotoCoreError as e:
            raise KmsError(f"cannot set up the AWS KMS client for {uri}: {e}") from None
        _clients[key] = client
        return client


def _error_fields(response: Mapping[str, Any]) -> tuple[str, str, int]:
    error: Mapping[str, Any] = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or error.get("message") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    if message.lstrip().startswith("<"):  # some endpoints (moto's IAM checks) answer JSON APIs with XML
        inner_code = re.search(r"<Code>([^<]{1,200})</Code>", message)
        inner_msg = re.search(r"<Message>([^<]{1,500})</Message>", message)
        code = inner_code.group(1) if inner_code else code
        message = inner_msg.group(1) if inner_msg else ""
    return code, " ".join(message.split())[:300], status


def _client_error(action: str, uri: KeyURI, code: str, message: str, status: int) -> KmsError:
    """The one-line error for a KMS answer that is not worth retrying."""
    said = f": {message}" if message else ""
    if code in _DENIED:
        if code in ("AccessDeniedException", "AccessDenied"):
            return KmsAccessDeniedError(
                f"AWS KMS denied kms:{action} on key {uri} ({code}{said}); the caller's IAM policy and the "
                f"key policy must allow kms:{action} on this key"
            )
        return KmsAccessDeniedError(
            f"AWS rejected the credentials for kms:{action} on key {uri} ({code}{said}); check the AWS "
            "credentials (environment, profile, role)"
        )
    if code == "DisabledException":
        return KmsKeyStateError(
            f"KMS key {uri} is disabled ({code}); enable it (aws kms enable-key) or use another key"
        )
    if code == "KMSInvalidStateException":
        hint = (
            "; cancel the deletion (aws kms cancel-key-deletion) and enable the key to use it again"
            if "deletion" in message.lower()
            else ""
        )
        return KmsKeyStateError(f"KMS key {uri} cannot be used in its current state ({code}{said}){hint}")
    if code == "NotFoundException":
        return KmsKeyStateError(f"KMS key {uri} does not exist in this account and region ({code}{said})")
    if code == "InvalidKeyUsageException":
        return KmsKeyUsageError(
            f"KMS key {uri} cannot sign ({code}{said}): its key usage must be SIGN_VERIFY, not ENCRYPT_DECRYPT"
        )
    if code == "UnsupportedOperationException":
        return KmsKeyUsageError(
            f"KMS key {uri} cannot be used for kms:{action} ({code}{said}): signing needs an asymmetric "
            "SIGN_VERIFY key (ECC_NIST_P256 for Notary v1)"
        )
    status_text = f" (HTTP {status})" if status else ""
    return KmsError(f"AWS KMS {action} on key {uri} failed: {code or 'error'}{status_text}{said}")


def call(
    client: KmsClient,
    action: str,
    uri: KeyURI,
    *,
    retry: RetryPolicy | None = None,
    **params: Any,
) -> Mapping[str, Any]:
    """Call KMS *action* (``Sign`` or ``GetPublicKey``) with *params*; retry what is transient.

    Every failure becomes a one-line :class:`KmsError` naming the action and the key.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    policy = retry or RetryPolicy()
    method = getattr(client, "sign" if action == "Sign" else "get_public_key")
    last = ""
    throttled = False
    for attempt in range(1, max(1, policy.attempts) + 1):
        try:
            return method(**params)  # type: ignore[no-any-return]
        except ClientError as e:
            code, message, status = _error_fields(e.response)
            if code in _THROTTLED or status == 429:
                throttled, last = True, f"{code or 'HTTP 429'}{': ' + message if message else ''}"
            elif code in _SERVER_SIDE or status >= 500:
                throttled, last = (
                    False,
                    f"{code or 'error'} (HTTP {status}){': ' + message if message else ''}",
                )
            else:
                raise _client_error(action, uri, code, message, status) from None
        except NoCredentialsError:
            raise KmsAccessDeniedError(
                f"no AWS credentials for kms:{action} on key {uri}: boto3's standard chain (AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance role) found none"
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as e:
            throttled, last = False, str(e)
        except BotoCoreError as e:
            raise KmsError(f"AWS KMS {action} on key {uri} failed: {e}") from None
        if attempt < policy.attempts:
            policy.sleep(policy.delay(attempt))
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or uri.endpoint_url or "AWS KMS"
    if throttled:
        raise KmsThrottledError(
            f"AWS KMS throttled kms:{action} on key {uri} {policy.attempts} times in a row ({last}); "
            "try again later or raise the account's KMS request quota"
        )
    raise KmsUnavailableError(
        f"cannot reach AWS KMS at {endpoint} for kms:{action} on key {uri} after {policy.attempts} attempts ({last})"
    )
