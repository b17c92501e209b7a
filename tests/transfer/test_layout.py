"""Reading OCI layouts and docker save archives: selection, validation, and every way input can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notar.transfer import (
    MEDIA_TYPE_DOCKER_LAYER,
    BlobCorruptError,
    BlobMissingError,
    LayoutError,
    SourceTagError,
    UnsafeArchiveError,
    collect_image,
    open_source,
)
from notar.transfer.layout import blob_path
from tests.registry.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    REF_NAME,
    canonical,
    make_image,
    make_index,
    sha256,
    write_oci_layout,
)
from tests.transfer.archives import saved_image, tar_directory, write_docker_archive


def read_all(source_blob: object) -> bytes:
    out = b""
    while chunk := source_blob.read(1024):  # type: ignore[attr-defined]
        out += chunk
    return out


def test_oci_layout_single_image(tmp_path: Path) -> None:
    image = make_image("single")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    with open_source(layout, tag="other") as source:  # the only image: no name needed
        assert source.kind == "oci-layout" and source.ref_name == "1.0"
        content = collect_image(source)
        assert content.root.descriptor.digest == image.manifest.digest
        assert content.root.data == image.manifest.data
        assert {b.digest for b in content.blobs} == {b.digest for b in image.blobs}
        for blob in content.blobs:
            with source.open_blob(blob) as f:
                assert sha256(read_all(f)) == blob.digest


def test_oci_index_walks_every_platform(tmp_path: Path) -> None:
    index = make_index([make_image("amd", arch="amd64"), make_image("arm", arch="arm64")])
    layout = write_oci_layout(tmp_path / "oci", "multi", index)
    with open_source(layout, tag="multi") as source:
        content = collect_image(source)
    assert content.is_index and content.root.descriptor.digest == index.manifest.digest
    assert [m.descriptor.digest for m in content.manifests] == [
        *(i.manifest.digest for i in index.images),
        index.manifest.digest,
    ]
    assert len(content.blobs) == 4


def _two_tag_layout(tmp_path: Path) -> tuple[Path, str, str]:
    a, b = make_image("a"), make_image("b")
    layout = write_oci_layout(tmp_path / "oci", "a", a)
    write_oci_layout(tmp_path / "b", "b", b)
    for blob_file in (tmp_path / "b" / "blobs" / "sha256").iterdir():
        (layout / "blobs" / "sha256" / blob_file.name).write_bytes(blob_file.read_bytes())
    index = {
        "schemaVersion": 2,
        "manifests": [
            a.manifest.descriptor(annotations={REF_NAME: "a"}),
            b.manifest.descriptor(annotations={REF_NAME: "localhost/app:b"}),
        ],
    }
    (layout / "index.json").write_bytes(canonical(index))
    return layout, a.manifest.digest, b.manifest.digest


def test_selection_by_tag_and_source_tag(tmp_path: Path) -> None:
    layout, da, db = _two_tag_layout(tmp_path)
    with open_source(layout, tag="a") as s:
        assert s.root.digest == da
    with open_source(layout, tag="b") as s:  # a full reference name matches by its tag
        assert s.root.digest == db
    with open_source(layout, tag="release", source_tag="a") as s:
        assert s.root.digest == da
    with pytest.raises(SourceTagError, match="choose one with --source-tag"):
        open_source(layout, tag="release")
    with pytest.raises(SourceTagError, match="no image named 'zzz'"):
        open_source(layout, tag="a", source_tag="zzz")


def test_single_image_with_other_name_needs_no_source_tag_but_respects_one(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "oci", "1.0", make_image())
    with pytest.raises(SourceTagError, match="no image named 'nope'"):
        open_source(layout, tag="1.0", source_tag="nope")


@pytest.mark.parametrize(
    ("index_bytes", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"schemaVersion": 1, "manifests": []}', "unsupported schemaVersion"),
        (b'{"schemaVersion": 2}', "'manifests' must be a JSON array"),
        (b'{"schemaVersion": 2, "manifests": [{"mediaType": "x"}]}', "without a digest"),
        (
            b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:zz", "size": 1}]}',
            "invalid digest",
        ),
        (
            b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:' + b"a" * 64 + b'"}]}',
            "no valid size",
        ),
        (b'{"schemaVersion": 2, "manifests": []}', "contains no image"),
    ],
)
def test_malformed_index_json(tmp_path: Path, index_bytes: bytes, message: str) -> None:
    layout = write_oci_layout(tmp_path / "oci", "1.0", make_image())
    (layout / "index.json").write_bytes(index_bytes)
    with pytest.raises(LayoutError, match=message):
        open_source(layout, tag="1.0")


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="no index.json"):
        open_source(tmp_path, tag="1.0")
    with pytest.raises(LayoutError, match="no such file"):
        open_source(tmp_path / "missing", tag="1.0")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(LayoutError, match="not a readable tar"):
        open_source(tmp_path / "file.txt", tag="1.0")
    layout = write_oci_layout(tmp_path / "oci", "1.0", make_image())
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(LayoutError, match="imageLayoutVersion"):
        open_source(layout, tag="1.0")


def test_missing_and_corrupted_blobs(tmp_path: Path) -> None:
    image = make_image("corrupt")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    layer = blob_path(layout, image.layers[0].digest)
    original = layer.read_bytes()

    layer.unlink()
    with open_source(layout) as s, pytest.raises(BlobMissingError, match=image.layers[0].digest):
        collect_image(s)

    layer.write_bytes(original + b"x")
    with open_source(layout) as s, pytest.raises(BlobCorruptError, match="descriptor says"):
        collect_image(s)

    layer.write_bytes(bytes([original[0] ^ 1]) + original[1:])  # same size, other content
    with open_source(layout) as s:
        content = collect_image(s)  # sizes match; the content is checked as it streams
        desc = next(b for b in content.blobs if b.digest == image.layers[0].digest)
        with s.open_blob(desc) as f, pytest.raises(BlobCorruptError, match="hashes to"):
            read_all(f)

    manifest = blob_path(layout, image.manifest.digest)
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with open_source(layout) as s, pytest.raises(BlobCorruptError):
        collect_image(s)


def test_manifest_media_type_must_agree(tmp_path: Path) -> None:
    image = make_image()
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    index = json.loads((layout / "index.json").read_bytes())
    index["manifests"][0]["mediaType"] = DOCKER_MANIFEST
    (layout / "index.json").write_bytes(canonical(index))
    with open_source(layout) as s, pytest.raises(LayoutError, match="the descriptor says"):
        collect_image(s)


def test_symlinked_blob_leaving_the_layout_is_refused(tmp_path: Path) -> None:
    image = make_image("link")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    outside = tmp_path / "outside"
    layer = blob_path(layout, image.layers[0].digest)
    outside.write_bytes(layer.read_bytes())
    layer.unlink()
    layer.symlink_to(outside)
    with open_source(layout) as s, pytest.raises(UnsafeArchiveError, match="leads out of the layout"):
        collect_image(s)


def test_oci_layout_tar(tmp_path: Path) -> None:
    index = make_index([make_image("t1"), make_image("t2", arch="arm64")])
    layout = write_oci_layout(tmp_path / "oci", "1.0", index)
    archive = tar_directory(layout, tmp_path / "oci.tar")
    with open_source(archive, tag="1.0") as s:
        assert s.kind == "oci-archive"
        content = collect_image(s)
        assert content.root.descriptor.media_type == OCI_INDEX
        assert content.root.data == index.manifest.data


def test_docker_archive_converts_to_schema2(tmp_path: Path) -> None:
    saved = saved_image("docker", layers=2)
    archive = write_docker_archive(tmp_path / "save.tar", [saved])
    with open_source(archive, tag="1.0") as s:
        assert s.kind == "docker-archive" and s.ref_name == "app:1.0"
        content = collect_image(s)
        body = json.loads(content.root.data)
        assert body["mediaType"] == DOCKER_MANIFEST
        assert body["config"]["digest"] == saved.config_digest
        assert [layer["digest"] for layer in body["layers"]] == [sha256(r) for r in saved.layers]
        assert {layer["mediaType"] for layer in body["layers"]} == {MEDIA_TYPE_DOCKER_LAYER}
        for blob in content.blobs:
            with s.open_blob(blob) as f:
                assert sha256(read_all(f)) == blob.digest
    # deterministic: the same archive gives the same manifest
    with open_source(archive, tag="1.0") as s:
        assert collect_image(s).root.data == content.root.data


def test_docker_archive_selection(tmp_path: Path) -> None:
    one, two = saved_image("one", repo_tags=["app:1.0"]), saved_image("two", repo_tags=["reg:5000/app:2.0"])
    archive = write_docker_archive(tmp_path / "save.tar", [one, two])
    with open_source(archive, tag="2.0") as s:
        assert json.loads(collect_image(s).root.data)["config"]["digest"] == two.config_digest
    with open_source(archive, tag="x", source_tag="app:1.0") as s:
        assert json.loads(collect_image(s).root.data)["config"]["digest"] == one.config_digest
    with pytest.raises(SourceTagError, match="app:1.0, reg:5000/app:2.0"):
        open_source(archive, tag="3.0")


def test_docker_archive_symlinked_layers_inside_are_followed(tmp_path: Path) -> None:
    saved = saved_image("dup")
    layer_name = sha256(saved.layers[0]).split(":")[1][:16] + "/layer.tar"
    manifest = [{"Config": saved.config_digest[7:] + ".json", "RepoTags": [], "Layers": ["dup/layer.tar"]}]
    archive = write_docker_archive(
        tmp_path / "save.tar", [saved], manifest=manifest, symlinks=[("dup/layer.tar", f"../{layer_name}")]
    )
    with open_source(archive) as s:
        assert len(collect_image(s).blobs) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"extra": [("../evil", b"x")]}, UnsafeArchiveError, "escapes the archive"),
        ({"extra": [("/etc/evil", b"x")]}, UnsafeArchiveError, "absolute"),
        ({"symlinks": [("out/layer.tar", "../../../etc/passwd")]}, UnsafeArchiveError, "escapes"),
        ({"manifest": {"Config": "x"}}, LayoutError, "must be a JSON array"),
        ({"manifest": [{"Config": 1, "Layers": []}]}, LayoutError, "without a Config"),
        ({"manifest": [{"Config": "missing.json", "Layers": []}]}, LayoutError, "missing.json is missing"),
        ({"manifest": [{"Config": "../../etc/passwd", "Layers": []}]}, UnsafeArchiveError, "escapes"),
    ],
)
def test_bad_docker_archives(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    saved = saved_image("bad")
    archive = write_docker_archive(tmp_path / "save.tar", [saved], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message), open_source(archive, tag="1.0") as s:
        collect_image(s)


def test_docker_archive_layer_must_match_diff_id(tmp_path: Path) -> None:
    saved = saved_image("diff")
    other = saved_image("other")
    tampered = type(saved)(saved.config, other.layers, saved.repo_tags)
    archive = write_docker_archive(tmp_path / "save.tar", [tampered])
    with pytest.raises(BlobCorruptError, match="the config says"):
        open_source(archive, tag="1.0")
