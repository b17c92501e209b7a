"""The errors the trust server answers with: notary's codes, statuses and messages, in one table.

Bodies use the docker/distribution envelope ``{"errors":[{"code","message","detail"}]}`` followed by a
newline, as Go's ``json.Encoder`` writes it; ``detail`` is left out when there is none. Go clients decode
an ``INVALID_UPDATE`` detail back into a typed validation error, so its shape is kept exactly.
"""

from __future__ import annotations

import json
from typing import Any

from notar.errors import NotarError

__all__ = ["ERROR_CODES", "ServerError", "error_body", "validation_detail"]

#: code -> (HTTP status, message), as in notary's server/errors/errors.go
ERROR_CODES: dict[str, tuple[int, str]] = {
    "NO_STORAGE": (500, "The server is misconfigured and has no storage."),
    "NO_FILENAME": (400, "No file/role name provided."),
    "INVALID_ROLE": (400, "The role you are attempting to operate on is invalid."),
    "MALFORMED_JSON": (400, "JSON sent by the client could not be parsed by the server"),
    "UPDATING": (500, "An error has occurred while updating the TUF repository."),
    "VERSION": (400, "A newer version of metadata is already available."),
    "METADATA_NOT_FOUND": (404, "You have requested metadata that does not exist."),
    "INVALID_UPDATE": (400, "Update sent by the client is invalid."),
    "MALFORMED_UPLOAD": (400, "The body of your request is malformed."),
    "GENERIC_NOT_FOUND": (404, "You have requested a resource that does not exist."),
    "NO_CRYPTOSERVICE": (500, "The server does not have a signing service configured."),
    "NO_KEYALGORITHM": (500, "The server does not have a key algorithm configured."),
    "INVALID_GUN": (400, "The server does not support actions on images of this name."),
    "INVALID_PARAMETERS": (400, "The parameters provided are not valid."),
    "UNKNOWN": (500, "unknown error"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "TOO_LARGE": (413, "The upload is larger than this server accepts."),
    "UNAVAILABLE": (503, "The service is unavailable."),
    # notar's own (the import endpoint; Go clients never call it)
    "REPOSITORY_EXISTS": (409, "The repository already has trust data on this server."),
}

_NO_DETAIL = object()


class ServerError(NotarError):
    """An error answered to the client with one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, detail: Any = _NO_DETAIL, *, headers: dict[str, str] | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code}")
        self.code = code
        self.status, self.message = ERROR_CODES[code]
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def body(self) -> bytes:
        return error_body(self.code, self.detail)


def error_body(code: str, detail: Any = _NO_DETAIL) -> bytes:
    """The errcode envelope for one error, with Go's trailing newline."""
    entry: dict[str, Any] = {"code": code, "message": ERROR_CODES[code][1]}
    if detail is not _NO_DETAIL and detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}, separators=(",", ":")).encode() + b"\n"


def validation_detail(name: str, message: str, **extra: str) -> dict[str, Any]:
    """notary's ``SerializableError``: ``{"Name": "ErrBadTargets", "Error": {"Msg": ...}}``."""
    return {"Name": name, "Error": {**extra, "Msg": message}}
