"""An in-memory trust server that serves a valid repository and tampers with it on request.

Modelled on notary's ``tuf/testutils/swizzler.go``: :class:`Swizzler` builds a complete Notary v1
repository with :mod:`notar.tuf` (root with an x509 root certificate for the GUN, ``targets``, ``snapshot``
and ``timestamp``, and docker's delegations ``targets/releases`` and ``targets/<signer>``), stores every
signed file under the names a notary server serves (``<role>.json``, ``<role>.<sha256>.json``,
``<N>.<role>.json``) and answers a :class:`notar.client.TrustServer` through an ``httpx.MockTransport``.

Mutators behave like a (possibly compromised) server that holds the snapshot and timestamp keys: after a
role changes, the snapshot and the timestamp are re-signed with bumped versions. Lower-level ones replace
served bytes raw, serve old versions, rotate root keys, stream endless data or take the server down.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from notar.client import TrustCache, TrustServer, Updater
from notar.crypto import PrivateKey, PublicKey, Signer, make_root_certificate
from notar.encoding import GoTime
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    Role,
    Root,
    Snapshot,
    Targets,
    Timestamp,
    TrustPinning,
    default_expiry,
    new_root,
    new_snapshot,
    new_targets,
    new_timestamp,
    roles,
)

__all__ = [
    "CHUNK",
    "GUN",
    "NOT_FOUND_BODY",
    "NOW",
    "RELEASES",
    "URL",
    "Clock",
    "RootKey",
    "Swizzler",
    "Transfer",
    "cached_files",
    "target",
]

GUN = "example.com/team/app"
NOW = GoTime.parse("2030-01-02T03:04:05.123456789Z")
URL = "https://notary.test:4443"
RELEASES = "targets/releases"
CHUNK = 64 * 1024  # the size of each chunk the server streams
NOT_FOUND_BODY = (
    b'{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist.",'
    b'"detail":{}}]}'
)

SignWith = Signer | tuple[Signer, str]


def target(text: str) -> FileMeta:
    """What docker signs for a tag: length and sha256 of a manifest (*text* stands for the manifest)."""
    return FileMeta.from_data(text.encode(), algorithms=("sha256",))


class Clock:
    """The client's clock, moved by hand instead of sleeping."""

    def __init__(self, now: GoTime = NOW) -> None:
        self.now = now

    def __call__(self) -> GoTime:
        return self.now

    def advance(self, *, days: int = 0, seconds: int = 0) -> GoTime:
        self.now = self.now.add(days=days, seconds=seconds)
        return self.now


@dataclass(frozen=True)
class RootKey:
    """A root private key and the self-signed certificate key root.json lists for it."""

    private: PrivateKey
    cert: PublicKey

    @classmethod
    def generate(cls, gun: str, now: GoTime) -> RootKey:
        key = PrivateKey.generate()
        return cls(key, make_root_certificate(key, gun, now=now.to_datetime()))

    @property
    def signer(self) -> tuple[Signer, str]:
        """Root signatures carry the certificate's TUF key ID, not the private key's."""
        return (self.private, self.cert.key_id)


@dataclass(frozen=True)
class Transfer:
    """One 200 response: the file name and how many body bytes the client pulled from the stream."""

    name: str
    sent: int


class _Counter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0


class Swizzler:
    """A valid repository for *gun*, served in memory, with mutators that play the attacker."""

    def __init__(
        self,
        gun: str = GUN,
        *,
        now: GoTime = NOW,
        signers: Sequence[str] = ("alice",),
        cert_gun: str | None = None,
        targets_keys: int = 1,
        targets_threshold: int = 1,
        url: str = URL,
    ) -> None:
        self.gun = gun
        self.now = now  # the server's clock: default expiries of what it signs
        self.url = url
        self.root_keys = [RootKey.generate(cert_gun or gun, now)]
        self.targets_keys = [PrivateKey.generate() for _ in range(targets_keys)]
        self.snapshot_key = PrivateKey.generate()
        self.timestamp_key = PrivateKey.generate()
        self.signer_keys = {name: PrivateKey.generate() for name in signers}
        self.releases_signer = signers[0] if signers else None

        self.files: dict[str, bytes] = {}  # served name -> bytes, as stored by a server
        self.overrides: dict[str, bytes] = {}  # served name -> raw replacement bytes
        self.endless: dict[str, tuple[bytes, int]] = {}  # served name -> (start, total length)
        self.status: dict[str, int] = {}  # served name -> forced error status
        self.down = False  # every request fails with a connection error
        self.declare_length = True  # send Content-Length (a real server does)
        self.requests: list[str] = []
        self._counters: list[_Counter] = []
        self._clients: list[httpx.Client] = []

        self.envs: dict[str, Envelope[Any]] = {}  # role -> currently published envelope
        self.history: dict[str, dict[int, Envelope[Any]]] = {}  # role -> version -> envelope
        self.published: list[str] = []  # targets roles listed in the snapshot, in order

        self.root: Root = new_root(
            {
                roles.ROOT: [k.cert for k in self.root_keys],
                roles.TARGETS: [k.public_key for k in self.targets_keys],
                roles.SNAPSHOT: [self.snapshot_key.public_key],
                roles.TIMESTAMP: [self.timestamp_key.public_key],
            },
            now=now,
            thresholds={roles.TARGETS: targets_threshold},
        )
        self._store(roles.ROOT, Envelope.sign(self.root, [k.signer for k in self.root_keys]))

        top = new_targets(now=now)
        top.targets["latest"] = target("targets:latest")
        top.targets["1.0"] = target("targets:1.0")
        self.bodies: dict[str, Targets] = {roles.TARGETS: top}
        if signers:
            self.bodies[RELEASES] = new_targets(now=now, role=RELEASES)
            self.bodies[RELEASES].targets.update(
                {"1.0": target("releases:1.0"), "2.0": target("releases:2.0")}
            )
            for name, key in self.signer_keys.items():
                top.delegations.keys[key.key_id] = key.public_key
                for role in (f"targets/{name}", RELEASES):
                    entry = top.delegations.role(role)
                    if entry is None:
                        entry = DelegatedRole(role, [], 1, [""])
                        top.delegations.roles.append(entry)
                    entry.keyids.append(key.key_id)
                body = new_targets(now=now, role=f"targets/{name}")
                body.targets.update({f"{name}-only": target(f"{name}:only"), "1.0": target(f"{name}:1.0")})
                self.bodies[f"targets/{name}"] = body
        for role in self.bodies:
            self._store(role, Envelope.sign(self.bodies[role], self.default_signers(role)))
            self.published.append(role)
        self.publish_snapshot(bump=False)

    # -- signing --------------------------------------------------------------------------------------
    def default_signers(self, role: str) -> list[SignWith]:
        if role == roles.ROOT:
            return [k.signer for k in self.root_keys]
        if role == roles.TARGETS:
            return list(self.targets_keys)
        if role == roles.SNAPSHOT:
            return [self.snapshot_key]
        if role == roles.TIMESTAMP:
            return [self.timestamp_key]
        if role == RELEASES:
            assert self.releases_signer is not None
            return [self.signer_keys[self.releases_signer]]
        return [self.signer_keys[role.split("/", 1)[1]]]

    def _store(self, role: str, env: Envelope[Any]) -> Envelope[Any]:
        """Publish *env* as the server stores it: current, by checksum and by version."""
        sha = env.file_meta().sha256_hex()
        self.files[f"{role}.json"] = env.data
        self.files[f"{role}.{sha}.json"] = env.data
        self.files[f"{env.signed.version}.{role}.json"] = env.data
        self.envs[role] = env
        self.history.setdefault(role, {})[env.signed.version] = env
        return env

    def _next_version(self, role: str) -> int:
        return max(self.history.get(role, {0: None})) + 1

    def update(
        self,
        role: str,
        *,
        tags: Mapping[str, FileMeta] | None = None,
        remove: Iterable[str] = (),
        mutate: Callable[[Targets], None] | None = None,
        signers: Sequence[SignWith] | None = None,
        expires: GoTime | None = None,
        version: int | None = None,
    ) -> Envelope[Targets]:
        """Change ``targets`` or a delegation, re-sign it (version + 1), then snapshot and timestamp."""
        body = self.bodies[role]
        body.targets.update(tags or {})
        for name in remove:
            body.targets.pop(name, None)
        if mutate is not None:
            mutate(body)
        body.version = version if version is not None else self._next_version(role)
        body.expires = expires or default_expiry(role, self.now)
        env: Envelope[Targets] = self._store(
            role, Envelope.sign(body, signers if signers is not None else self.default_signers(role))
        )
        if role not in self.published:
            self.published.append(role)
        self.publish_snapshot()
        return env

    def publish_snapshot(
        self,
        *,
        meta: Mapping[str, FileMeta] | None = None,
        expires: GoTime | None = None,
        signers: Sequence[SignWith] | None = None,
        bump: bool = True,
    ) -> Envelope[Snapshot]:
        """Sign a snapshot of the published root and targets roles (*meta* overrides entries), then a timestamp."""
        files: dict[str, Envelope[Any]] = {roles.ROOT: self.envs[roles.ROOT]}
        files.update({role: self.envs[role] for role in self.published})
        body = new_snapshot(files, now=self.now, version=self._next_version(roles.SNAPSHOT) if bump else 1)
        body.meta.update(meta or {})
        if expires is not None:
            body.expires = expires
        env: Envelope[Snapshot] = self._store(
            roles.SNAPSHOT,
            Envelope.sign(body, signers if signers is not None else self.default_signers(roles.SNAPSHOT)),
        )
        self.publish_timestamp(bump=bump)
        return env

    def publish_timestamp(
        self,
        *,
        snapshot: Envelope[Snapshot] | None = None,
        meta: FileMeta | None = None,
        expires: GoTime | None = None,
        signers: Sequence[SignWith] | None = None,
        bump: bool = True,
    ) -> Envelope[Timestamp]:
        """Sign a timestamp naming *snapshot* (default: the current one) or raw *meta*."""
        body = new_timestamp(
            snapshot or self.envs[roles.SNAPSHOT],
            now=self.now,
            version=self._next_version(roles.TIMESTAMP) if bump else 1,
        )
        if meta is not None:
            body.meta[roles.SNAPSHOT] = meta
        if expires is not None:
            body.expires = expires
        env: Envelope[Timestamp] = self._store(
            roles.TIMESTAMP,
            Envelope.sign(body, signers if signers is not None else self.default_signers(roles.TIMESTAMP)),
        )
        self.overrides.pop("timestamp.json", None)
        return env

    # -- root -----------------------------------------------------------------------------------------
    def update_root(
        self, mutate: Callable[[Root], None] | None = None, *, signers: Sequence[SignWith] | None = None
    ) -> Envelope[Root]:
        """Change root (version + 1), sign it with the current root keys, re-sign snapshot and timestamp."""
        if mutate is not None:
            mutate(self.root)
        self.root.version = self._next_version(roles.ROOT)
        env: Envelope[Root] = self._store(
            roles.ROOT,
            Envelope.sign(self.root, signers if signers is not None else self.default_signers(roles.ROOT)),
        )
        self.publish_snapshot()
        return env

    def rotate_root(
        self, *, sign_with_old: bool = True, sign_with_new: bool = True, cert_gun: str | None = None
    ) -> Envelope[Root]:
        """``notary key rotate <gun> root``: a new root key and certificate, root version + 1.

        A legitimate rotation is signed by the old and the new root keys; the flags forge other cases.
        """
        old = self.root_keys
        new = RootKey.generate(cert_gun or self.gun, self.now)
        for k in old:
            self.root.keys.pop(k.cert.key_id, None)
        self.root.keys[new.cert.key_id] = new.cert
        self.root.roles[roles.ROOT] = Role([new.cert.key_id], 1)
        self.root_keys = [new]
        signers = [k.signer for k in old] if sign_with_old else []
        if sign_with_new:
            signers.append(new.signer)
        return self.update_root(signers=signers)

    # -- attacks --------------------------------------------------------------------------------------
    def rollback(self, role: str, version: int) -> Envelope[Any]:
        """Serve an older, correctly signed *version* of *role*, the rest re-signed around it."""
        old = self.history[role][version]
        if role == roles.TIMESTAMP:
            self.overrides["timestamp.json"] = old.data
        elif role == roles.SNAPSHOT:
            self.publish_timestamp(snapshot=old)
        elif role == roles.ROOT:
            self.envs[roles.ROOT] = old
            self.files["root.json"] = old.data
            self.publish_snapshot()
        else:
            self.envs[role] = old
            self.files[f"{role}.json"] = old.data
            self.publish_snapshot()
        return old

    def serve_raw(self, role: str, data: bytes) -> None:
        """Serve *data* as *role*; the parent's meta is re-signed to name it, as a compromised server can."""
        meta = FileMeta.from_data(data)
        if role == roles.TIMESTAMP:
            self.overrides["timestamp.json"] = data
            return
        self.files[f"{role}.{meta.sha256_hex()}.json"] = data
        if role == roles.ROOT:
            self.overrides["root.json"] = data
            self.publish_snapshot(meta={roles.ROOT: meta})
        elif role == roles.SNAPSHOT:
            self.publish_timestamp(meta=meta)
        else:
            self.publish_snapshot(meta={role: meta})

    def tamper(self, name: str, data: bytes) -> None:
        """Replace the bytes served at URL name *name* (e.g. ``snapshot.<sha256>.json``), nothing re-signed."""
        self.overrides[name] = data

    def serve_endless(self, name: str, start: bytes, total: int) -> None:
        """Serve *start* then spaces up to *total* bytes at *name*, generated lazily in :data:`CHUNK` pieces."""
        self.endless[name] = (start, total)

    def by_hash(self, role: str, env: Envelope[Any] | None = None) -> str:
        """The URL name a client fetches *role* by (``<role>.<sha256>.json``)."""
        return f"{role}.{(env or self.envs[role]).file_meta().sha256_hex()}.json"

    # -- serving --------------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        prefix = f"/v2/{self.gun}/_trust/tuf/"
        path = request.url.path
        name = path[len(prefix) :] if path.startswith(prefix) else path
        self.requests.append(name)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        json_type = {"Content-Type": "application/json; charset=utf-8"}
        if name in self.status:
            body = b'{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":{}}]}'
            return httpx.Response(self.status[name], content=body, headers=json_type)
        if not path.startswith(prefix) or request.method != "GET":
            return httpx.Response(404, content=NOT_FOUND_BODY, headers=json_type)
        if name in self.endless:
            start, total = self.endless[name]
            counter = self._counter(name)
            headers = dict(json_type)
            if self.declare_length:
                headers["Content-Length"] = str(total)
            return httpx.Response(200, headers=headers, content=self._padded(counter, start, total))
        data = self.overrides.get(name, self.files.get(name))
        if data is None:
            return httpx.Response(404, content=NOT_FOUND_BODY, headers=json_type)
        headers = dict(json_type)
        if self.declare_length:
            headers["Content-Length"] = str(len(data))
        return httpx.Response(200, headers=headers, content=self._chunks(self._counter(name), data))

    def _counter(self, name: str) -> _Counter:
        counter = _Counter(name)
        self._counters.append(counter)
        return counter

    @staticmethod
    def _chunks(counter: _Counter, data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), CHUNK):
            chunk = data[i : i + CHUNK]
            counter.sent += len(chunk)
            yield chunk

    @staticmethod
    def _padded(counter: _Counter, start: bytes, total: int) -> Iterator[bytes]:
        counter.sent += len(start)
        yield start
        pad = b" " * CHUNK
        for _ in itertools.count():
            left = total - counter.sent
            if left <= 0:
                return
            chunk = pad[:left]
            counter.sent += len(chunk)
            yield chunk

    @property
    def transfers(self) -> list[Transfer]:
        """Every 200 response so far, with the bytes the client actually pulled."""
        return [Transfer(c.name, c.sent) for c in self._counters]

    def clear_log(self) -> None:
        """Forget the requests and transfers so far."""
        self.requests.clear()
        self._counters.clear()

    def max_sent(self, name: str) -> int:
        return max((t.sent for t in self.transfers if t.name == name), default=0)

    # -- the client side ------------------------------------------------------------------------------
    def updater(
        self, trust_dir: Path, *, clock: Callable[[], GoTime], pinning: TrustPinning | None = None
    ) -> Updater:
        """An :class:`Updater` for this repository talking to this server, caching in *trust_dir*."""
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        self._clients.append(http)
        return Updater(
            self.gun, TrustServer(self.url, http=http), TrustCache(trust_dir), pinning=pinning, clock=clock
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


def cached_files(trust_dir: Path, gun: str = GUN) -> dict[str, bytes]:
    """Every role file in the client's cache for *gun*: role name -> bytes."""
    base = trust_dir.joinpath("tuf", *gun.split("/"), "metadata")
    if not base.is_dir():
        return {}
    return {
        path.relative_to(base).with_suffix("").as_posix(): path.read_bytes()
        for path in sorted(base.rglob("*.json"))
        if not path.name.startswith(".tmp-")
    }
