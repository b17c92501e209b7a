"""Request bodies of the trust server: the multipart update (notary's wire format), read as it streams in
with its caps, and a plain capped body (notar's import endpoint).

Every limit is checked before anything is parsed or stored: the whole body (``max_body``), the number of
files, each file (the timestamp at :data:`MAX_TIMESTAMP_BYTES`), the headers of a part, and the density of
JSON values (:func:`notar.encoding.check_value_density`).
"""

from __future__ import annotations

import json

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from notar.encoding import EncodingError, check_value_density
from notar.server.errors import ServerError
from notar.tuf import roles

__all__ = ["GO_MAX_DOWNLOAD_BYTES", "MAX_TIMESTAMP_BYTES", "check_parts", "read_body", "read_update"]

MAX_TIMESTAMP_BYTES = 1 << 20  # notary.MaxTimestampSize; uploaded timestamps are ignored, only parsed
GO_MAX_DOWNLOAD_BYTES = 100 << 20  # notary.MaxDownloadSize: the highest max_metadata_bytes may go


async def read_body(request: Request, *, max_body: int) -> bytes:
    """The whole body, at most *max_body* bytes (TOO_LARGE as soon as it is over; MALFORMED_UPLOAD if it
    ends early)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise ServerError("TOO_LARGE", f"uploads are limited to {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise ServerError("TOO_LARGE", f"uploads are limited to {max_body} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise ServerError("MALFORMED_UPLOAD", "the request body ended early") from e
    return b"".join(chunks)


async def read_update(
    request: Request, *, max_body: int, max_files: int, max_file_bytes: int
) -> tuple[list[tuple[str, bytes]], int]:
    """The update's parts (role, bytes) and the body's size, from a complete, well-formed multipart body.

    The body is parsed as it streams in (python-multipart's push parser, see :class:`_UploadParts`), so
    a bad part is refused before the rest is read. A body that ends before its closing ``--boundary--``
    delimiter, or inside a part, is MALFORMED_UPLOAD: python-multipart silently drops an unterminated
    last part, which would otherwise turn a truncated upload into an update without it. Go's
    notary-server (0.7) does not answer such a body at all (its handler dereferences the nil part that
    ``NextPart`` returns with the error, and net/http closes the connection).

    A complete body with no parts at all is a valid update, as in notary-server: it is what
    ``notary publish`` sends when nothing is staged and the server holds the snapshot key (root and
    targets unchanged, no client snapshot). The server then signs and stores a new snapshot and
    timestamp, so its 200 reports a publish that did happen; without the snapshot key, or without a
    stored root, it is refused as notary refuses it (INVALID_UPDATE ErrBadHierarchy / ErrValidation).
    """
    mtype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary", b"")
    if mtype != b"multipart/form-data" or not boundary:
        raise ServerError("MALFORMED_UPLOAD")
    cap = max_body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ServerError("TOO_LARGE", f"uploads are limited to {cap} bytes")
    try:
        upload = _UploadParts(boundary, max_parts=max_files, max_bytes=max_file_bytes)
    except (FormParserError, ValueError) as e:  # e.g. a boundary longer than RFC 2046's 70 characters
        raise ServerError("MALFORMED_UPLOAD") from e
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ServerError("TOO_LARGE", f"uploads are limited to {cap} bytes")
            upload.write(chunk)
    except ClientDisconnect as e:  # the body ended early (nobody is left to read the answer)
        raise ServerError("MALFORMED_UPLOAD", "the request body ended early") from e
    return upload.finish(), size


_MAX_PART_HEADERS = 16 * 1024  # bytes of headers per part; notary's clients send about 150


class _UploadParts:
    """Callbacks for python-multipart's ``MultipartParser``: the parts of one update, checked as notary does.

    Each part's role is its Content-Disposition ``filename`` without ``.json`` (the form field name is not
    used, as in notary-server); an empty one is NO_FILENAME, an invalid one INVALID_ROLE, both answered
    before the part's data is read. A part larger than its role's cap (``max_bytes``, the timestamp
    :data:`MAX_TIMESTAMP_BYTES`) is TOO_LARGE as soon as its data passes the cap. :meth:`finish` refuses a
    body whose closing delimiter never came.
    """

    def __init__(self, boundary: bytes, *, max_parts: int, max_bytes: int) -> None:
        self.parts: list[tuple[str, bytes]] = []
        self._max_parts = max_parts
        self._max_bytes = max_bytes
        self._limit = 0  # the current part's cap
        self._in_part = False  # a part has begun and not ended yet
        self._ended = False  # the closing delimiter was seen
        self._header_bytes = 0
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._role = ""
        self._data: bytearray | None = None  # the current part's data, once its headers are done
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as e:  # MultipartParseError: bad delimiter, header syntax, ...
            raise ServerError("MALFORMED_UPLOAD") from e

    def finish(self) -> list[tuple[str, bytes]]:
        """The parts, in upload order; MALFORMED_UPLOAD unless the body ended with its closing delimiter."""
        self._parser.finalize()
        if not self._ended or self._in_part:
            raise ServerError("MALFORMED_UPLOAD", "the multipart body has no closing boundary")
        return self.parts

    # -- python-multipart callbacks -----------------------------------------------------------------------
    def _part_begin(self) -> None:
        if len(self.parts) >= self._max_parts:
            raise ServerError("TOO_LARGE", f"uploads are limited to {self._max_parts} files")
        self._in_part = True
        self._header_bytes = 0
        self._disposition = b""
        self._data = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value += data[start:end]

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > _MAX_PART_HEADERS:
            raise ServerError("MALFORMED_UPLOAD", "the headers of a part are too long")

    def _header_end(self) -> None:
        if bytes(self._field).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        role = options.get(b"filename", b"").decode("utf-8", "replace").removesuffix(".json")
        if not role:
            raise ServerError("NO_FILENAME")
        if not roles.is_valid_role(role):
            raise ServerError("INVALID_ROLE", role)
        self._role = role
        self._limit = MAX_TIMESTAMP_BYTES if role == roles.TIMESTAMP else self._max_bytes
        self._data = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._data is None:  # not reached: python-multipart sends data only after the headers
            raise ServerError("MALFORMED_UPLOAD")
        if len(self._data) + (end - start) > self._limit:
            raise ServerError("TOO_LARGE", f"{self._role} metadata is limited to {self._limit} bytes")
        self._data += memoryview(data)[start:end]

    def _part_end(self) -> None:
        if self._data is None:  # not reached, as above
            raise ServerError("MALFORMED_UPLOAD")
        self.parts.append((self._role, bytes(self._data)))
        self._data = None
        self._in_part = False

    def _end(self) -> None:
        self._ended = True


def check_parts(parts: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """role -> bytes of an update's parts: each a JSON object with ``signed``; the timestamp dropped."""
    uploads: dict[str, bytes] = {}
    for role, data in parts:
        try:
            check_value_density(data, what=f"{role} metadata")
        except EncodingError as e:  # the cost of parsing it would be out of proportion to its size
            raise ServerError("TOO_LARGE", str(e)) from e
        try:
            doc = json.loads(data)
            signed = doc["signed"]
            if not isinstance(signed, dict) or not isinstance(doc.get("signatures", []), list | None):
                raise TypeError
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise ServerError("MALFORMED_JSON") from e
        if role == roles.TIMESTAMP:
            continue  # notary ignores uploaded timestamps: the server always makes its own
        if role in uploads:
            raise ServerError("VERSION", {})  # the same role twice in one update
        uploads[role] = data
    return uploads
