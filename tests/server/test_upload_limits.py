"""Red-team finding: a 60 MB upload of small JSON integers raised server RSS from ~120 to ~420 MB for 4 s.

Each uploaded file is now capped by role while it streams in, before any JSON is parsed: the timestamp at
1 MiB (Go's notary.MaxTimestampSize: Go clients download no bigger timestamp), every other role at
``max_metadata_bytes`` (default 16 MiB, at most Go's notary.MaxDownloadSize of 100 MiB). Over the cap is
413 TOO_LARGE, as for the whole body (``max_upload_bytes``, default 64 MiB; notary-server has no cap).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

import notar.server.app as server_app
from notar.crypto import PublicKey
from notar.server.app import (
    GO_MAX_DOWNLOAD_BYTES,
    LARGE_UPLOAD_BYTES,
    MAX_METADATA_BYTES,
    MAX_TIMESTAMP_BYTES,
    ServerSettings,
    create_app,
)
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from tests.lab import child_env, run_notar_server
from tests.server.tuf_builders import Repo, multipart

GUN = "example.com/team/limits"
TUF = f"/v2/{GUN}/_trust/tuf/"


def test_limits_match_the_go_client() -> None:
    # github.com/theupdateframework/notary const.go: MaxDownloadSize = 100 << 20, MaxTimestampSize = 1 << 20
    assert GO_MAX_DOWNLOAD_BYTES == 100 << 20 and MAX_TIMESTAMP_BYTES == 1 << 20
    assert MAX_METADATA_BYTES == 16 << 20 <= GO_MAX_DOWNLOAD_BYTES
    defaults = ServerSettings()
    assert defaults.max_metadata_bytes == MAX_METADATA_BYTES < defaults.max_upload_bytes == 64 << 20


def make_client(tmp_path: Path, settings: ServerSettings) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")))
    with TestClient(create_app(settings, service=service)) as c:
        yield c
    store.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from make_client(tmp_path, ServerSettings())  # the defaults


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The roles of every upload that reached JSON parsing (``check_parts``)."""
    calls: list[list[str]] = []
    check = server_app.check_parts

    def spy(parts: list[tuple[str, bytes]]) -> dict[str, bytes]:
        calls.append([role for role, _ in parts])
        return check(parts)

    monkeypatch.setattr(server_app, "check_parts", spy)
    return calls


def post(client: TestClient, files: dict[str, bytes]) -> tuple[int, dict[str, object]]:
    body, ctype = multipart(files)
    r = client.post(TUF, content=body, headers={"Content-Type": ctype})
    return r.status_code, (r.json() if r.content else {})


def ints(size: int) -> bytes:
    """The red team's payload: a JSON document of exactly ``size`` bytes, mostly small integers."""
    head, tail = b'{"signed":{"n":[', b'0]},"signatures":[]}'
    body = b"1," * ((size - len(head) - len(tail)) // 2)
    doc = head + body + tail
    return doc + b" " * (size - len(doc))


def sparse(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes, mostly one long string (few values)."""
    head, tail = b'{"signed":{"n":"', b'"},"signatures":[]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def published(client: TestClient) -> Repo:
    def key(role: str) -> PublicKey:
        return PublicKey.from_dict(client.get(TUF + f"{role}.key").json())

    repo = Repo(GUN, timestamp_key=key("timestamp"), snapshot_key=key("snapshot"))
    assert post(client, repo.first_publish("1.0"))[0] == 200
    return repo


def feed_count(client: TestClient) -> int:
    return int(client.get("/v2/_trust/changefeed?records=100").json()["count"])


@pytest.mark.parametrize("role", ["root", "targets", "targets/releases", "snapshot"])
def test_metadata_over_the_cap_is_too_large_before_parsing(
    client: TestClient, parsed: list[list[str]], role: str
) -> None:
    published(client)
    status, payload = post(client, {role: ints(MAX_METADATA_BYTES + 1)})
    assert status == 413, payload
    assert payload["errors"] == [
        {
            "code": "TOO_LARGE",
            "message": "The upload is larger than this server accepts.",
            "detail": f"{role} metadata is limited to {MAX_METADATA_BYTES} bytes",
        }
    ]
    assert parsed == [["root", "targets"]]  # only the first publish was ever parsed
    assert feed_count(client) == 1
    # at the cap exactly, the file is read; then refused for what it is: far denser in JSON values than
    # any metadata (one per 2 bytes), so refused before json.loads could take ~20x its size in memory
    status, payload = post(client, {role: ints(MAX_METADATA_BYTES)})
    assert status == 413 and parsed[-1] == [role], payload
    assert "too many JSON values for its size" in str(payload["errors"])
    assert feed_count(client) == 1


@pytest.mark.parametrize("unit", [b"{},", b"[],", b'"",', b"1,"])
def test_documents_dense_in_values_are_refused_before_parsing(client: TestClient, unit: bytes) -> None:
    published(client)
    doc = b'{"signed":{"n":[' + unit * (2_000_000 // len(unit)) + b'0]},"signatures":[]}'
    status, payload = post(client, {"targets": doc})
    assert status == 413
    assert payload["errors"][0]["code"] == "TOO_LARGE"  # type: ignore[index]
    assert "too many JSON values for its size" in payload["errors"][0]["detail"]  # type: ignore[index]
    assert feed_count(client) == 1


def test_timestamp_over_go_limit_is_too_large(client: TestClient, parsed: list[list[str]]) -> None:
    repo = published(client)
    new_targets = repo.sign_targets("2.0", version=2).data
    status, payload = post(client, {"targets": new_targets, "timestamp": ints(MAX_TIMESTAMP_BYTES + 1)})
    assert status == 413
    assert payload["errors"][0]["detail"] == f"timestamp metadata is limited to {MAX_TIMESTAMP_BYTES} bytes"  # type: ignore[index]
    assert len(parsed) == 1 and feed_count(client) == 1
    # up to the cap the uploaded timestamp is parsed and then ignored, as notary does
    assert post(client, {"targets": new_targets, "timestamp": sparse(MAX_TIMESTAMP_BYTES)})[0] == 200
    assert feed_count(client) == 2


def test_the_cap_is_configurable_and_the_whole_body_still_counts(tmp_path: Path) -> None:
    settings = ServerSettings(max_metadata_bytes=64 * 1024, max_upload_bytes=256 * 1024)
    for client in make_client(tmp_path, settings):
        published(client)
        status, payload = post(client, {"targets": ints(64 * 1024 + 1)})
        assert (
            status == 413 and payload["errors"][0]["detail"] == "targets metadata is limited to 65536 bytes"
        )  # type: ignore[index]
        # five parts under the per-file cap, over the whole-body cap
        files = {f"targets/d{i}": ints(60 * 1024) for i in range(5)}
        status, payload = post(client, files)
        assert status == 413 and payload["errors"][0]["detail"] == "uploads are limited to 262144 bytes"  # type: ignore[index]


def test_cli_states_the_limits_and_refuses_more_than_go_downloads(tmp_path: Path) -> None:
    env = child_env(home=tmp_path, NOTAR_SERVER_KEY_PASSPHRASE="x" * 20)
    argv = [sys.executable, "-m", "notar", "server"]
    help_text = " ".join(
        subprocess.run([*argv, "--help"], capture_output=True, text=True, env=env, check=True).stdout.split()
    )
    assert "--max-metadata-bytes" in help_text and "[default: 16777216; 1024<=x<=104857600]" in help_text
    assert "413 TOO_LARGE" in help_text and "capped at 1048576" in help_text
    r = subprocess.run(
        [*argv, "--data-dir", str(tmp_path / "d"), "--max-metadata-bytes", str(GO_MAX_DOWNLOAD_BYTES + 1)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert r.returncode == 2 and "--max-metadata-bytes" in r.stderr and "Traceback" not in r.stderr


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.peers
def test_red_team_upload_no_longer_balloons_the_server(tmp_path: Path) -> None:
    """The red team's request against a `notar server` process: 60 MB of small integers as targets."""
    with run_notar_server(None, tmp_path / "server") as server:
        netloc = urllib.parse.urlsplit(server.url).netloc

        def request(method: str, path: str, body: bytes | None = None) -> tuple[int | None, bytes]:
            conn = http.client.HTTPConnection(netloc, timeout=60)
            try:
                headers = {"Content-Type": ctype} if body is not None else {}
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                return None, b""  # the server answered early and closed while we were still sending
            finally:
                conn.close()

        keys = {}
        for role in ("timestamp", "snapshot"):
            status, raw = request("GET", TUF + f"{role}.key")
            assert status == 200
            keys[role] = PublicKey.from_dict(json.loads(raw))
        repo = Repo(GUN, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
        body, ctype = multipart(repo.first_publish("1.0"))
        assert request("POST", TUF, body) == (200, b"")
        before = _peak_rss_kib(server.pid)

        body, ctype = multipart({"targets": ints(60_000_000)})
        status, raw = request("POST", TUF, body)
        assert status in (413, None), raw
        if status == 413:
            assert json.loads(raw)["errors"][0]["code"] == "TOO_LARGE"
        grown_mib = (_peak_rss_kib(server.pid) - before) / 1024
        assert grown_mib < 100, f"server peak RSS grew by {grown_mib:.0f} MiB"  # was ~300
        assert request("GET", "/_notary_server/health") == (200, b"{}")
        status, raw = request("GET", "/v2/_trust/changefeed?records=10")
        assert status == 200 and json.loads(raw)["count"] == 1


def test_large_updates_are_parsed_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing costs a multiple of its input: updates over LARGE_UPLOAD_BYTES never parse concurrently."""
    running = {"large": 0, "small": 0}
    most = {"large": 0, "small": 0}
    finished: list[str] = []
    lock = threading.Lock()

    def slow_check(parts: list[tuple[str, bytes]]) -> dict[str, bytes]:
        kind = "large" if sum(len(d) for _, d in parts) > LARGE_UPLOAD_BYTES else "small"
        with lock:
            running[kind] += 1
            most[kind] = max(most[kind], running[kind])
        time.sleep(0.6 if kind == "large" else 0.05)
        with lock:
            running[kind] -= 1
            finished.append(kind)
        return {}

    monkeypatch.setattr(server_app, "check_parts", slow_check)
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    app = create_app(ServerSettings(), service=TrustService(store, DatabaseKeyService(store, Secret("pw"))))

    async def upload(client: httpx.AsyncClient, size: int, delay: float) -> int:
        await asyncio.sleep(delay)
        body, ctype = multipart({"targets": ints(size)})
        r = await client.post(TUF, content=body, headers={"Content-Type": ctype})
        return r.status_code

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notar") as client:
            jobs = [upload(client, LARGE_UPLOAD_BYTES + 1000, 0) for _ in range(3)]
            jobs += [upload(client, 4000, 0.1 + i * 0.01) for i in range(3)]
            return list(await asyncio.gather(*jobs))

    try:
        statuses = asyncio.run(main())
    finally:
        store.close()
    assert statuses == [400] * 6  # an empty update for a GUN without root: notary's ErrValidation
    assert most["large"] == 1
    assert most["small"] > 1  # small updates are not serialised
    # nor do they queue behind large ones: all are done before the second large one
    order = {kind: [i for i, k in enumerate(finished) if k == kind] for kind in ("small", "large")}
    assert len(order["small"]) == 3 and order["small"][-1] < order["large"][1], finished
