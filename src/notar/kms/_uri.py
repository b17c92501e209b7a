"""Key references in cosign's form: ``awskms://[ENDPOINT]/{key id | key ARN | alias/NAME | alias ARN}``.

Examples::

    awskms:///1234abcd-12ab-34cd-56ef-1234567890ab
    awskms:///arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
    awskms:///alias/release-signer
    awskms:///arn:aws:kms:us-east-2:111122223333:alias/release-signer
    awskms://kms.eu-west-1.amazonaws.com/alias/release-signer      (an explicit endpoint)

The endpoint, when given, is reached over ``https://``; a loopback endpoint (``127.0.0.1``, ``[::1]``,
``localhost``) over plain ``http://``, as notar reaches loopback registries (a local KMS emulator).
Without one, boto3's own rules apply: ``AWS_ENDPOINT_URL_KMS``, else ``AWS_ENDPOINT_URL``, else the
regional AWS endpoint. The region is the ARN's when the key is named by an ARN, else boto3's (``AWS_REGION``,
``AWS_DEFAULT_REGION``, the profile).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from notar.kms.errors import KeyURIError

__all__ = ["SCHEME", "KeyURI", "is_key_uri", "parse_key_uri"]

SCHEME: Final = "awskms://"

_UUID = r"(?:mrk-[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_ARN = r"arn:(?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:(?P<region>[a-z0-9-]{1,40}):\d{12}:"
_FORMS: Final = (
    ("key ID", re.compile(rf"{_UUID}\Z")),
    ("alias", re.compile(rf"{_ALIAS}\Z")),
    ("key ARN", re.compile(rf"{_ARN}key/{_UUID}\Z")),
    ("alias ARN", re.compile(rf"{_ARN}{_ALIAS}\Z")),
)
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::\d{1,5})?\Z")
_USAGE = "expected awskms://[ENDPOINT]/{key ID | key ARN | alias/NAME | alias ARN}, e.g. awskms:///alias/release-signer"


def is_key_uri(text: str) -> bool:
    """True when *text* names a KMS key (starts with ``awskms://``), valid or not."""
    return text.lower().startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class KeyURI:
    """A parsed key reference: the endpoint (``host[:port]`` or empty), the key, the form of the key."""

    endpoint: str
    key: str
    form: str  # "key ID", "alias", "key ARN" or "alias ARN"

    def __str__(self) -> str:
        return f"{SCHEME}{self.endpoint}/{self.key}"

    @property
    def region(self) -> str | None:
        """The region named by an ARN; ``None`` for key IDs and aliases (boto3's region applies)."""
        for _form, pattern in _FORMS[2:]:
            m = pattern.match(self.key)
            if m:
                return m.group("region")
        return None

    @property
    def endpoint_url(self) -> str | None:
        """``https://ENDPOINT`` (``http://`` for loopback), or ``None``: boto3 picks the endpoint."""
        if not self.endpoint:
            return None
        host = self.endpoint.rsplit(":", 1)[0] if not self.endpoint.endswith("]") else self.endpoint
        host = host.strip("[]")
        loopback = host == "localhost"
        if not loopback:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
        return f"{'http' if loopback else 'https'}://{self.endpoint}"


def parse_key_uri(text: str) -> KeyURI:
    """Parse a key reference; :class:`KeyURIError` (one line) when it is not one."""
    if not isinstance(text, str) or not is_key_uri(text):
        raise KeyURIError(f"{str(text)[:200]!r} is not a KMS key reference: {_USAGE}")
    rest = text[len(SCHEME) :]
    endpoint, slash, key = rest.partition("/")
    if not slash or not key:
        raise KeyURIError(f"{text[:200]!r} names no key: {_USAGE}")
    if endpoint and not _HOST.match(endpoint):
        raise KeyURIError(f"{text[:200]!r}: {endpoint[:100]!r} is not a HOST[:PORT] endpoint")
    for form, pattern in _FORMS:
        if pattern.match(key):
            return KeyURI(endpoint, key, form)
    raise KeyURIError(f"{text[:200]!r}: {key[:120]!r} is not a key ID, key ARN, alias/NAME or alias ARN")
