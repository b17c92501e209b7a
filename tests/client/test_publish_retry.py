"""A publish that lost a race is re-applied to the refreshed state, with bounded jittered backoff.

In process: the real notar server app (SQLite) behind Starlette's TestClient. Conflicts are real: before
one of our publishes reaches the server, a rival client's update is stored, so ours (built on the state
before it) is refused with ``400 VERSION``. Time is fake (sleeps advance a counter), so nothing waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from notar.client import (
    ClientError,
    NotSignedError,
    PermissionDeniedError,
    PublishRejectedError,
    Repository,
    TrustCache,
    TrustServer,
    TrustServerUnavailableError,
    VersionConflictError,
)
from notar.client.retry import VERSION_CONFLICT_MESSAGE, PublishConflictError, RetryPolicy
from notar.crypto import PrivateKey
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.server.app import ServerSettings, create_app
from notar.server.errors import error_body
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from notar.tuf import Envelope, FileMeta, Root, Targets, roles

GUN = "registry.example/team/app"
URL = "http://testserver"


def meta(n: int) -> FileMeta:
    """A distinct (size, sha256) per *n*."""
    return FileMeta(1000 + n, {"sha256": bytes([n % 256]) * 32})


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class RacingServer(TrustServer):
    """Our trust server connection: before each of our first *conflicts* publishes (None: all of them)
    the rival's update is stored, so ours reaches a server that has moved on. Records what we sent."""

    def __init__(self, http: httpx.Client, rival: Callable[[int], object], conflicts: int | None) -> None:
        super().__init__(URL, http=http)
        self.rival = rival
        self.conflicts = conflicts
        self.sent: list[dict[str, bytes]] = []
        self.answers: list[str] = []

    def publish(self, gun: str, files: Mapping[str, bytes]) -> None:
        self.sent.append(dict(files))
        if self.conflicts is None or len(self.sent) <= self.conflicts:
            self.rival(len(self.sent))
        try:
            super().publish(gun, files)
        except VersionConflictError as e:
            self.answers.append(str(e))
            raise
        self.answers.append("ok")

    def sent_targets(self, role: str = roles.TARGETS) -> list[Targets]:
        return [
            Envelope.from_bytes(f[role], expect=Targets, role=role).signed for f in self.sent if role in f
        ]


class CannedServer(TrustServer):
    """Answers every publish with one fixed HTTP error, parsed by the real TrustServer code."""

    def __init__(self, http: httpx.Client, status: int, body: bytes) -> None:
        super().__init__(URL, http=http)
        self.status, self.body = status, body
        self.calls = 0

    def publish(self, gun: str, files: Mapping[str, bytes]) -> None:
        self.calls += 1
        response = httpx.Response(
            self.status, content=self.body, headers={"Content-Type": "application/json"}
        )
        raise self._fail(response, f"publish trust data for {gun}")


@dataclass
class World:
    """One in-process notar server, a trust directory's keys, and clients on them."""

    http: TestClient
    tmp: Path
    keys: FileKeyStore
    time: FakeTime = field(default_factory=FakeTime)

    def repository(
        self, name: str, server: TrustServer | None = None, *, retry: RetryPolicy | None = None
    ) -> Repository:
        """A client with its own trust cache (one CI job) and the shared keys."""
        policy = retry or RetryPolicy(sleep=self.time.sleep, clock=self.time.clock)
        return Repository(
            GUN,
            server=server or TrustServer(URL, http=self.http),
            cache=TrustCache(self.tmp / name),
            keys=self.keys,
            retry=policy,
        )

    def racing(
        self, rival: Callable[[int], object], conflicts: int | None, **kw: RetryPolicy
    ) -> tuple[Repository, RacingServer]:
        server = RacingServer(self.http, rival, conflicts)
        return self.repository("ours", server, **kw), server

    def signed(self) -> dict[str, FileMeta]:
        """What a brand-new client resolves: tag -> meta of the first role that signs it (docker's order)."""
        repo = Repository(
            GUN,
            server=TrustServer(URL, http=self.http),
            cache=TrustCache(self.tmp / "reader"),
            keys=self.keys,
        )
        trusted = repo.refresh()
        out: dict[str, FileMeta] = {}
        for role in trusted.role_order():
            for tag, m in trusted.targets[role].signed.targets.items():
                out.setdefault(tag, m)
        return out


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")))
    app = create_app(ServerSettings(), service=service)
    keys = FileKeyStore(tmp_path / "trust", CallbackPassphrases(lambda _kid, _alias: "test-passphrase"))
    with TestClient(app) as http:
        yield World(http, tmp_path, keys)
    store.close()


def rival_signs(world: World, *tags: str) -> Callable[[int], object]:
    """A rival that, at our n-th publish, signs ``rival-n`` (and *tags*) to meta(100 + n)."""
    rival = world.repository("rival")

    def act(n: int) -> None:
        rival.sign({f"rival-{n}": meta(100 + n), **{t: meta(100 + n) for t in tags}})

    return act


def test_sign_is_reapplied_to_fresh_state(world: World) -> None:
    world.repository("setup").sign({"base": meta(0)})
    # the rival also signs our tag 1.0, to another digest, each time: we must still sign ours
    ours, server = world.racing(rival_signs(world, "1.0"), conflicts=3)

    result = ours.sign({"1.0": meta(1), "2.0": meta(2)})

    assert result.roles == [roles.TARGETS] and not result.initialized
    assert len(server.sent) == 4  # one publish per attempt, both tags in each
    assert all(VERSION_CONFLICT_MESSAGE in a for a in server.answers[:3])
    assert server.answers[3] == "ok"
    bodies = server.sent_targets()
    for n, body in enumerate(bodies):
        assert body.targets["1.0"] == meta(1) and body.targets["2.0"] == meta(2)
        # built on the state the server had then: the rival's earlier updates are in it, not lost
        assert {f"rival-{k}" for k in range(1, n + 1)} <= set(body.targets)
    assert [b.version for b in bodies] == sorted({b.version for b in bodies})  # never the old bodies again
    assert len(world.time.sleeps) == 3
    for attempt, slept in enumerate(world.time.sleeps, start=1):
        assert 0 <= slept <= min(2.0, 0.05 * 2 ** (attempt - 1))

    signed = world.signed()
    assert signed["1.0"] == meta(1) and signed["2.0"] == meta(2) and signed["base"] == meta(0)
    assert {t: signed[t] for t in ("rival-1", "rival-2", "rival-3")} == {
        f"rival-{n}": meta(100 + n) for n in (1, 2, 3)
    }


def test_gives_up_when_the_budget_is_spent(world: World) -> None:
    world.repository("setup").sign({"base": meta(0)})
    policy = RetryPolicy(
        budget=30.0, base=0.25, cap=2.0, sleep=world.time.sleep, clock=world.time.clock, random=lambda: 1.0
    )
    ours, server = world.racing(rival_signs(world), conflicts=None, retry=policy)

    with pytest.raises(PublishConflictError) as caught:
        ours.sign({"1.0": meta(1)})

    # ceilings 0.25, 0.5, 1, then 2 s each, the last sleep cut to what is left of the 30 s
    assert world.time.sleeps == [0.25, 0.5, 1.0, *[2.0] * 14, 0.25]
    assert sum(world.time.sleeps) == 30.0
    assert len(server.sent) == caught.value.attempts == 19
    message = str(caught.value)
    assert message == (
        f"gave up publishing to {GUN} after 19 attempts in 30 s: the repository kept changing on the trust "
        "server (another publisher's update was stored first every time); run the command again"
    )
    assert "\n" not in message
    assert isinstance(caught.value.__cause__, PublishRejectedError)
    signed = world.signed()
    assert "1.0" not in signed and {f"rival-{n}" for n in range(1, 20)} <= set(signed)


def test_default_policy_is_bounded(world: World) -> None:
    """Real jitter (random.random), fake time: every sleep within its ceiling, all of them within 30 s."""
    world.repository("setup").sign({"base": meta(0)})
    ours, server = world.racing(rival_signs(world), conflicts=None)
    with pytest.raises(PublishConflictError) as caught:
        ours.sign({"1.0": meta(1)})
    assert sum(world.time.sleeps) <= 30.0 + 1e-9
    for attempt, slept in enumerate(world.time.sleeps, start=1):
        assert 0 <= slept <= min(2.0, 0.05 * 2 ** (attempt - 1))
    assert caught.value.attempts == len(server.sent) == len(world.time.sleeps) + 1
    assert "kept changing on the trust server" in str(caught.value)


@pytest.mark.parametrize(
    "status, body, error",
    [
        (
            400,
            error_body("INVALID_UPDATE", {"Name": "ErrBadTargets", "Error": {"Msg": "bad"}}),
            PublishRejectedError,
        ),
        (400, error_body("MALFORMED_UPLOAD"), PublishRejectedError),
        (500, error_body("UPDATING"), TrustServerUnavailableError),
        (503, error_body("UNAVAILABLE"), TrustServerUnavailableError),
        (401, error_body("UNAUTHORIZED"), PermissionDeniedError),
        (400, b"not json", PublishRejectedError),
    ],
)
def test_only_version_conflicts_are_retried(
    world: World, status: int, body: bytes, error: type[Exception]
) -> None:
    world.repository("setup").sign({"base": meta(0)})
    server = CannedServer(world.http, status, body)
    with pytest.raises(error) as caught:
        world.repository("ours", server).sign({"1.0": meta(1)})
    assert not isinstance(caught.value, PublishConflictError)
    assert server.calls == 1 and world.time.sleeps == []


@pytest.mark.parametrize(
    "body",
    [
        error_body("VERSION"),  # notar server
        b'{"errors":[{"code":"VERSION","message":"A newer version of metadata is already available.","detail":{}}]}\n',
    ],
    ids=["notar", "go-notary-server"],
)
def test_version_answers_are_retried(world: World, body: bytes) -> None:
    world.repository("setup").sign({"base": meta(0)})
    server = CannedServer(world.http, 400, body)
    policy = RetryPolicy(budget=1.0, sleep=world.time.sleep, clock=world.time.clock, random=lambda: 1.0)
    with pytest.raises(PublishConflictError):
        world.repository("ours", server, retry=policy).sign({"1.0": meta(1)})
    assert server.calls > 1 and sum(world.time.sleeps) == pytest.approx(1.0)


def test_revoke_is_reapplied(world: World) -> None:
    world.repository("setup").sign({"a": meta(1), "b": meta(2)})
    ours, server = world.racing(rival_signs(world), conflicts=2)
    assert ours.revoke(["a"]) == ["a"]
    assert len(server.sent) == 3
    signed = world.signed()
    assert "a" not in signed and signed["b"] == meta(2) and {"rival-1", "rival-2"} <= set(signed)


def test_revoke_all_removes_what_was_signed_when_asked(world: World) -> None:
    """A tag signed by someone else while the revocation retries is not revoked unasked."""
    world.repository("setup").sign({"a": meta(1), "b": meta(2)})
    ours, server = world.racing(rival_signs(world), conflicts=2)
    assert ours.revoke(None) == ["a", "b"]
    assert len(server.sent) == 3
    signed = world.signed()
    assert "a" not in signed and "b" not in signed and {"rival-1", "rival-2"} <= set(signed)


def test_revoke_of_a_tag_revoked_meanwhile_says_so(world: World) -> None:
    world.repository("setup").sign({"a": meta(1), "b": meta(2)})
    rival = world.repository("rival")
    ours, _server = world.racing(lambda _n: rival.revoke(["a"]), conflicts=1)
    with pytest.raises(NotSignedError, match="no signature for a that you can revoke"):
        ours.revoke(["a"])


def test_signer_changes_are_reapplied(world: World) -> None:
    world.repository("setup").sign({"base": meta(0)})
    ci, other = PrivateKey.generate(), PrivateKey.generate()
    world.keys.add(ci, role="ci")
    ours, server = world.racing(rival_signs(world), conflicts=2)
    assert ours.add_signer("ci", [ci.public_key]) is False
    assert len(server.sent) == 3
    trusted = world.repository("check").refresh()
    top = trusted.targets[roles.TARGETS].signed
    assert top.delegations.role("targets/ci") is not None
    assert {"base", "rival-1", "rival-2"} <= set(top.targets)  # the rival's tags in targets are kept

    # removing a signer while an admin adds another one: both changes end up in targets
    admin = world.repository("admin")
    ours, server = world.racing(lambda _n: admin.add_signer("other", [other.public_key]), conflicts=1)
    ours.remove_signer("ci", force=True)
    assert len(server.sent) == 2
    top = world.repository("check2").refresh().targets[roles.TARGETS].signed
    assert top.delegations.role("targets/ci") is None
    assert top.delegations.role("targets/other") is not None
    with pytest.raises(ClientError, match="is not a signer"):
        world.repository("again").remove_signer("ci")


def test_rotation_reapplies_the_same_new_key(world: World) -> None:
    world.repository("setup").sign({"base": meta(0)})
    before = {k.key_id for k in world.keys.list() if k.role == roles.TARGETS}
    ours, server = world.racing(rival_signs(world), conflicts=2)
    new_key = ours.rotate_key(roles.TARGETS)
    assert len(server.sent) == 3
    roots = [Envelope.from_bytes(f[roles.ROOT], expect=Root).signed for f in server.sent]
    assert [r.roles[roles.TARGETS].keyids for r in roots] == [[new_key.key_id]] * 3
    assert [r.version for r in roots] == [2, 2, 2]  # each built on the root of its attempt (v1)
    after = {k.key_id for k in world.keys.list() if k.role == roles.TARGETS}
    assert after - before == {new_key.key_id}  # one key made, not one per attempt
    trusted = world.repository("check").refresh()
    assert trusted.root.signed.roles[roles.TARGETS].keyids == [new_key.key_id]
    assert {"base", "rival-1", "rival-2"} <= set(trusted.targets[roles.TARGETS].signed.targets)


def test_retry_policy_limits() -> None:
    time = FakeTime()
    policy = RetryPolicy(budget=0, sleep=time.sleep, clock=time.clock)
    assert policy.delay(1, started=0.0) is None  # budget 0: one attempt only
    capped = RetryPolicy(budget=1e9, base=0.5, cap=4.0, clock=time.clock, random=lambda: 1.0)
    assert [capped.delay(n, started=0.0) for n in (1, 2, 3, 4, 5, 1000)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for bad in ({"budget": -1.0}, {"base": 0.0}, {"base": 1.0, "cap": 0.5}):
        with pytest.raises(ValueError, match="invalid retry policy"):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    assert str(PublishConflictError("a/b", 1, 0.2)).startswith(
        "gave up publishing to a/b after 1 attempt in 0 s:"
    )
