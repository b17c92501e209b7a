"""notar.registry.referrers: finding and adding referrers, and the merge-and-retry of shared tags.

The in-process fake serves what a real registry cannot be made to do on cue (a referrers API, a stale
writer at the worst moment); the real Debian ``docker-registry`` 2.8 (no referrers API) proves the tag
schema and the concurrency claims, with skopeo as the independent reader of what ended up in the tag.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from notar.cosign import append_signature, sign_image, verify_signatures
from notar.crypto import PrivateKey
from notar.registry import (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    ConcurrentUpdateError,
    InvalidDigestError,
    Manifest,
    RegistryClient,
    RegistryProtocolError,
    RegistryUnavailableError,
    RetryPolicy,
    Update,
    add_referrer,
    append_cosign_signature,
    cosign_signature_tag,
    list_referrers,
    read_cosign_signatures,
    referrers_tag,
    update_tagged_manifest,
)
from notar.registry.referrers import ReferrersSource
from tests.lab import Registry
from tests.registry.artifacts import NOTATION_SIGNATURE, SIGSTORE_BUNDLE, artifact, push_image
from tests.registry.fakes import FakeRegistry, sha256
from tests.registry.images import Image, Skopeo, make_image

PROBE = f"sha256:{'0' * 64}"
REPO = "team/app"


def no_sleep() -> RetryPolicy:
    return RetryPolicy(sleep=lambda _s: None)


def index_entries(data: bytes) -> list[dict[str, Any]]:
    entries = json.loads(data)["manifests"]
    assert isinstance(entries, list)
    return entries


# ---------------------------------------------------------------------------------------- tags


def test_referrers_tag_and_cosign_tag_follow_the_schemas() -> None:
    hex64 = "ab" * 32
    assert referrers_tag(f"sha256:{hex64}") == f"sha256-{hex64}"
    assert referrers_tag(f"sha512:{'cd' * 64}") == f"sha512-{('cd' * 64)[:64]}"  # truncated to 64
    assert cosign_signature_tag(f"sha256:{hex64}") == f"sha256-{hex64}.sig"
    with pytest.raises(InvalidDigestError):
        referrers_tag("sha256:xyz")


# ------------------------------------------------------------------------- fake: probe and API


def test_without_the_api_the_tag_schema_is_used_and_the_probe_is_asked_once() -> None:
    fake, image = FakeRegistry(), make_image("probe once\n")
    with fake.client() as client:
        subject = push_image(client, REPO, image, "1.0")
        assert list_referrers(client, REPO, subject).referrers == ()
        first, _ = artifact(image, b"sig-1")
        second, _ = artifact(image, b"sig-2", artifact_type=SIGSTORE_BUNDLE)
        for data, blobs in (
            artifact(image, b"sig-1"),
            artifact(image, b"sig-2", artifact_type=SIGSTORE_BUNDLE),
        ):
            added = add_referrer(client, REPO, data, blobs=blobs)
            assert added.source is ReferrersSource.TAG_SCHEMA and added.subject == subject
        found = list_referrers(client, REPO, subject)
        assert found.source is ReferrersSource.TAG_SCHEMA
        assert [r.digest for r in found.referrers] == [sha256(first), sha256(second)]
        only = list_referrers(client, REPO, subject, artifact_type=NOTATION_SIGNATURE)
        assert [r.digest for r in only.referrers] == [sha256(first)]
        assert only.referrers[0].annotations == {"org.opencontainers.image.created": "2026-12-02T00:00:00Z"}
    probes = [r for r in fake.registry_requests() if r.path == f"/v2/{REPO}/referrers/{PROBE}"]
    assert len(probes) == 1


def test_a_probe_that_only_says_the_repository_is_unknown_is_not_cached() -> None:
    fake = FakeRegistry()
    unknown = JSONResponse(
        {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}, 404
    )
    fake.override("GET", f"/v2/new/repo/referrers/{PROBE}", lambda _r: unknown)
    with fake.client() as client:
        assert not client.referrers_api_supported("new/repo")
        assert not client.referrers_api_supported("new/repo")
    assert len([r for r in fake.registry_requests() if "/referrers/" in r.path]) == 2


def _api(fake: FakeRegistry, subject: str, pages: list[list[object]]) -> None:
    """Serve a referrers API on the fake: the probe, and *pages* for *subject* linked by ``?page=N``."""
    empty = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": []})
    fake.override(
        "GET", f"/v2/{REPO}/referrers/{PROBE}", lambda _r: Response(empty, media_type=MEDIA_TYPE_OCI_INDEX)
    )

    def page(request: Request) -> Response:
        n = int(request.query_params.get("page", "0"))
        body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": pages[n]})
        headers = {}
        if n + 1 < len(pages):
            headers["Link"] = f'</v2/{REPO}/referrers/{subject}?page={n + 1}>; rel="next"'
        return Response(body, media_type=MEDIA_TYPE_OCI_INDEX, headers=headers)

    fake.override("GET", f"/v2/{REPO}/referrers/{subject}", page)


def test_with_the_api_pages_are_followed_filtered_and_bad_entries_reported() -> None:
    fake, image = FakeRegistry(), make_image("api\n")
    notation = {
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "digest": sha256(b"n"),
        "size": 1,
        "artifactType": NOTATION_SIGNATURE,
    }
    bundle = {
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "digest": sha256(b"b"),
        "size": 1,
        "artifactType": SIGSTORE_BUNDLE,
    }
    _api(fake, image.manifest.digest, [[bundle, {"digest": "nonsense"}], [notation, notation]])
    with fake.client() as client:
        assert client.referrers_api_supported(REPO)
        found = list_referrers(client, REPO, image.manifest.digest, artifact_type=NOTATION_SIGNATURE)
    assert found.source is ReferrersSource.API
    assert [r.digest for r in found.referrers] == [notation["digest"]]  # filtered, duplicates once
    assert len(found.skipped) == 1 and "entry 1" in found.skipped[0]
    asked = [r for r in fake.registry_requests() if r.path.endswith(image.manifest.digest)]
    assert asked[0].query.get("artifactType") == [NOTATION_SIGNATURE]  # then the registry's next links
    assert [r.query.get("page") for r in asked] == [None, ["1"]]


def test_with_the_api_adding_is_one_put_of_the_manifest() -> None:
    fake, image = FakeRegistry(), make_image("api add\n")
    _api(fake, image.manifest.digest, [[]])
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"sig")
        added = add_referrer(client, REPO, data, blobs=blobs)
    assert added.source is ReferrersSource.API and added.index is None
    puts = [r.path for r in fake.registry_requests() if r.method == "PUT" and "/manifests/" in r.path]
    assert puts[-1] == f"/v2/{REPO}/manifests/{sha256(data)}"
    assert not any("sha256-" in p for p in puts)


# ------------------------------------------------------------------ fake: the merge discipline


def _stale_writer(
    fake: FakeRegistry, tag: str, entries: list[dict[str, Any]], *, times: int
) -> Callable[[float], None]:
    """A ``sleep`` that, the first *times* calls, lets another writer put an index of *entries* at *tag*:
    a writer that read the tag before our PUT and writes after it."""
    calls = 0

    def sleep(_seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls <= times:
            data = json.dumps(
                {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": entries}
            ).encode()
            fake.add_manifest(REPO, tag, data, MEDIA_TYPE_OCI_INDEX)

    return sleep


def test_a_write_lost_to_a_stale_writer_is_noticed_after_the_settle_time_and_merged_again() -> None:
    fake, image = FakeRegistry(), make_image("stale writer\n")
    tag = referrers_tag(image.manifest.digest)
    theirs = {
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "digest": sha256(b"theirs"),
        "size": 6,
        "artifactType": SIGSTORE_BUNDLE,
    }
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        # the first sleep is our settle time after the first PUT: the stale write lands then
        added = add_referrer(
            client,
            REPO,
            data,
            blobs=blobs,
            retry=RetryPolicy(sleep=_stale_writer(fake, tag, [theirs], times=1)),
        )
        assert added.index is not None and added.index.writes == 2 and len(added.index.replaced) == 1
        final = client.get_manifest(REPO, tag)
    assert [e["digest"] for e in index_entries(final.data)] == [theirs["digest"], sha256(data)]


def test_a_5xx_about_the_shared_tag_is_ridden_out_but_an_unreachable_registry_is_not() -> None:
    """docker-registry 2.8 answers 500 ("invalid checksum digest format") to a read that meets a write."""
    fake, image = FakeRegistry(), make_image("500 once\n")
    tag = referrers_tag(image.manifest.digest)
    path = f"/v2/{REPO}/manifests/{tag}"
    failures = iter([JSONResponse({"errors": [{"code": "UNKNOWN", "message": "unknown error"}]}, 500)] * 2)

    def flaky(request: Request) -> Response:
        answer = next(failures, None)
        if answer is None:
            del fake.overrides[("GET", path)]
            return JSONResponse(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}, 404
            )
        return answer

    fake.override("GET", path, flaky)
    slept: list[float] = []
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        added = add_referrer(client, REPO, data, blobs=blobs, retry=RetryPolicy(sleep=slept.append))
    assert added.index is not None and added.index.writes == 1
    assert len(slept) == 3  # two backoffs after the 500s, one settle time
    with RegistryClient("http://127.0.0.1:9", timeout=2) as closed, pytest.raises(RegistryUnavailableError):
        update_tagged_manifest(closed, REPO, tag, lambda _m: None, retry=RetryPolicy(sleep=slept.append))
    assert len(slept) == 3  # no retry for a connection that cannot be made


def test_an_entry_lost_then_merged_back_by_another_writer_is_trusted_only_after_a_settle_time() -> None:
    fake, image = FakeRegistry(), make_image("lost and found\n")
    tag = referrers_tag(image.manifest.digest)
    theirs = {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": sha256(b"theirs"), "size": 6}
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        ours = {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": sha256(data), "size": len(data)}
        script = [[theirs], [theirs, ours], None]  # settle: a stale write; backoff: a writer merges ours back
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            entries = script.pop(0)
            if entries is not None:
                body = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": entries}
                fake.add_manifest(REPO, tag, json.dumps(body).encode(), MEDIA_TYPE_OCI_INDEX)

        added = add_referrer(client, REPO, data, blobs=blobs, retry=RetryPolicy(sleep=sleep))
    assert added.index is not None and added.index.writes == 1  # ours came back without our rewrite
    assert len(slept) == 3 and not script  # ... and was confirmed one settle time later


def test_an_entry_overwritten_every_time_gives_up_after_max_writes() -> None:
    fake, image = FakeRegistry(), make_image("always lost\n")
    tag = referrers_tag(image.manifest.digest)
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        retry = RetryPolicy(max_writes=3, sleep=_stale_writer(fake, tag, [], times=1000))
        with pytest.raises(ConcurrentUpdateError, match="overwritten by concurrent writers 3 times"):
            add_referrer(client, REPO, data, blobs=blobs, retry=retry)


def test_entries_we_cannot_read_and_fields_we_do_not_know_are_kept_as_found() -> None:
    fake, image = FakeRegistry(), make_image("keep everything\n")
    tag = referrers_tag(image.manifest.digest)
    cosign = {
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "digest": sha256(b"cosign"),
        "size": 6,
        "artifactType": SIGSTORE_BUNDLE,
        "annotations": {"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
        "x-unknown": [1, {"nested": True}],
    }
    broken = {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": "not a digest"}
    existing = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [cosign, broken],
        "annotations": {"k": "v"},
    }
    fake.add_manifest(REPO, tag, json.dumps(existing).encode(), MEDIA_TYPE_OCI_INDEX)
    with fake.client() as client:
        push_image(client, REPO, image)
        before = list_referrers(client, REPO, image.manifest.digest)
        assert [r.digest for r in before.referrers] == [cosign["digest"]] and len(before.skipped) == 1
        data, blobs = artifact(image, b"ours")
        add_referrer(client, REPO, data, blobs=blobs, retry=no_sleep())
        after = json.loads(client.get_manifest(REPO, tag).data)
    assert after["manifests"][:2] == [cosign, broken]
    assert after["manifests"][2]["digest"] == sha256(data) and after["annotations"] == {"k": "v"}


def test_a_tag_that_is_not_an_index_is_never_rewritten() -> None:
    fake, image = FakeRegistry(), make_image("not an index\n")
    tag = referrers_tag(image.manifest.digest)
    fake.add_manifest(REPO, tag, image.manifest.data, MEDIA_TYPE_OCI_MANIFEST)
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        with pytest.raises(RegistryProtocolError, match="not an OCI index"):
            add_referrer(client, REPO, data, blobs=blobs, retry=no_sleep())
    assert not [r for r in fake.registry_requests() if r.method == "PUT" and r.path.endswith(tag)]


def test_adding_again_writes_nothing_and_a_manifest_without_subject_is_refused() -> None:
    fake, image = FakeRegistry(), make_image("twice\n")
    with fake.client() as client:
        push_image(client, REPO, image)
        data, blobs = artifact(image, b"ours")
        assert add_referrer(client, REPO, data, blobs=blobs, retry=no_sleep()).index.writes == 1  # type: ignore[union-attr]
        assert add_referrer(client, REPO, data, blobs=blobs, retry=no_sleep()).index.writes == 0  # type: ignore[union-attr]
        with pytest.raises(RegistryProtocolError, match="no subject"):
            add_referrer(client, REPO, image.manifest.data)


# ------------------------------------------------------------------------- the real registry

WORKERS = 10


@pytest.fixture
def repo() -> str:
    return f"referrers/{uuid.uuid4().hex[:12]}"  # the registry is shared by the session


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path)


class _CollidingClient(RegistryClient):
    """A client whose first PUT of a shared tag waits until every writer got there: all of them read the
    tag before any of them writes, the worst interleaving, on every run."""

    def __init__(self, registry: str, barrier: threading.Barrier, suffix: str) -> None:
        super().__init__(registry)
        self._barrier, self._suffix, self._waited = barrier, suffix, False

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        if ref.endswith(self._suffix) and not self._waited:
            self._waited = True
            self._barrier.wait(timeout=60)
        return super().put_manifest(repo, ref, data, media_type)


def _cosign_bundle_entry(client: RegistryClient, repo: str, image: Image) -> dict[str, Any]:
    """What cosign v3 writes on a registry without the API: a bundle referrer in the tag schema index."""
    data, blobs = artifact(
        image,
        b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}',
        artifact_type=SIGSTORE_BUNDLE,
        layer_type=SIGSTORE_BUNDLE,
        annotations={"dev.sigstore.bundle.content": "dsse-envelope"},
    )
    for digest, blob in blobs.items():
        client.push_blob(repo, digest, blob, len(blob))
    client.put_manifest(repo, sha256(data), data, MEDIA_TYPE_OCI_MANIFEST)
    entry = {
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "size": len(data),
        "digest": sha256(data),
        "artifactType": SIGSTORE_BUNDLE,
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
    }
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [entry]}
    client.put_manifest(
        repo, referrers_tag(image.manifest.digest), json.dumps(index).encode(), MEDIA_TYPE_OCI_INDEX
    )
    return entry


def _in_parallel(work: Callable[[int], Any], n: int = WORKERS) -> list[Any]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(work, range(n)))


@pytest.fixture
def signed_subject(registry: Registry, repo: str) -> Iterator[tuple[RegistryClient, Image, dict[str, Any]]]:
    """An image in *repo* whose referrers index already holds a cosign bundle entry."""
    image = make_image(f"subject {repo}\n")
    with RegistryClient(registry.host) as client:
        push_image(client, repo, image, "1.0")
        yield client, image, _cosign_bundle_entry(client, repo, image)


@pytest.mark.peers
def test_real_registry_has_no_referrers_api_and_the_tag_schema_round_trips(
    registry: Registry,
    repo: str,
    skopeo: Skopeo,
    signed_subject: tuple[RegistryClient, Image, dict[str, Any]],
) -> None:
    client, image, cosign = signed_subject
    assert client.referrers_api_supported(repo) is False
    data, blobs = artifact(image, b"one signature")
    added = add_referrer(client, repo, data, blobs=blobs)
    assert added.source is ReferrersSource.TAG_SCHEMA and added.index is not None
    found = list_referrers(client, repo, image.manifest.digest, artifact_type=NOTATION_SIGNATURE)
    assert [r.digest for r in found.referrers] == [sha256(data)]
    raw = skopeo.inspect_raw(f"{registry.host}/{repo}:{referrers_tag(image.manifest.digest)}")
    assert index_entries(raw) == [cosign, {**added.referrer.to_json()}]
    # the replaced index is left in the registry (see the module docstring), still readable by digest
    assert client.get_manifest(repo, added.index.replaced[0]).digest == added.index.replaced[0]


@pytest.mark.peers
def test_ten_colliding_adders_keep_all_ten_entries_and_cosigns(
    registry: Registry,
    repo: str,
    skopeo: Skopeo,
    signed_subject: tuple[RegistryClient, Image, dict[str, Any]],
) -> None:
    _, image, cosign = signed_subject
    barrier = threading.Barrier(WORKERS)
    signatures = [artifact(image, f"signature {i}".encode()) for i in range(WORKERS)]

    def add(i: int) -> int:
        data, blobs = signatures[i]
        with _CollidingClient(registry.host, barrier, referrers_tag(image.manifest.digest)) as client:
            added = add_referrer(client, repo, data, blobs=blobs)
        assert added.index is not None
        return added.index.writes

    writes = _in_parallel(add)
    raw = skopeo.inspect_raw(f"{registry.host}/{repo}:{referrers_tag(image.manifest.digest)}")
    entries = index_entries(raw)
    assert entries[0] == cosign
    assert sorted(e["digest"] for e in entries[1:]) == sorted(sha256(d) for d, _ in signatures)
    assert sum(writes) > WORKERS  # the collision happened, and was repaired


@pytest.mark.peers
def test_the_same_collision_without_the_discipline_loses_entries(
    registry: Registry, repo: str, signed_subject: tuple[RegistryClient, Image, dict[str, Any]]
) -> None:
    """The control: read, append, write once (what notation, oras and cosign do) keeps one writer's entry."""
    _, image, cosign = signed_subject
    tag = referrers_tag(image.manifest.digest)
    barrier = threading.Barrier(WORKERS)

    def naive(i: int) -> None:
        data, blobs = artifact(image, f"naive {i}".encode())
        with _CollidingClient(registry.host, barrier, tag) as client:
            for digest, blob in blobs.items():
                client.push_blob(repo, digest, blob, len(blob))
            client.put_manifest(repo, sha256(data), data, MEDIA_TYPE_OCI_MANIFEST)
            index = json.loads(client.get_manifest(repo, tag).data)
            index["manifests"].append(
                {"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": sha256(data), "size": len(data)}
            )
            client.put_manifest(repo, tag, json.dumps(index).encode(), MEDIA_TYPE_OCI_INDEX)

    _in_parallel(naive)
    with RegistryClient(registry.host) as client:
        entries = index_entries(client.get_manifest(repo, tag).data)
    assert entries[0] == cosign and len(entries) == 2  # nine of ten signatures lost


@pytest.mark.peers
def test_ten_free_running_adders_keep_all_entries(
    registry: Registry, repo: str, signed_subject: tuple[RegistryClient, Image, dict[str, Any]]
) -> None:
    _, image, cosign = signed_subject
    signatures = [artifact(image, f"free {i}".encode()) for i in range(WORKERS)]

    def add(i: int) -> None:
        data, blobs = signatures[i]
        with RegistryClient(registry.host) as client:
            add_referrer(client, repo, data, blobs=blobs)

    _in_parallel(add)
    with RegistryClient(registry.host) as client:
        found = list_referrers(client, repo, image.manifest.digest)
    assert found.referrers[0].digest == cosign["digest"]
    assert sorted(r.digest for r in found.referrers[1:]) == sorted(sha256(d) for d, _ in signatures)


# ------------------------------------------------------------------------------------- cosign


def _cosign_appender(signature: Any) -> Callable[[bytes | None, bytes | None], Update | None]:
    def append(manifest: bytes | None, config: bytes | None) -> Update | None:
        made = append_signature(manifest, config, signature)
        return Update(made.manifest, MEDIA_TYPE_OCI_MANIFEST, made.blobs) if made.appended else None

    return append


@pytest.mark.peers
def test_parallel_cosign_appends_keep_every_signature(registry: Registry, repo: str, skopeo: Skopeo) -> None:
    image = make_image(f"cosign {repo}\n")
    keys = [PrivateKey.generate() for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, image, "1.0")
        first = sign_image(f"{registry.host}/{repo}", digest, PrivateKey.generate())
        append_cosign_signature(client, repo, digest, _cosign_appender(first), retry=no_sleep())

    def add(i: int) -> int:
        signature = sign_image(f"{registry.host}/{repo}", digest, keys[i])
        with _CollidingClient(registry.host, barrier, ".sig") as client:
            return append_cosign_signature(client, repo, digest, _cosign_appender(signature)).writes

    writes = _in_parallel(add)
    assert sum(writes) > WORKERS
    with RegistryClient(registry.host) as client:
        found = read_cosign_signatures(client, repo, digest)
    assert found.manifest is not None and not found.missing
    assert skopeo.inspect_raw(f"{registry.host}/{repo}:{cosign_signature_tag(digest)}") == found.manifest.data
    layers = json.loads(found.manifest.data)["layers"]
    assert len(layers) == WORKERS + 1 and layers[0]["digest"] == first.digest  # the first one is still first
    for key in keys:
        pem = key.public_key.to_crypto().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        results = verify_signatures(found.manifest.data, found.payloads, pem, digest=digest)
        assert sum(r.verified for r in results) == 1  # each key signed exactly one layer


def test_update_tagged_manifest_reports_a_change_that_is_already_there() -> None:
    fake = FakeRegistry()
    fake.add_manifest(REPO, "shared", b'{"schemaVersion":2,"manifests":[]}', MEDIA_TYPE_OCI_INDEX)
    seen: list[Manifest | None] = []

    def change(current: Manifest | None) -> Update | None:
        seen.append(current)
        return None

    with fake.client() as client:
        result = update_tagged_manifest(client, REPO, "shared", change, retry=no_sleep())
    assert result.writes == 0 and result.digest == sha256(b'{"schemaVersion":2,"manifests":[]}')
    assert len(seen) == 1
