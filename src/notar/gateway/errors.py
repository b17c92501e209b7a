"""Errors of the gateway, in the docker ``{"errors":[{code,message,detail}]}`` envelope; one status table."""

from __future__ import annotations

import json
from typing import Any, Final

from notar.config import ConfigError
from notar.errors import NotarError

__all__ = ["STATUS", "ConfigError", "GatewayError"]

# docker distribution error codes -> HTTP status (the only place statuses are chosen)
STATUS: Final[dict[str, int]] = {
    "NAME_INVALID": 400,
    "TAG_INVALID": 400,
    "DIGEST_INVALID": 400,
    "MANIFEST_INVALID": 400,
    "SIZE_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_UNKNOWN": 404,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOO_LARGE": 413,
    "UPSTREAM_UNAVAILABLE": 502,  # the registry behind the gateway cannot be reached
    "UPSTREAM_TIMEOUT": 504,
    "TRUST_UNAVAILABLE": 503,  # the trust server cannot be reached: fail closed
    "UNKNOWN": 500,
}


class GatewayError(NotarError):
    """A refusal or failure answered to the client with a docker-style error body."""

    def __init__(self, code: str, message: str, *, detail: Any = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown gateway error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> bytes:
        # UPSTREAM_*/TRUST_* are ours; docker clients show the message whatever the code
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()
