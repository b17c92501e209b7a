"""The gateway as a real process between real skopeo and the real `docker-registry`, trust from `notar server`."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import Signer
from tests.lab import Gateway, LabPKI, NotarServer, Registry, free_port, run_gateway, run_notar_server
from tests.registry.images import Skopeo, make_image, make_index, write_oci_layout

pytestmark = pytest.mark.peers


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=60)


def push_upstream(registry: Registry, tmp_path: Path, repo: str, tag: str, text: str) -> bytes:
    """Push an image straight to the registry (bypassing the gateway); returns its manifest bytes."""
    image = make_image(text)
    layout = write_oci_layout(tmp_path / f"oci-{tag}-{text}", tag, image)
    Skopeo(tmp_path).push_layout(layout, tag, f"{registry.host}/{repo}:{tag}")
    return image.manifest.data


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_fails(skopeo: Skopeo, *args: str) -> str:
    with pytest.raises(AssertionError) as info:
        skopeo.run(*args)
    return str(info.value)


def test_pull_signed_tag_gets_signed_digest_and_unsigned_is_refused(
    gateway: Gateway, registry: Registry, signer: Signer, tmp_path: Path, repo: str
) -> None:
    signed = push_upstream(registry, tmp_path, repo, "1.0", "signed content")
    unsigned = push_upstream(registry, tmp_path, repo, "unsigned", "unsigned content")
    signer.sign(gateway.gun(repo), {"1.0": signed})
    skopeo = Skopeo(tmp_path)

    out = skopeo.pull_dir(f"{gateway.host}/{repo}:1.0", tmp_path / "pulled")
    assert (out / "manifest.json").read_bytes() == signed

    error = skopeo_fails(
        skopeo,
        "copy",
        "--src-tls-verify=false",
        f"docker://{gateway.host}/{repo}:unsigned",
        f"dir:{tmp_path / 'x'}",
    )
    assert "no valid trust data for unsigned" in error
    assert f"refused GET {repo}:unsigned: no valid trust data for unsigned" in gateway.log_text()

    with http() as c:
        r = c.get(
            f"{gateway.url}/v2/{repo}/manifests/1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 200 and r.content == signed
        assert r.headers["docker-content-digest"] == digest(signed)
        head = c.head(f"{gateway.url}/v2/{repo}/manifests/1.0")
        assert head.status_code == 200 and head.headers["docker-content-digest"] == digest(signed)
        refused = c.get(f"{gateway.url}/v2/{repo}/manifests/unsigned")
        assert refused.status_code == 404
        assert refused.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert refused.json()["errors"][0]["message"] == "no valid trust data for unsigned"
        # by digest: only what a signed tag points at
        assert c.get(f"{gateway.url}/v2/{repo}/manifests/{digest(signed)}").status_code == 200
        by_digest = c.get(f"{gateway.url}/v2/{repo}/manifests/{digest(unsigned)}")
        assert by_digest.status_code == 404 and "no signed tag" in by_digest.text
        # a repository without any trust data
        none = c.get(f"{gateway.url}/v2/gw/never-signed/manifests/latest")
        assert none.status_code == 404 and "has no trust data" in none.text
        # tags/list passes through (unfiltered)
        assert set(c.get(f"{gateway.url}/v2/{repo}/tags/list").json()["tags"]) == {"1.0", "unsigned"}


def test_moving_the_tag_upstream_changes_nothing(
    gateway: Gateway, registry: Registry, signer: Signer, tmp_path: Path, repo: str
) -> None:
    signed = push_upstream(registry, tmp_path, repo, "1.0", "the real release")
    signer.sign(gateway.gun(repo), {"1.0": signed})
    evil = push_upstream(registry, tmp_path, repo, "1.0", "evil replacement")  # straight to the registry
    skopeo = Skopeo(tmp_path)
    assert skopeo.inspect_raw(f"{registry.host}/{repo}:1.0") == evil
    assert skopeo.inspect_raw(f"{gateway.host}/{repo}:1.0") == signed
    pulled = skopeo.pull_dir(f"{gateway.host}/{repo}:1.0", tmp_path / "pulled")
    assert (pulled / "manifest.json").read_bytes() == signed
    with http() as c:
        assert c.get(f"{gateway.url}/v2/{repo}/manifests/{digest(evil)}").status_code == 404
        # deleting what a signed tag points at is refused; the evil manifest may go
        refused = c.delete(f"{gateway.url}/v2/{repo}/manifests/{digest(signed)}")
        assert refused.status_code == 403 and "notar revoke" in refused.text
        assert c.delete(f"{gateway.url}/v2/{repo}/manifests/{digest(evil)}").status_code == 202


def test_push_unsigned_tag_is_refused_and_signed_push_passes(
    gateway: Gateway, registry: Registry, signer: Signer, tmp_path: Path, repo: str
) -> None:
    skopeo = Skopeo(tmp_path)
    image = make_image("pushed through the gateway")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    error = skopeo_fails(
        skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:1.0", f"docker://{gateway.host}/{repo}:1.0"
    )
    assert "notar sign" in error and "notar push" in error
    with http() as c:
        assert c.get(f"{registry.url}/v2/{repo}/manifests/1.0").status_code == 404  # never reached upstream
    assert f"refused PUT {repo}:1.0" in gateway.log_text()

    # sign first (the digest is known locally), then the same push is accepted
    signer.sign(gateway.gun(repo), {"1.0": image.manifest.data})
    skopeo.push_layout(layout, "1.0", f"{gateway.host}/{repo}:1.0")
    with http() as c:
        up = c.get(f"{registry.url}/v2/{repo}/manifests/1.0", headers={"Accept": image.manifest.media_type})
        assert up.status_code == 200 and up.content == image.manifest.data
    # a different body for the signed tag is refused
    other = make_image("not what was signed")
    other_layout = write_oci_layout(tmp_path / "oci-other", "1.0", other)
    skopeo_fails(
        skopeo,
        "copy",
        "--dest-tls-verify=false",
        f"oci:{other_layout}:1.0",
        f"docker://{gateway.host}/{repo}:1.0",
    )


def test_signed_index_and_its_children(
    gateway: Gateway, registry: Registry, signer: Signer, tmp_path: Path, repo: str
) -> None:
    index = make_index([make_image("amd", arch="amd64"), make_image("arm", arch="arm64")])
    layout = write_oci_layout(tmp_path / "oci-index", "multi", index)
    skopeo = Skopeo(tmp_path)
    skopeo.run(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{layout}:multi",
        f"docker://{registry.host}/{repo}:multi",
    )
    signer.sign(gateway.gun(repo), {"multi": index.manifest.data})
    skopeo.run(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{gateway.host}/{repo}:multi",
        f"oci:{tmp_path / 'out'}:multi",
    )
    child = index.images[1].manifest
    with http() as c:
        r = c.get(f"{gateway.url}/v2/{repo}/manifests/{child.digest}", headers={"Accept": child.media_type})
        assert r.status_code == 200 and r.content == child.data
        assert c.delete(f"{gateway.url}/v2/{repo}/manifests/{child.digest}").status_code == 403


def test_excluded_repository_passes_through(gateway: Gateway, tmp_path: Path) -> None:
    repo = f"open/scratch-{os.urandom(4).hex()}"
    image = make_image("nobody signs this")
    layout = write_oci_layout(tmp_path / "oci", "dev", image)
    skopeo = Skopeo(tmp_path)
    skopeo.push_layout(layout, "dev", f"{gateway.host}/{repo}:dev")
    assert skopeo.inspect_raw(f"{gateway.host}/{repo}:dev") == image.manifest.data


def test_blob_streaming_range_and_location_rewrite(gateway: Gateway, registry: Registry, repo: str) -> None:
    blob = os.urandom(12 * 1024 * 1024 + 123)
    blob_digest = digest(blob)
    with http() as c:
        start = c.post(f"{gateway.url}/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202
        location = start.headers["location"]
        assert location.startswith(gateway.url), location  # rewritten to the gateway's address

        def chunks() -> object:
            for i in range(0, len(blob), 1024 * 1024):
                yield blob[i : i + 1024 * 1024]

        sep = "&" if "?" in location else "?"
        done = c.put(
            f"{location}{sep}digest={blob_digest}",
            content=chunks(),  # type: ignore[arg-type]
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        assert done.headers["location"].startswith(gateway.url)

        with c.stream("GET", f"{gateway.url}/v2/{repo}/blobs/{blob_digest}") as r:
            assert r.status_code == 200
            h = hashlib.sha256()
            for chunk in r.iter_raw():
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == blob_digest
        head = c.head(f"{gateway.url}/v2/{repo}/blobs/{blob_digest}")
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(blob)
        ranged = c.get(f"{gateway.url}/v2/{repo}/blobs/{blob_digest}", headers={"Range": "bytes=1000-1999"})
        assert ranged.status_code == 206 and ranged.content == blob[1000:2000]
        # ping and catalog pass through
        assert c.get(f"{gateway.url}/v2/").status_code == 200
        assert "repositories" in c.get(f"{gateway.url}/v2/_catalog").json()


def test_malformed_requests_are_4xx_never_5xx(gateway: Gateway) -> None:
    cases = [
        ("GET", "/v2/UPPER/manifests/latest"),
        ("GET", "/v2/gw/app/manifests/"),
        ("GET", "/v2/gw/app/manifests/sha256:abc"),
        ("GET", "/v2/gw/app/manifests/md5:" + "a" * 32),
        ("GET", "/v2/gw/app/manifests/bad tag"),
        ("GET", "/v2/gw/app/manifests/%2e%2e"),
        ("GET", "/v2/gw/%2e%2e/other/manifests/latest"),
        ("GET", "/v2//manifests/latest"),
        ("GET", "/v2/gw/app/manifests/-bad"),
        ("POST", "/v2/gw/app/manifests/latest"),
        ("PUT", "/v2/gw/app/manifests/latest"),
        ("GET", "/not-the-api"),
        ("GET", "/v2/" + "a/" * 200 + "manifests/latest"),
        ("GET", "/v2/gw/app/blobs/sha256:zz"),
    ]
    with http() as c:
        for method, path in cases:
            r = c.request(method, gateway.url + path)
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
            if r.headers.get("content-type", "").startswith("application/json"):
                assert "errors" in r.json(), (method, path, r.text)
    assert "Traceback" not in gateway.log_text()


def test_trust_server_down_fails_closed(registry: Registry, tmp_path: Path) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    with (
        run_gateway(tmp_path / "gw", upstream=registry.url, trust_server=dead, ca=None, config=None) as gw,
        http() as c,
    ):
        for method in ("GET", "HEAD"):
            r = c.request(method, f"{gw.url}/v2/gw/app/manifests/latest")
            assert r.status_code == 503
        body = c.get(f"{gw.url}/v2/gw/app/manifests/latest").json()
        assert body["errors"][0]["code"] == "TRUST_UNAVAILABLE"
        assert "cannot verify trust data for" in body["errors"][0]["message"]
        put = c.put(f"{gw.url}/v2/gw/app/manifests/latest", content=b"{}")
        assert put.status_code == 503
        assert c.get(f"{gw.url}/v2/").status_code == 200  # the rest still works
        assert "refused GET gw/app:latest: cannot verify trust data" in gw.log_text()
        assert "Traceback" not in gw.log_text()


def test_registry_down_is_a_clear_502(notar_server: NotarServer, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with (
        run_gateway(
            tmp_path / "gw",
            upstream=dead,
            trust_server=notar_server.url,
            ca=notar_server.ca,
            config="exclude: ['open/*']",
        ) as gw,
        http() as c,
    ):
        for path in ("/v2/", "/v2/open/x/manifests/latest", "/v2/gw/x/blobs/sha256:" + "0" * 64):
            r = c.get(gw.url + path)
            assert r.status_code == 502, (path, r.status_code)
            err = r.json()["errors"][0]
            assert err["code"] == "UPSTREAM_UNAVAILABLE" and dead in err["message"]
        assert "Traceback" not in gw.log_text()


def test_cli_rejects_bad_configuration(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"repositories": "not-a-list"}))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "notar",
            "gateway",
            "--upstream",
            "http://127.0.0.1:1",
            "--trust-server",
            "https://127.0.0.1:2",
            "--config",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "must be a list" in r.stderr and "Traceback" not in r.stderr


def test_release_engineer_flow_through_the_gateway(
    gateway: Gateway, registry: Registry, notar_server: NotarServer, tmp_path: Path
) -> None:
    """The CLI as people use it in front of a gateway: `notar push` through it, and `notar sign` of an
    image already upstream (reading the manifest from the upstream, signing under the gateway's name)."""
    from tests.client.test_cli_flow import Notar

    repo = f"cli/flow-{uuid.uuid4().hex[:8]}"
    image_name = f"{gateway.host}/{repo}"
    notar = Notar(tmp_path / "home", notar_server.url, notar_server.ca)
    notar.run("key", "generate", "gw", "--dir", str(tmp_path))
    notar.run("signer", "add", "gw", image_name, "--key", str(tmp_path / "gw.pub"))

    pushed = make_image("pushed through the gateway")
    layout = write_oci_layout(tmp_path / "oci-pushed", "1.0", pushed)
    notar.run("push", str(layout), f"{image_name}:1.0")
    skopeo = Skopeo(tmp_path)
    assert (
        hashlib.sha256(skopeo.inspect_raw(f"{image_name}:1.0")).hexdigest()
        == pushed.manifest.digest.split(":")[1]
    )

    upstream_only = make_image("pushed upstream, signed later")
    skopeo.push_layout(
        write_oci_layout(tmp_path / "oci-up", "2.0", upstream_only), "2.0", f"{registry.host}/{repo}:2.0"
    )
    refused = notar.run("sign", f"{image_name}:2.0", check=False)
    assert refused.returncode == 1  # the gateway does not serve unsigned content, even to the signer
    notar.run("sign", f"{image_name}:2.0", "--source-registry", registry.host)
    time.sleep(1.1)  # the gateway decides refusals on trust data at most a second old
    assert (
        hashlib.sha256(skopeo.inspect_raw(f"{image_name}:2.0")).hexdigest()
        == upstream_only.manifest.digest.split(":")[1]
    )


def test_names_without_trust_data_leave_nothing_behind(gateway: Gateway) -> None:
    """Anyone can ask for any name: no trust data means no trace in the trust directory."""
    trust = gateway.log.parent / "trust"
    prefix = f"flood-{uuid.uuid4().hex[:8]}"
    with http() as c:
        for i in range(20):
            r = c.get(f"{gateway.url}/v2/{prefix}/r{i}/manifests/latest")
            assert r.status_code == 404 and "no valid trust data" in r.text.lower()
    leftovers = [p for p in trust.rglob("*") if prefix in str(p)]
    assert leftovers == []


def test_trust_server_down_fails_closed_even_with_cached_trust_data(
    registry: Registry, lab_pki: LabPKI, tmp_path: Path, repo: str
) -> None:
    """The gateway never falls back to cached trust data: what it cannot verify now, it does not serve."""
    with (
        run_notar_server(lab_pki, tmp_path / "trust-server") as server,
        run_gateway(
            tmp_path / "gw",
            upstream=registry.url,
            trust_server=server.url,
            ca=server.ca,
            extra=("--cache-ttl", "0"),
        ) as gw,
    ):
        signed = push_upstream(registry, tmp_path, repo, "1.0", "cached then down")
        Signer(server, tmp_path / "signer").sign(gw.gun(repo), {"1.0": signed})
        with http() as c:
            assert c.get(f"{gw.url}/v2/{repo}/manifests/1.0").status_code == 200  # trust data now cached
            server.process.stop()
            r = c.get(f"{gw.url}/v2/{repo}/manifests/1.0")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "TRUST_UNAVAILABLE"
