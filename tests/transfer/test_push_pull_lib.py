"""The library API (what the release pipeline calls) against the in-process fake registry and a
stub trust repository: the push order, the pull's refusal of anything unsigned or altered."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from notar.client import NotSignedError, Repository, SignResult, TargetMatch
from notar.registry import DigestMismatchError, parse_reference
from notar.transfer import (
    BlobCorruptError,
    DestinationError,
    SigningError,
    open_source,
    pull_image,
    push_image,
)
from notar.tuf import FileMeta
from tests.registry.fakes import REGISTRY_HOST, FakeRegistry
from tests.registry.images import make_image, make_index, sha256, write_oci_layout
from tests.transfer.archives import saved_image, write_docker_archive

REF = parse_reference(f"{REGISTRY_HOST}/team/app:1.0")


class StubTrust:
    """Stands in for notar.client.Repository: records signatures, resolves what was signed."""

    def __init__(self, fake: FakeRegistry, *, fail: Exception | None = None) -> None:
        self.fake, self.fail = fake, fail
        self.signed: dict[str, FileMeta] = {}
        self.tags_at_sign_time: set[str] = set()

    def sign(self, targets: dict[str, FileMeta]) -> SignResult:
        self.tags_at_sign_time = {ref for (_, ref) in self.fake.manifests if ":" not in ref}
        if self.fail is not None:
            raise self.fail
        self.signed.update(targets)
        return SignResult(["targets/releases"], False)

    def refresh(self) -> StubTrust:
        return self

    def role_order(self) -> list[str]:
        return ["targets/releases"]

    def find(self, tag: str, role: str) -> TargetMatch | None:
        meta = self.signed.get(tag)
        return TargetMatch(tag, role, meta) if meta is not None else None

    def resolve(self, tag: str) -> TargetMatch:
        match = self.find(tag, "targets/releases")
        if match is None:
            raise NotSignedError(f"No valid trust data for {tag}")
        return match


def as_repo(stub: StubTrust) -> Repository:
    return cast(Repository, stub)


def push(fake: FakeRegistry, trust: StubTrust, src: Path, **kwargs: Any) -> Any:
    with open_source(src, tag=REF.tag) as source, fake.client() as registry:
        return push_image(source, REF, registry=registry, trust=as_repo(trust), **kwargs)


def test_push_order_blobs_manifests_sign_then_tag(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    index = make_index([make_image("a"), make_image("b", arch="arm64")])
    result = push(fake, trust, write_oci_layout(tmp_path / "oci", "1.0", index), chunk_size=64)
    assert result.digest == index.manifest.digest and result.roles == ["targets/releases"]
    assert trust.tags_at_sign_time == set()  # nothing tagged before the signature
    assert fake.manifests[("team/app", "1.0")][1] == index.manifest.data
    meta = trust.signed["1.0"]
    assert (
        meta.length == index.manifest.size
        and "sha256:" + meta.hashes["sha256"].hex() == index.manifest.digest
    )
    puts = [r.path for r in fake.registry_requests() if r.method == "PUT" and "/manifests/" in r.path]
    assert puts[-1].endswith("/manifests/1.0") and all("sha256:" in p for p in puts[:-1])
    assert any(r.method == "PATCH" for r in fake.registry_requests())  # chunked: blobs > 64 bytes


def test_signing_failure_sets_no_tag(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake, fail=NotSignedError("trust server down"))
    image = make_image("x")
    with pytest.raises(SigningError, match="the tag was not set"):
        push(fake, trust, write_oci_layout(tmp_path / "oci", "1.0", image))
    assert ("team/app", "1.0") not in fake.manifests
    assert ("team/app", image.manifest.digest) in fake.manifests


def test_corrupt_local_blob_is_not_committed(tmp_path: Path) -> None:
    fake = FakeRegistry()
    image = make_image("local corruption")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    layer = layout / "blobs" / "sha256" / image.layers[0].digest.split(":")[1]
    data = layer.read_bytes()
    layer.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(BlobCorruptError):
        push(fake, StubTrust(fake), layout)
    assert image.layers[0].digest not in fake.blobs and not fake.manifests


def test_docker_archive_then_pull(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    saved = saved_image("lib")
    result = push(fake, trust, write_docker_archive(tmp_path / "s.tar", [saved]))
    with fake.client() as registry:
        pulled = pull_image(REF, tmp_path / "out", registry=registry, trust=as_repo(trust))
    assert pulled.digest == result.digest and pulled.roles == ["targets/releases"]
    assert (tmp_path / "out" / "blobs" / "sha256" / sha256(saved.layers[0])[7:]).read_bytes() == saved.layers[
        0
    ]


def test_pull_refuses_unsigned_and_lying_registries(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    image = make_image("pull")
    push(fake, trust, write_oci_layout(tmp_path / "oci", "1.0", image))
    dest = tmp_path / "out"
    with fake.client() as registry:
        with pytest.raises(NotSignedError, match="No valid trust data for 2.0"):
            pull_image(
                parse_reference(f"{REGISTRY_HOST}/team/app:2.0"),
                dest,
                registry=registry,
                trust=as_repo(trust),
            )
        fake.blobs[image.layers[0].digest] = bytes([image.layers[0].data[0] ^ 1]) + image.layers[0].data[1:]
        with pytest.raises(DigestMismatchError):
            pull_image(REF, dest, registry=registry, trust=as_repo(trust))
        # the tag in the registry is never consulted: retagging it to other content changes nothing
        fake.blobs[image.layers[0].digest] = image.layers[0].data
        other = make_image("other")
        fake.manifests[("team/app", "1.0")] = (other.manifest.media_type, other.manifest.data)
        assert pull_image(REF, dest, registry=registry, trust=as_repo(trust)).digest == image.manifest.digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_destination_checked_before_any_network(tmp_path: Path) -> None:
    fake = FakeRegistry()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    with fake.client() as registry:
        for dest in ("full", "file", "missing/parent"):
            with pytest.raises(DestinationError):
                pull_image(REF, tmp_path / dest, registry=registry, trust=as_repo(StubTrust(fake)))
    assert fake.requests == []
