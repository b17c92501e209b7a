"""Per-repository signature formats through the real gateway process, in front of the real docker-registry
(no referrers API: the ``sha256-<hex>`` tag schema), pulled with real skopeo.

One gateway for the module, its policy file::

    nv/*    notation            cs/*    cosign             both/*  [v1, notation]
    any/*   any (v1, notation and cosign are all configured)              (else) v1

Signatures are made with notar's libraries (tests.gateway.signing) and pushed *through the gateway*, as a
signer would; images are pushed straight to the registry (the gateway refuses unsigned tags).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notar.registry import MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, RegistryClient, RegistryError
from tests.gateway.conftest import Signer
from tests.gateway.signing import CosignSigner, NotationSigner
from tests.lab import Gateway, NotarServer, Registry, child_env, run_gateway
from tests.registry.artifacts import artifact, push_image
from tests.registry.images import Image, Skopeo, make_image, make_index, write_oci_layout

pytestmark = pytest.mark.peers

FORMATS = """\
repositories: ['*']
exclude: ['open/*']
allow_index_children: true
formats:
  "nv/*": notation
  "cs/*": cosign
  "both/*": [v1, notation]
  "any/*": any
"""


class Lab:
    """The module's gateway and its signers."""

    def __init__(
        self, gateway: Gateway, registry: Registry, notation: NotationSigner, cosign: CosignSigner
    ) -> None:
        self.gateway, self.registry, self.notation, self.cosign = gateway, registry, notation, cosign

    def upstream(self) -> RegistryClient:
        return RegistryClient(self.registry.host)

    def through(self) -> RegistryClient:
        """A registry client talking to the gateway, as a signer pushing its signatures would."""
        return RegistryClient(self.gateway.host)

    def push(self, repo: str, tag: str, text: str) -> Image:
        """An image pushed straight to the registry under *tag*."""
        image = make_image(f"{text} {uuid.uuid4().hex}\n")
        with self.upstream() as client:
            push_image(client, repo, image, tag)
        return image

    def sign_notation(self, repo: str, image: Image, signer: NotationSigner | None = None) -> None:
        with self.through() as client:
            (signer or self.notation).sign(client, repo, image.manifest.data)

    def sign_cosign(self, repo: str, image: Image, signer: CosignSigner | None = None) -> None:
        with self.through() as client:
            (signer or self.cosign).sign(client, repo, f"{self.gateway.host}/{repo}", image.manifest.digest)


@pytest.fixture(scope="module")
def lab(
    registry: Registry, notar_server: NotarServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("formats-gateway")
    notation, cosign = NotationSigner("formats"), CosignSigner()
    config_dir = notation.config_dir(work / "notation")
    key = cosign.pub(work / "cosign.pub")
    with run_gateway(
        work,
        upstream=registry.url,
        trust_server=notar_server.url,
        ca=notar_server.ca,
        config=FORMATS,
        extra=("--notation-config", str(config_dir), "--cosign-key", str(key), "--cache-ttl", "30"),
    ) as gw:
        yield Lab(gw, registry, notation, cosign)


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=60)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull(lab: Lab, tmp_path: Path, ref: str) -> bytes:
    """skopeo copy through the gateway; the manifest bytes pulled."""
    out = Skopeo(tmp_path).pull_dir(f"{lab.gateway.host}/{ref}", tmp_path / f"pulled-{uuid.uuid4().hex[:6]}")
    return (out / "manifest.json").read_bytes()


def pull_fails(lab: Lab, tmp_path: Path, ref: str) -> str:
    with pytest.raises(AssertionError) as info:
        pull(lab, tmp_path, ref)
    return str(info.value)


def get(c: httpx.Client, lab: Lab, repo: str, ref: str) -> httpx.Response:
    return c.get(
        f"{lab.gateway.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": f"{MEDIA_TYPE_OCI_MANIFEST}, {MEDIA_TYPE_OCI_INDEX}"},
    )


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------------ Notation


def test_notation_repository_serves_only_verified_digests(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("nv")
    image = lab.push(repo, "1.0", "notation release")
    error = pull_fails(lab, tmp_path, f"{repo}:1.0")
    assert "notation: no signature is associated with" in error

    stranger = NotationSigner("stranger")  # a valid signature by a certificate the policy does not trust
    lab.sign_notation(repo, image, stranger)
    error = pull_fails(lab, tmp_path, f"{repo}:1.0")
    assert "authenticity" in error

    lab.sign_notation(repo, image)  # the trusted signer: one valid signature among others is enough
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data
    with http() as c:
        by_digest = get(c, lab, repo, image.manifest.digest)
        assert by_digest.status_code == 200 and by_digest.content == image.manifest.data
        # the referrers index and the signature manifests are served (notation reads them like this)
        index = get(c, lab, repo, f"sha256-{image.manifest.digest[7:]}")
        assert index.status_code == 200 and index.headers["content-type"] == MEDIA_TYPE_OCI_INDEX
        entries = index.json()["manifests"]
        assert len(entries) == 2
        for entry in entries:
            assert get(c, lab, repo, entry["digest"]).status_code == 200

    # the tag moved in the registry to an unsigned image: its digest is what is checked now
    moved = lab.push(repo, "1.0", "pushed over the release")
    error = pull_fails(lab, tmp_path, f"{repo}:1.0")
    assert moved.manifest.digest in error and "no signature is associated" in error
    with http() as c:
        assert get(c, lab, repo, moved.manifest.digest).status_code == 404
        assert get(c, lab, repo, image.manifest.digest).status_code == 200  # still signed, by digest


def test_notar_verify_reads_through_the_gateway(lab: Lab, tmp_path: Path) -> None:
    """`notar verify` (notation's reader) finds and verifies the signature pushed through the gateway."""
    repo = repo_name("nv")
    image = lab.push(repo, "2.0", "verify me")
    lab.sign_notation(repo, image)
    home = tmp_path / "home"
    lab.notation.config_dir(home / "xdg" / "notation")
    done = subprocess.run(
        [sys.executable, "-m", "notar", "verify", f"{lab.gateway.host}/{repo}:2.0"],
        capture_output=True,
        text=True,
        env=child_env(home=home, XDG_CONFIG_HOME=str(home / "xdg"), DOCKER_CONFIG=str(home / "docker")),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"Successfully verified signature for {lab.gateway.host}/{repo}@{image.manifest.digest}"
        in done.stdout
    )


def test_a_push_by_tag_needs_the_signature_first(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("nv")
    image = make_image(f"pushed through the gateway {uuid.uuid4().hex}\n")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    skopeo = Skopeo(tmp_path)
    with pytest.raises(AssertionError) as refused:
        skopeo.push_layout(layout, "1.0", f"{lab.gateway.host}/{repo}:1.0")
    assert "not signed as" in str(refused.value) and "sign it first" in str(refused.value)
    with lab.through() as client:  # by digest, then the signature, then the tag
        push_image(client, repo, image)
        lab.notation.sign(client, repo, image.manifest.data)
    skopeo.push_layout(layout, "1.0", f"{lab.gateway.host}/{repo}:1.0")
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data


def test_multi_platform_children_of_a_verified_index(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("nv")
    index = make_index([make_image(f"amd {uuid.uuid4().hex}", arch="amd64"), make_image("arm", arch="arm64")])
    layout = write_oci_layout(tmp_path / "oci-index", "multi", index)
    Skopeo(tmp_path).push_layout(layout, "multi", f"{lab.registry.host}/{repo}:multi", all_images=True)
    with lab.through() as client:
        lab.notation.sign(client, repo, index.manifest.data, MEDIA_TYPE_OCI_INDEX)
    out = tmp_path / "all"
    Skopeo(tmp_path).run(
        "copy", "--all", "--src-tls-verify=false", f"docker://{lab.gateway.host}/{repo}:multi", f"dir:{out}"
    )
    assert (out / "manifest.json").read_bytes() == index.manifest.data
    with http() as c:  # a child alone, by digest: below the index verified a moment ago
        assert get(c, lab, repo, index.images[1].manifest.digest).status_code == 200


# -------------------------------------------------------------------------------------------- cosign


def test_cosign_repository(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("cs")
    image = lab.push(repo, "1.0", "cosign release")
    assert "cosign: no signature is associated" in pull_fails(lab, tmp_path, f"{repo}:1.0")
    lab.sign_cosign(repo, image, CosignSigner())  # a key the gateway does not know
    assert "does not verify with the public key" in pull_fails(lab, tmp_path, f"{repo}:1.0")
    lab.sign_cosign(repo, image)
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data
    with http() as c:
        sig = get(c, lab, repo, f"sha256-{image.manifest.digest[7:]}.sig")
        assert sig.status_code == 200 and len(sig.json()["layers"]) == 2  # both signers' layers kept


# --------------------------------------------------------------------------------------- combinations


def test_v1_and_notation_both_required(lab: Lab, signer: Signer, tmp_path: Path) -> None:
    repo = repo_name("both")
    image = lab.push(repo, "1.0", "needs both")
    assert "no valid trust data for 1.0" in pull_fails(lab, tmp_path, f"{repo}:1.0")
    signer.sign(lab.gateway.gun(repo), {"1.0": image.manifest.data})
    time.sleep(1.1)  # a v1 refusal is decided on trust data at most a second old
    error = pull_fails(lab, tmp_path, f"{repo}:1.0")
    assert "(all of v1, notation)" in error and "notation: no signature" in error
    lab.sign_notation(repo, image)
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data
    # moving the tag upstream changes nothing: v1 pins the digest, and that digest carries both
    lab.push(repo, "1.0", "moved, unsigned")
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data


def test_any_of_the_formats(lab: Lab, signer: Signer, tmp_path: Path) -> None:
    repo = repo_name("any")
    v1 = lab.push(repo, "v1", "signed with v1")
    signer.sign(lab.gateway.gun(repo), {"v1": v1.manifest.data})
    cosigned = lab.push(repo, "cosign", "signed with cosign")
    lab.sign_cosign(repo, cosigned)
    noted = lab.push(repo, "notation", "signed with notation")
    lab.sign_notation(repo, noted)
    lab.push(repo, "none", "signed with nothing")
    assert pull(lab, tmp_path, f"{repo}:v1") == v1.manifest.data
    assert pull(lab, tmp_path, f"{repo}:cosign") == cosigned.manifest.data
    assert pull(lab, tmp_path, f"{repo}:notation") == noted.manifest.data
    error = pull_fails(lab, tmp_path, f"{repo}:none")
    assert "(any of v1, notation, cosign)" in error
    # the v1 tag moved upstream to unsigned content: the v1 signed digest is the fallback
    lab.push(repo, "v1", "moved")
    assert pull(lab, tmp_path, f"{repo}:v1") == v1.manifest.data


# ------------------------------------------------------------------- nothing unsigned gets through


def test_signature_tags_take_only_signatures(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("nv")
    image = make_image(f"an image under a signature tag {uuid.uuid4().hex}")
    own_tag = f"sha256-{image.manifest.digest[7:]}"
    with lab.through() as client:
        for blob in image.blobs:
            client.push_blob(repo, blob.digest, blob.data, blob.size)
        for tag in (own_tag, f"{own_tag}.sig"):
            with pytest.raises(RegistryError, match="403|denied|DENIED"):
                client.put_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    with lab.upstream() as client:  # planted straight in the registry: not served either
        push_image(client, repo, image, own_tag)
        push_image(client, repo, image, f"{own_tag}.sig")
    with http() as c:
        for ref in (own_tag, f"{own_tag}.sig", image.manifest.digest):
            r = get(c, lab, repo, ref)
            assert r.status_code == 404, (ref, r.text)
    error = pull_fails(lab, tmp_path, f"{repo}:{own_tag}")
    assert "not served" in error


def test_an_image_dressed_as_a_signature_is_content(lab: Lab, tmp_path: Path) -> None:
    """artifactType and a subject do not make a signature: the layers do. Such an image is refused by tag
    and by digest, pushed through the gateway or straight to the registry."""
    repo = repo_name("nv")
    signed = lab.push(repo, "1.0", "the signed subject")
    lab.sign_notation(repo, signed)
    payload = make_image(f"a filesystem {uuid.uuid4().hex}")
    data, blobs = artifact(
        signed, payload.blobs[0].data, layer_type="application/vnd.oci.image.layer.v1.tar+gzip"
    )
    with lab.through() as client:
        for d, b in blobs.items():
            client.push_blob(repo, d, b, len(b))
        client.put_manifest(repo, digest(data), data, MEDIA_TYPE_OCI_MANIFEST)  # by digest: content-addressed
        with pytest.raises(RegistryError, match="403|denied|DENIED"):
            client.put_manifest(repo, "dressed", data, MEDIA_TYPE_OCI_MANIFEST)
    with http() as c:
        assert get(c, lab, repo, digest(data)).status_code == 404


def test_no_signer_removes_another_signers_signatures(lab: Lab, tmp_path: Path) -> None:
    repo = repo_name("nv")
    image = lab.push(repo, "1.0", "shared signatures")
    lab.sign_notation(repo, image)
    lab.sign_notation(repo, image, NotationSigner("second"))
    lab.sign_cosign(repo, image)
    tag = f"sha256-{image.manifest.digest[7:]}"
    with http() as c, lab.through() as client:
        current = get(c, lab, repo, tag)
        index = current.json()
        assert len(index["manifests"]) == 2
        # an index that drops the first signer's entry
        dropped = dict(index, manifests=index["manifests"][1:])
        body = json.dumps(dropped).encode()
        with pytest.raises(RegistryError, match="403|denied|DENIED"):
            client.put_manifest(repo, tag, body, MEDIA_TYPE_OCI_INDEX)
        # a .sig that replaces the signature of the layer (same payload, another signature)
        sig = get(c, lab, repo, f"{tag}.sig").json()
        forged = json.loads(json.dumps(sig))
        forged["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = "AAAA"
        with pytest.raises(RegistryError, match="403|denied|DENIED"):
            client.put_manifest(repo, f"{tag}.sig", json.dumps(forged).encode(), MEDIA_TYPE_OCI_MANIFEST)
        # deleting the tags, the index, the .sig manifest or a listed signature manifest: refused
        for ref in (
            tag,
            f"{tag}.sig",
            current.headers["docker-content-digest"],
            index["manifests"][0]["digest"],
        ):
            r = c.delete(f"{lab.gateway.url}/v2/{repo}/manifests/{ref}")
            assert r.status_code == 403, (ref, r.text)
        sig_digest = get(c, lab, repo, f"{tag}.sig").headers["docker-content-digest"]
        assert c.delete(f"{lab.gateway.url}/v2/{repo}/manifests/{sig_digest}").status_code == 403
        # nor a blob (an envelope, a payload)
        envelope = get(c, lab, repo, index["manifests"][0]["digest"]).json()["layers"][0]["digest"]
        assert c.delete(f"{lab.gateway.url}/v2/{repo}/blobs/{envelope}").status_code == 403
        # a superset is accepted (the same index, an annotation added to the document)
        grown = dict(index, annotations={"org.example.note": "kept everything"})
        client.put_manifest(repo, tag, json.dumps(grown).encode(), MEDIA_TYPE_OCI_INDEX)
        # the index it replaced is referenced by nothing now: it may go
        old = current.headers["docker-content-digest"]
        assert c.delete(f"{lab.gateway.url}/v2/{repo}/manifests/{old}").status_code == 202
    assert pull(lab, tmp_path, f"{repo}:1.0") == image.manifest.data


def test_concurrent_signers_lose_nothing(lab: Lab) -> None:
    """Five signers at once through the gateway: a write that would drop another's entry is refused (the
    signer retries), so every signature that was accepted is still listed at the end."""
    repo = repo_name("nv")
    image = lab.push(repo, "1.0", "popular")
    signers = [NotationSigner(f"parallel-{i}") for i in range(5)]

    def sign(s: NotationSigner) -> str:
        for _ in range(20):
            try:
                lab.sign_notation(repo, image, s)
                return s.name
            except RegistryError as e:
                assert "another signer" in str(e) or "403" in str(e) or "denied" in str(e).lower(), e
        raise AssertionError(f"{s.name} never got its entry in")

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        done = list(pool.map(sign, signers))
    assert len(done) == 5
    with http() as c:
        entries = get(c, lab, repo, f"sha256-{image.manifest.digest[7:]}").json()["manifests"]
    assert len(entries) == 5


def test_what_a_signature_tag_gains_must_sign_its_digest(lab: Lab) -> None:
    """New entries of sha256-<hex> must be signature manifests whose subject is <hex>, new .sig layers
    payloads naming it: not the image itself, not another image's signature."""
    repo = repo_name("nv")
    image, other = lab.push(repo, "1.0", "the subject"), lab.push(repo, "2.0", "another image")
    lab.sign_notation(repo, image)
    lab.sign_notation(repo, other)
    lab.sign_cosign(repo, other)
    tag = f"sha256-{image.manifest.digest[7:]}"
    with http() as c, lab.through() as client:
        index = get(c, lab, repo, tag).json()
        others = get(c, lab, repo, f"sha256-{other.manifest.digest[7:]}").json()["manifests"][0]
        itself = dict(image.manifest.descriptor(), artifactType="application/vnd.cncf.notary.signature")
        for entry, why in ((itself, "it is not a signature manifest"), (others, "its subject is")):
            body = json.dumps(dict(index, manifests=[*index["manifests"], entry])).encode()
            with pytest.raises(RegistryError) as refused:
                client.put_manifest(repo, tag, body, MEDIA_TYPE_OCI_INDEX)
            assert why in str(refused.value), refused.value
        # another image's cosign layer copied into this image's .sig
        sig = get(c, lab, repo, f"sha256-{other.manifest.digest[7:]}.sig").json()
        with pytest.raises(RegistryError):
            client.put_manifest(repo, f"{tag}.sig", json.dumps(sig).encode(), MEDIA_TYPE_OCI_MANIFEST)
    log = lab.gateway.log_text()
    assert f"refused PUT {repo}:{tag}.sig" in log and "its payload names" in log
