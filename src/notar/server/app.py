"""The Notary v1 HTTP API as an ASGI app: ``create_app(settings, service=..., auth=...)``.

All routes live in :data:`_ROUTES`, tried in notary-server's order. Handlers are thin: parse the request,
authorise, call :class:`~notar.server.service.TrustService` in the thread pool, encode the answer.

GET of metadata (the read path every client polls) takes a lean path instead: raw ASGI, no Starlette
request or response objects, and answers kept per process with their headers made once
(:class:`_AnswerCache`): current files (``<role>.json``), files by hash and by version. A kept answer is
served only after the store's probe (:mod:`notar.server.storage._probe`) confirmed, during this request,
that the same lookup still finds the row it was made from (files by hash and by version are not
immutable: deleting a GUN removes them, and a GUN created again reuses its version numbers), and, for the
current timestamp and snapshot, only until the earlier of their expiries (after that the service re-signs
them on read). On SQLite that check runs on the event loop in a few microseconds; on PostgreSQL concurrent
requests share small queries. A publish or deletion through any process is therefore seen by every request
that starts after it returned.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from notar.encoding import GoTime
from notar.server.auth import Access, TokenAuth
from notar.server.errors import ServerError
from notar.server.importing import parse_import_body
from notar.server.service import Metadata, TrustService
from notar.server.storage import (
    BY_HASH,
    BY_VERSION,
    CURRENT,
    Generation,
    RowKey,
    StorageUnavailableError,
    Token,
)
from notar.server.uploads import (
    GO_MAX_DOWNLOAD_BYTES,
    MAX_TIMESTAMP_BYTES,
    check_parts,
    read_body,
    read_update,
)
from notar.tuf import roles

__all__ = [
    "GO_MAX_DOWNLOAD_BYTES",
    "LARGE_UPLOAD_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_TIMESTAMP_BYTES",
    "STORAGE_THREADS",
    "ServerSettings",
    "create_app",
    "valid_gun",
]

T = TypeVar("T")

log = logging.getLogger("notar.server")

_ROLE = r"root|targets(?:/[^/\s]+)*|snapshot|timestamp"
_GUN = r"(?P<gun>[^*]+)"
_GUN_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*\Z")
# Threads that run service (storage) calls at once, per process. anyio's default pool has 40; with the GIL,
# more threads than this only add context switches (and need more pooled database connections).
STORAGE_THREADS = 8

# Size caps of one uploaded metadata file (one multipart part), checked while it streams in, before any JSON
# parsing: parsing costs memory in proportion to the file (the red team pushed RSS up by 300 MB with 60 MB of
# small JSON integers). Go's notary client (const.go) downloads a timestamp of at most MaxTimestampSize
# (1 MiB) and any other file of at most MaxDownloadSize (100 MiB) when its size is not known from a parent
# role, so notar never accepts a file that Go clients would refuse to download:
# Default cap of root, targets, delegations and snapshot. Real files are KBs to a few MBs (100,000 targets
# make a 9.5 MB targets file); parsing one costs up to ~25x its size in memory for adversarial JSON.
MAX_METADATA_BYTES = 16 << 20
LARGE_UPLOAD_BYTES = 1 << 20  # updates larger than this are parsed one at a time, see NotaryApp._h_update
# Per-process cache of metadata answers (see _AnswerCache): bytes of bodies kept at most, and files.
ANSWER_CACHE_BYTES = 64 << 20
ANSWER_CACHE_FILES = 4096


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Knobs of the HTTP layer (storage and keys are injected separately)."""

    max_upload_bytes: int = 64 * 1024 * 1024  # the whole body; notary-server has no cap at all
    max_metadata_bytes: int = (
        MAX_METADATA_BYTES  # one part other than the timestamp; <= GO_MAX_DOWNLOAD_BYTES
    )
    max_upload_files: int = 1000
    current_max_age: int = 300
    consistent_max_age: int = 2_592_000
    gun_prefixes: tuple[str, ...] = ()
    extra_health_checks: dict[str, Callable[[], None]] = field(default_factory=dict)
    storage_threads: int = STORAGE_THREADS  # see STORAGE_THREADS
    answer_cache_bytes: int = ANSWER_CACHE_BYTES  # 0: keep no answers


def valid_gun(gun: str) -> bool:
    """A GUN we store: 1-255 characters, ``/``-separated non-empty segments, no ``.``/``..``."""
    if not 0 < len(gun) <= 255:
        return False
    return all(_GUN_SEGMENT.match(seg) and seg not in (".", "..") for seg in gun.split("/"))


def _cache_control(max_age: int, *, current: bool) -> _Headers:
    """Cache-Control (and Pragma) of metadata answers, as notary-server's cache handler sets them."""
    if max_age == 0:
        return [(b"cache-control", b"max-age=0, no-cache, no-store"), (b"pragma", b"no-cache")]
    cc = f"public, max-age={max_age}, s-maxage={max_age}" + (", must-revalidate" if current else "")
    return [(b"cache-control", cc.encode())]


def _http_date(when: datetime | None) -> str:
    # Go's time.RFC1123 prints the zone abbreviation: "UTC", not "GMT".
    if when is None:
        return "Mon, 01 Jan 0001 00:00:00 UTC"
    return GoTime.from_datetime(when).utc().to_datetime().strftime("%a, %d %b %Y %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    actions: tuple[str, ...]  # repository actions needed; () = registry:catalog:*; None-like handled by name
    handler: str


def _route(method: str, path: str, operation: str, actions: tuple[str, ...], handler: str) -> _Route:
    return _Route(method, re.compile(path + r"\Z"), operation, actions, handler)


_Headers = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")
_ERROR_JSON = (b"content-type", b"application/json; charset=utf-8")


@dataclass(slots=True)
class _Answer:
    """A 200 answer with metadata, ready to send: ASGI headers and body.

    A kept one (:class:`_AnswerCache`) also carries what validates it: the probe :data:`Token` of the row
    it follows from, the probe generation when that token was last confirmed, and the instant (Unix ns)
    after which the service would re-sign it (timestamp and snapshot only).
    """

    headers: _Headers
    body: bytes
    token: Token | None = None
    generation: Generation | None = None
    fresh_until_ns: int | None = None


class _AnswerCache:
    """:data:`~notar.server.storage.RowKey` of a request -> :class:`_Answer`, least recently used dropped
    first.

    Bounded by the bytes of the bodies as well as by the number of files (:class:`notar._lru.LRUCache`
    counts entries only, and one targets file may be 16 MiB); a body above a quarter of the budget is not
    kept. Used from the event loop; the lock only makes it safe should several loops share one app.
    """

    def __init__(self, max_bytes: int, max_files: int = ANSWER_CACHE_FILES) -> None:
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.size = 0
        self._data: OrderedDict[RowKey, _Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: RowKey) -> _Answer | None:
        with self._lock:
            answer = self._data.get(key)
            if answer is not None:
                self._data.move_to_end(key)
            return answer

    def put(self, key: RowKey, answer: _Answer) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.size -= len(old.body)
            if len(answer.body) * 4 > self.max_bytes:
                return
            self._data[key] = answer
            self.size += len(answer.body)
            while self.size > self.max_bytes or len(self._data) > self.max_files:
                _, dropped = self._data.popitem(last=False)
                self.size -= len(dropped.body)

    def pop(self, key: RowKey) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.size -= len(old.body)

    def __len__(self) -> int:
        return len(self._data)


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header *name* (lower case), as Starlette's ``headers.get`` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


_TUF = r"/v2/" + _GUN + r"/_trust/tuf/"
_ROUTES = [
    _route("POST", _TUF, "UpdateTUF", ("push", "pull"), "update"),
    _route(
        "GET",
        _TUF
        + r"(?P<role>"
        + _ROLE
        + r")\.(?P<checksum>[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})\.json",
        "GetRoleByHash",
        ("pull",),
        "by_hash",
    ),
    _route(
        "GET",
        _TUF + r"(?P<version>[1-9]*[0-9]+)\.(?P<role>" + _ROLE + r")\.json",
        "GetRoleByVersion",
        ("pull",),
        "by_version",
    ),
    _route("GET", _TUF + r"(?P<role>" + _ROLE + r")\.json", "GetRole", ("pull",), "current"),
    _route("GET", _TUF + r"(?P<role>snapshot|timestamp)\.key", "GetKey", ("push", "pull"), "get_key"),
    _route("POST", _TUF + r"(?P<role>snapshot|timestamp)\.key", "RotateKey", ("*",), "rotate_key"),
    _route("DELETE", _TUF, "DeleteTUF", ("*",), "delete"),
    # notar's own: a repository moved from another Notary v1 server, with its root history (notar import)
    _route("POST", r"/v2/" + _GUN + r"/_trust/import", "ImportTUF", ("push", "pull"), "import"),
    _route("GET", r"/v2/" + _GUN + r"/_trust/changefeed", "Changefeed", ("pull",), "changefeed"),
    _route("GET", r"/v2/_trust/changefeed", "Changefeed", (), "changefeed"),
]
# GET of metadata, tried in the same order: the only routes whose paths end in ".json" (see NotaryApp._lean).
_METADATA_HANDLERS = ("by_hash", "by_version", "current")
_METADATA_ROUTES = [r for r in _ROUTES if r.method == "GET" and r.handler in _METADATA_HANDLERS]
_PATH_MEMO_SIZE = 4096  # paths of metadata GETs remembered with their route (see NotaryApp._match_metadata)
_PATH_MEMO_LENGTH = 1024  # longer paths are not remembered (a GUN and a role have at most 255 characters)


class NotaryApp:
    """The ASGI application."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        service: TrustService,
        auth: TokenAuth | None,
        web: ASGIApp | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.auth = auth
        self.web = web  # the read-only UI (notar.web), served for every path outside the API
        self.metrics = CollectorRegistry()
        self._requests = Counter(
            "notar_server_http_requests",
            "HTTP requests by operation and status",
            ["operation", "status"],
            registry=self.metrics,
        )
        self._latency = Histogram(
            "notar_server_http_request_duration_seconds",
            "HTTP request latency",
            ["operation"],
            registry=self.metrics,
        )
        self._limiter: CapacityLimiter | None = None  # made on first use, inside the event loop
        self._large_limiter: CapacityLimiter | None = None  # updates over LARGE_UPLOAD_BYTES, see _h_update
        self._answers = _AnswerCache(settings.answer_cache_bytes)
        # metric children of the lean path by (operation, status), bound on first use: labels() costs more
        # than a dict lookup, and binding them up front would list zero series /metrics never showed
        self._lean_metrics: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._paths: dict[str, tuple[_Route, dict[str, Any], bool] | None] = {}
        self._current_cc = _cache_control(settings.current_max_age, current=True)
        self._consistent_cc = _cache_control(settings.consistent_max_age, current=False)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking (service/storage) call in a worker thread, at most ``storage_threads`` at once."""
        limiter = self._limiter
        if limiter is None:
            limiter = self._limiter = CapacityLimiter(self.settings.storage_threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if (
            self.web is not None
            and not path.startswith(("/v2/", "/_notary_server/", "/metrics"))
            and path != "/v2"
        ):
            await self.web(scope, receive, send)
            return
        if scope["method"] == "GET" and path.endswith(".json") and path.startswith("/v2/"):
            match = self._match_metadata(path)
            if match is not None:
                await self._lean(scope, send, *match)
                return
        request = Request(scope, receive)
        started = time.perf_counter()
        operation = "Other"
        try:
            operation, response = await self._dispatch(request)
        except ServerError as e:
            response = Response(
                e.body(), e.status, headers=e.headers, media_type="application/json; charset=utf-8"
            )
        except Exception:  # a bug: log it, never show a traceback to the client
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            e2 = ServerError("UNKNOWN")
            response = Response(e2.body(), e2.status, media_type="application/json; charset=utf-8")
        self._requests.labels(operation, str(response.status_code)).inc()
        self._latency.labels(operation).observe(time.perf_counter() - started)
        await response(scope, receive, send)

    # -- routing ------------------------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> tuple[str, Response]:
        path, method = request.url.path, request.method
        if path == "/_notary_server/health" and method == "GET":
            return "Health", await self._in_thread(self._health)
        if path == "/metrics" and method == "GET":
            # Unlike notary-server, metrics need the token auth of the other non-repository endpoints (/v2/,
            # the global changefeed): scope registry:catalog:*. They name operations and error rates, and
            # the server may face the internet; health stays open (load balancers, like notary-server).
            self._authorize(request, None, ())
            return "Metrics", Response(generate_latest(self.metrics), media_type="text/plain; version=0.0.4")
        if path == "/v2/" and method == "GET":
            self._authorize(request, None, ())
            return "Ping", Response(b"{}", media_type="application/json")
        for route in _ROUTES:
            if route.method != method:
                continue
            m = route.pattern.match(path)
            if m is None:
                continue
            params = m.groupdict()
            gun = params.get("gun")
            if gun is not None and not self._gun_allowed(gun):
                if route.handler == "update":
                    raise ServerError(
                        "INVALID_GUN", f"Require GUNs with prefix: {list(self.settings.gun_prefixes)}"
                    )
                raise ServerError("METADATA_NOT_FOUND")
            self._authorize(request, gun, route.actions)
            handler: Callable[[Request, dict[str, Any]], Awaitable[Response]] = getattr(
                self, "_h_" + route.handler
            )
            return route.operation, await handler(request, params)
        self._authorize(request, None, ())
        raise ServerError("METADATA_NOT_FOUND")

    def _gun_allowed(self, gun: str) -> bool:
        if not valid_gun(gun):
            return False
        prefixes = self.settings.gun_prefixes
        return not prefixes or any(gun.startswith(p) for p in prefixes)

    def _authorize(self, request: Request, gun: str | None, actions: tuple[str, ...]) -> None:
        if self.auth is None:
            return
        if gun is None or not actions:
            accesses = [Access("registry", "catalog", "*")]
        else:
            accesses = [Access("repository", gun, a) for a in actions]
        self.auth.check(request.headers.get("authorization"), accesses)

    # -- GET metadata: the lean path -----------------------------------------------------------------
    def _match_metadata(self, path: str) -> tuple[_Route, dict[str, Any], bool] | None:
        """The metadata route of *path*, its parameters and whether its GUN is allowed; None: no such route.

        Clients poll the same few paths, so the answer is remembered per path (the routes and the GUN rules
        never change while the app runs); the memo is emptied when it is full, and holds no path longer than
        a real one. Callers must not change the parameters.

        The path is ASGI's (percent-decoded) ``path``; Starlette's ``url.path`` differs from it only by
        escaping ``?``, ``#`` and backslashes, which no valid GUN or role contains: either way such a path is
        answered 404.
        """
        paths = self._paths
        try:
            return paths[path]
        except KeyError:
            pass
        found = None
        for route in _METADATA_ROUTES:
            m = route.pattern.match(path)
            if m is not None:
                params = m.groupdict()
                found = (route, params, self._gun_allowed(params["gun"]))
                break
        if len(path) <= _PATH_MEMO_LENGTH:
            if len(paths) >= _PATH_MEMO_SIZE:
                paths.clear()
            paths[path] = found
        return found

    async def _lean(
        self, scope: Scope, send: Send, route: _Route, params: dict[str, Any], gun_allowed: bool
    ) -> None:
        """Answer a GET of metadata with raw ASGI messages (what ``__call__`` + ``_dispatch`` would answer).

        Only the routes of :data:`_METADATA_ROUTES` come here: paths ending in ``.json`` match no other
        route, and one that matches none of these takes the general path (which answers 404).
        """
        started = time.perf_counter()
        try:
            gun: str = params["gun"]
            if not gun_allowed:
                raise ServerError("METADATA_NOT_FOUND")
            if self.auth is not None:
                accesses = [Access("repository", gun, a) for a in route.actions]
                self.auth.check(_header(scope, b"authorization"), accesses)
            answer = await self._metadata_answer(route.handler, params)
            status, headers, body = 200, answer.headers, answer.body
        except ServerError as e:
            status, body = e.status, e.body()
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in e.headers.items()]
            headers += [(b"content-length", str(len(body)).encode()), _ERROR_JSON]
        except Exception:  # a bug: log it, never show a traceback to the client
            log.exception("unhandled error on GET %s", scope["path"])
            e2 = ServerError("UNKNOWN")
            status, body = e2.status, e2.body()
            headers = [(b"content-length", str(len(body)).encode()), _ERROR_JSON]
        # errors are counted as operation "Other", as the general path counts them
        operation = route.operation if status == 200 else "Other"
        metrics = self._lean_metrics.get((operation, status))
        if metrics is None:
            metrics = self._lean_metrics[(operation, status)] = (
                self._requests.labels(operation, str(status)),
                self._latency.labels(operation),
            )
        metrics[0].inc()
        metrics[1].observe(time.perf_counter() - started)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _metadata_answer(self, handler: str, p: dict[str, Any]) -> _Answer:
        service = self.service
        gun, role = p["gun"], p["role"]
        if handler == "current":
            # the snapshot served is the one the current timestamp names
            basis = roles.TIMESTAMP if role in (roles.TIMESTAMP, roles.SNAPSHOT) else role
            return await self._kept_answer(
                (CURRENT, gun, role, None),
                (CURRENT, gun, basis, None),
                functools.partial(service.current, gun, role),
                self._current_cc,
            )
        if handler == "by_hash":
            checksum: str = p["checksum"].lower()
            if len(checksum) != 64:  # sha384/sha512 URLs: nothing is stored by those (as notary)
                raise ServerError("METADATA_NOT_FOUND", {})
            key: RowKey = (BY_HASH, gun, role, checksum)
            read = functools.partial(service.by_checksum, gun, role, checksum)
        else:
            raw: str = p["version"]
            version = int(raw) if len(raw) <= 10 else 0  # longer than any stored version (and int()'s limit)
            if version < 1 or version > 2**31:
                raise ServerError("METADATA_NOT_FOUND", {})
            key = (BY_VERSION, gun, role, version)
            read = functools.partial(service.by_version, gun, role, version)
        return await self._kept_answer(key, key, read, self._consistent_cc)

    async def _kept_answer(
        self, key: RowKey, basis: RowKey, read: Callable[[], Metadata], cache_control: _Headers
    ) -> _Answer:
        """The answer to the request ``key``: a kept one if the probe confirms it, else ``read`` and kept.

        ``basis`` is the lookup whose row decides the answer (``key`` itself, but the current timestamp for
        the current snapshot). Read-your-write: a kept answer is served only if a probe made during this
        request (a generation read, or a token query) finds that row unchanged. When the kept answer has to
        be replaced, the generation and the token are read *before* the service reads the file, and the new
        answer is kept only if the service's file follows from that very row (``Metadata.basis``), so a
        publish or deletion that commits in between is caught by the next request's probe.
        """
        service = self.service
        probe = service.probe
        if probe is None:  # a store without a probe: read every time
            return self._answer(await self._in_thread(read), cache_control)
        kept = self._answers.get(key)
        try:
            generation = probe.generation()
            if (
                kept is not None
                and generation is not None
                and kept.generation == generation
                and (kept.fresh_until_ns is None or service.now_ns() <= kept.fresh_until_ns)
            ):
                return kept  # nothing was committed anywhere since the kept answer was confirmed
            token = await probe.find(basis)
        except StorageUnavailableError:  # no probe right now: read through the store (as without a cache)
            return self._answer(await self._in_thread(read), cache_control)
        if kept is not None:
            if (
                token is not None
                and kept.token == token
                and (kept.fresh_until_ns is None or service.now_ns() <= kept.fresh_until_ns)
            ):
                kept.generation = generation
                return kept
            self._answers.pop(key)  # replaced, deleted or expired: never served again
        meta = await self._in_thread(read)
        answer = self._answer(meta, cache_control)
        if token is not None and meta.basis is not None and meta.basis == token[:2]:
            answer.token = token
            answer.generation = generation
            if meta.fresh_until is not None:
                answer.fresh_until_ns = meta.fresh_until.unix * 1_000_000_000 + meta.fresh_until.nanos
            self._answers.put(key, answer)
        # else: the file changed between the probe and the read (or was re-signed just now): not kept, the
        # next request keeps one
        return answer

    @staticmethod
    def _answer(meta: Metadata, cache_control: _Headers) -> _Answer:
        headers = [
            *cache_control,
            (b"last-modified", _http_date(meta.modified).encode("latin-1")),
            (b"content-length", str(len(meta.data)).encode()),
            _JSON,
        ]
        return _Answer(headers, meta.data)

    # -- handlers ------------------------------------------------------------------------------------
    async def _metadata_response(self, handler: str, p: dict[str, Any]) -> Response:
        # GETs of metadata take the lean path (see __call__); this serves direct _dispatch callers
        answer = await self._metadata_answer(handler, p)
        response = Response(answer.body, 200)
        response.raw_headers = list(answer.headers)
        return response

    async def _h_current(self, request: Request, p: dict[str, Any]) -> Response:
        return await self._metadata_response("current", p)

    async def _h_by_hash(self, request: Request, p: dict[str, Any]) -> Response:
        return await self._metadata_response("by_hash", p)

    async def _h_by_version(self, request: Request, p: dict[str, Any]) -> Response:
        return await self._metadata_response("by_version", p)

    async def _key_response(self, gun: str, role: str, rotate: bool) -> Response:
        key = await self._in_thread(lambda: self.service.key(gun, role, rotate=rotate))
        d = key.to_dict()
        # Go's encoding/json field order: public before private
        body = json.dumps(
            {"keytype": d["keytype"], "keyval": {"public": d["keyval"]["public"], "private": None}},
            separators=(",", ":"),
        )
        return Response(body.encode(), media_type="application/json")

    async def _h_get_key(self, request: Request, p: dict[str, Any]) -> Response:
        return await self._key_response(p["gun"], p["role"], False)

    async def _h_rotate_key(self, request: Request, p: dict[str, Any]) -> Response:
        return await self._key_response(p["gun"], p["role"], True)

    async def _h_delete(self, request: Request, p: dict[str, Any]) -> Response:
        await self._in_thread(self.service.delete, p["gun"])
        return Response(b"", 200)

    async def _h_update(self, request: Request, p: dict[str, Any]) -> Response:
        parts, size = await read_update(
            request,
            max_body=self.settings.max_upload_bytes,
            max_files=self.settings.max_upload_files,
            max_file_bytes=min(self.settings.max_metadata_bytes, GO_MAX_DOWNLOAD_BYTES),
        )

        def publish() -> None:
            # parsing megabytes of JSON is CPU work: off the event loop, like the rest of the validation
            self.service.publish(p["gun"], check_parts(parts))

        if size <= LARGE_UPLOAD_BYTES:
            await self._in_thread(publish)
            return Response(b"", 200)
        # Parsing costs a multiple of the bytes parsed (up to ~25x for adversarial JSON), so large updates
        # are parsed and validated one at a time per process; small ones (all real-world updates but the
        # largest repositories') never wait for them.
        limiter = self._large_limiter
        if limiter is None:
            limiter = self._large_limiter = CapacityLimiter(1)
        async with limiter:
            await self._in_thread(publish)
        return Response(b"", 200)

    async def _h_import(self, request: Request, p: dict[str, Any]) -> Response:
        """Store a repository moved from another server (:mod:`notar.server.importing`).

        ``?force=true`` replaces trust data already here (only by a newer history); like DELETE, that
        needs the ``*`` scope. The answer: ``{"gun": ..., "versions": {role: current version}}``."""
        force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
        if force:
            self._authorize(request, p["gun"], ("*",))
        body = await read_body(request, max_body=self.settings.max_upload_bytes)
        gun = p["gun"]

        def run() -> dict[str, Any]:
            history, update = parse_import_body(
                gun,
                body,
                max_file_bytes=min(self.settings.max_metadata_bytes, GO_MAX_DOWNLOAD_BYTES),
                max_timestamp_bytes=MAX_TIMESTAMP_BYTES,
                max_files=self.settings.max_upload_files,
            )
            result = self.service.import_repository(gun, history, update, force=force)
            return {"gun": gun, "versions": result.versions}

        limiter = self._large_limiter
        if limiter is None:
            limiter = self._large_limiter = CapacityLimiter(1)
        async with limiter:  # an import parses and verifies a whole repository: one at a time per process
            answer = await self._in_thread(run)
        return Response(json.dumps(answer).encode(), 200, media_type="application/json")

    async def _h_changefeed(self, request: Request, p: dict[str, Any]) -> Response:
        def int32(name: str, raw: str) -> int:
            try:
                if not re.fullmatch(r"[+-]?[0-9]{1,10}", raw):
                    raise ValueError
                value = int(raw)
                if not -(2**31) <= value < 2**31:
                    raise ValueError
                return value
            except ValueError:
                raise ServerError(
                    "INVALID_PARAMETERS",
                    f'invalid {name} parameter: strconv.ParseInt: parsing "{raw}": invalid syntax',
                ) from None

        records = int32("records", request.query_params.get("records", ""))
        change_id = int32("change_id", request.query_params.get("change_id", "0") or "0")
        changes = await self._in_thread(self.service.changes, change_id, records, p.get("gun"))
        body = {
            "count": len(changes),
            "records": [
                {
                    "ID": str(c.id),
                    "CreatedAt": GoTime.from_datetime(c.created_at).utc().format(),
                    "GUN": c.gun,
                    "Version": c.version,
                    "SHA256": c.sha256,
                    "Category": c.category,
                }
                for c in changes
            ],
        }
        return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")

    def _health(self) -> Response:
        failures: dict[str, str] = {}
        checks = {"DB operational": self.service.store.check_health, **self.settings.extra_health_checks}
        for name, check in checks.items():
            try:
                check()
            except Exception as e:  # any failure is reported, never raised
                failures[name] = str(e) or type(e).__name__
        return Response(
            json.dumps(failures).encode(), 503 if failures else 200, media_type="application/json"
        )

    # -- upload parsing ---------------------------------------------------------------------------------


def create_app(
    settings: ServerSettings | None = None,
    *,
    service: TrustService,
    auth: TokenAuth | None = None,
    web: ASGIApp | None = None,
) -> NotaryApp:
    """Build the ASGI app with its dependencies injected (no globals). *web* serves every non-API path."""
    return NotaryApp(settings or ServerSettings(), service=service, auth=auth, web=web)
