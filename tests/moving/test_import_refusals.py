"""What `notar import` refuses, with the step named, storing nothing: an old server serving tampered, rolled
back or expired trust data; a repository notar already has; an import body cut short or failing its last
check. The old server is the real Go notary-server; tampering is done on a copy of its files served from
memory (:class:`notar.client.MemorySource`, which answers like a Notary v1 server)."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path

import httpx
import pytest

from notar.client import TrustServer, trust_dir_keys
from notar.client.errors import RepositoryExistsError, TrustDataInvalidError
from notar.client.moving import fetch_history, move_repository
from notar.encoding import GoTime
from notar.keystore import EnvPassphrases, FileKeyStore
from notar.tuf import RepositoryHistory, roles
from tests.lab import NotarServer, NotaryServer, loopback_get
from tests.moving.scenarios import Repository, notary_cli_repository

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def old_repo(notary_server: NotaryServer, tmp_path_factory: pytest.TempPathFactory) -> Repository:
    """One repository on the Go notary-server, built once (each test imports it, or fails to)."""
    return notary_cli_repository(notary_server.url, notary_server.ca, tmp_path_factory.mktemp("old"))


@pytest.fixture
def keys(old_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> object:
    for role, value in old_repo.passphrases.items():
        monkeypatch.setenv(f"NOTARY_{role.upper()}_PASSPHRASE", value)
    return trust_dir_keys(FileKeyStore(old_repo.trust_dir, EnvPassphrases("notar")))


class Served:
    """*history* served as a (malicious) Notary v1 server serves it: each role's bytes at every one of its
    URLs (current, by hash, by version), whatever hash or version was asked for."""

    url = "https://old.example"

    def __init__(self, history: RepositoryHistory) -> None:
        self.history = history

    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        h = self.history
        if role == roles.ROOT:
            return h.roots[(version or len(h.roots)) - 1]
        return {roles.TIMESTAMP: h.timestamp, roles.SNAPSHOT: h.snapshot, **h.targets}[role]


def served(history: RepositoryHistory) -> Served:
    return Served(history)


def replace(history: RepositoryHistory, **changes: object) -> RepositoryHistory:
    fields = {
        "gun": history.gun,
        "roots": history.roots,
        "timestamp": history.timestamp,
        "snapshot": history.snapshot,
        "targets": dict(history.targets),
    }
    fields.update(changes)
    return RepositoryHistory(**fields)  # type: ignore[arg-type]


def flip_signature(data: bytes) -> bytes:
    doc = json.loads(data)
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[5] ^= 0x01
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(doc, separators=(",", ":")).encode()


def nothing_stored(notar_server: NotarServer, gun: str) -> bool:
    status, _ = loopback_get(f"{notar_server.url}/v2/{gun}/_trust/tuf/root.json", ca=notar_server.ca)
    return status == 404


def test_tampered_rolled_back_and_expired_data_is_refused_with_the_step(
    old_repo: Repository, notary_server: NotaryServer, notar_server: NotarServer, keys: object
) -> None:
    with TrustServer(notary_server.url, verify=str(notary_server.ca)) as old:
        history = fetch_history(old, old_repo.gun)
    cases = {
        "root version 2": replace(
            history, roots=(history.roots[0], flip_signature(history.roots[1]), *history.roots[2:])
        ),
        "targets/releases": replace(
            history,
            targets={**history.targets, "targets/releases": history.targets["targets/releases"] + b" "},
        ),
        "timestamp": replace(history, timestamp=flip_signature(history.timestamp)),
    }
    with TrustServer(notar_server.url, verify=str(notar_server.ca)) as notar:
        for step, bad in cases.items():
            with pytest.raises(TrustDataInvalidError) as caught:
                move_repository(old_repo.gun, served(bad), notar, keys=keys)  # type: ignore[arg-type]
            assert f"does not verify at {step}" in str(caught.value), (step, str(caught.value))
            assert nothing_stored(notar_server, old_repo.gun)

        # rolled back: the client trusted a newer timestamp than the one served now
        newer = json.loads(history.timestamp)
        newer["signed"]["version"] += 5
        with pytest.raises(
            TrustDataInvalidError,
            match=r"timestamp: version \d+ is lower than version \d+, which this client trusted before \(a rollback\)",
        ):
            move_repository(
                old_repo.gun,
                served(history),
                notar,
                keys=keys,  # type: ignore[arg-type]
                trusted={roles.TIMESTAMP: json.dumps(newer).encode()},
            )
        # expired: the same data, read 15 days later (the timestamp lives 14)
        later = GoTime.now().add(days=15)
        with pytest.raises(TrustDataInvalidError, match="does not verify at timestamp: .*expired"):
            move_repository(old_repo.gun, served(history), notar, keys=keys, clock=lambda: later)  # type: ignore[arg-type]
        assert nothing_stored(notar_server, old_repo.gun)


def test_an_import_is_all_or_nothing(
    old_repo: Repository, notary_server: NotaryServer, notar_server: NotarServer, keys: object
) -> None:
    with TrustServer(notary_server.url, verify=str(notary_server.ca)) as old:
        history = fetch_history(old, old_repo.gun)
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    body = {
        "roots": [b64(r) for r in history.roots],
        "timestamp": b64(history.timestamp),
        "snapshot": b64(history.snapshot),
        "targets": {r: b64(d) for r, d in history.targets.items()},
        # the last check fails: a "new" root that is the current one again (not signed for this server)
        "update": {"root": b64(history.roots[-1])},
    }
    url = f"{notar_server.url}/v2/{old_repo.gun}/_trust/import"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(notar_server.ca))) as http:
        answer = http.post(url, content=json.dumps(body).encode())
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["code"] == "INVALID_UPDATE"
        assert nothing_stored(notar_server, old_repo.gun)
        # a body cut short
        raw = json.dumps({**body, "update": {}}).encode()
        for cut in (1, len(raw) // 2, len(raw) - 1):
            answer = http.post(url, content=raw[:cut])
            assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == "MALFORMED_JSON"
        # odd input: wrong types, unknown fields, bad base64, bad role names
        for odd in (
            [],
            {"roots": "x"},
            {**body, "extra": 1},
            {**body, "timestamp": "!!"},
            {**body, "targets": {"../x": b64(b"{}")}},
            {**body, "roots": []},
        ):
            answer = http.post(url, content=json.dumps(odd).encode())
            assert 400 <= answer.status_code < 500, (odd, answer.text)
            assert answer.json()["errors"][0]["code"], answer.text
        assert nothing_stored(notar_server, old_repo.gun)


def test_a_repository_notar_has_is_not_overwritten(
    old_repo: Repository, notary_server: NotaryServer, notar_server: NotarServer, keys: object, tmp_path: Path
) -> None:
    other = notary_cli_repository(notary_server.url, notary_server.ca, tmp_path / "other", root_rotations=0)
    with (
        TrustServer(notary_server.url, verify=str(notary_server.ca)) as old,
        TrustServer(notar_server.url, verify=str(notar_server.ca)) as notar,
    ):
        keys_other = trust_dir_keys(FileKeyStore(other.trust_dir, EnvPassphrases("notar")))
        report = move_repository(other.gun, old, notar, keys=keys_other)
        assert report.stored[roles.ROOT] == other.root_version + 1
        before = loopback_get(
            f"{notar_server.url}/v2/{other.gun}/_trust/tuf/timestamp.json", ca=notar_server.ca
        )
        with pytest.raises(RepositoryExistsError, match="already has trust data.*--force"):
            move_repository(other.gun, old, notar, keys=keys_other)
        # --force replaces only with a history newer for every role: the old server's is not
        with pytest.raises(RepositoryExistsError, match="rollback"):
            move_repository(other.gun, old, notar, keys=keys_other, force=True)
        after = loopback_get(
            f"{notar_server.url}/v2/{other.gun}/_trust/tuf/timestamp.json", ca=notar_server.ca
        )
        assert before == after


def test_a_malicious_old_server_cannot_make_the_client_download_without_bound(
    old_repo: Repository, notary_server: NotaryServer, notar_server: NotarServer, keys: object
) -> None:
    """Red-team finding 2: 1,000 root versions of up to 100 MB each were all kept before any was verified.
    All of a repository's files together are capped (MAX_HISTORY_BYTES)."""
    from notar.client.moving import MAX_HISTORY_BYTES

    with TrustServer(notary_server.url, verify=str(notary_server.ca)) as old:
        history = fetch_history(old, old_repo.gun)
    newest = json.loads(history.roots[-1])
    newest["signed"]["version"] = 1000
    fat = b"x" * (4 * 1024 * 1024)
    roots = (fat,) * 999 + (json.dumps(newest).encode(),)
    source = served(replace(history, roots=roots))
    with (
        TrustServer(notar_server.url, verify=str(notar_server.ca)) as notar,
        pytest.raises(TrustDataInvalidError, match=f"larger than the {MAX_HISTORY_BYTES} bytes"),
    ):
        move_repository(old_repo.gun, source, notar, keys=keys, dry_run=True)  # type: ignore[arg-type]
