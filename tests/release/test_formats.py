"""`notar release` with ``formats: [v1, notation, cosign]`` and ``cert_secret_name``, end to end: moto's
Secrets Manager (server mode), `notar server`, the Debian registry; the CLI as a subprocess on a clean CI
machine. The signatures are read back by ``notar verify`` (Notation with the certificate in a trust
store, cosign with the public key) and ``notar resolve`` (v1), and every run is scanned for key material
AND for the certificate: nothing but cached public trust data is written."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from notar.keystore import decode_private_key
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    ManifestNotFoundError,
    RegistryClient,
    list_referrers,
)
from tests.lab import LOOPBACK, NotarServer, Registry, free_port
from tests.registry.images import make_image, write_oci_layout
from tests.release.conftest import MakeSigner, Moto
from tests.release.support import (
    REPO_PASSPHRASE,
    Notar,
    Signer,
    changed,
    find_key_material,
    snapshot,
    unique,
    write_tasks,
)
from tests.signing.support import Notar as Verifier

pytestmark = pytest.mark.peers


def certificate(admin: Notar, signer: Signer, moto: Moto, *, name: str | None = None) -> tuple[str, bytes]:
    """``notar cert generate`` for the signer on the admin machine, uploaded as a secret; (name, PEM)."""
    out = admin.cwd / f"{signer.name}-{uuid.uuid4().hex[:6]}.crt"
    admin.run("cert", "generate", signer.name, "--subject", f"C=US,O=Acme,CN={signer.name}", "--out", str(out),
              "--force")  # fmt: skip
    pem = out.read_bytes()
    secret = name or f"notar/signers/{signer.name}-{uuid.uuid4().hex[:8]}/cert"
    moto.client().create_secret(Name=secret, SecretString=pem.decode())  # type: ignore[attr-defined]
    return secret, pem


def public_pem(signer: Signer) -> bytes:
    """The signer's public key as cosign.pub (from the admin's encrypted key file)."""
    key = decode_private_key(signer.key_file.read_bytes(), REPO_PASSPHRASE).key
    return key.public_key.to_crypto().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def cert_needles(pem: bytes) -> dict[str, bytes]:
    """The certificate is public, but a release keeps it in memory like the key: no copy on disk either."""
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"certificate DER": der, "certificate PEM body start": base64.b64encode(der)[:48]}


def run_release(
    ci: Notar, signer: Signer, tasks: list[dict[str, Any]], pem: bytes | None = None
) -> tuple[int, Any, str]:
    """`notar release TASKS -o json` on the CI machine; nothing secret (nor the certificate) left or printed."""
    task_file = write_tasks(ci.cwd / unique("tasks"), tasks)  # type: ignore[arg-type]
    before = snapshot(ci.areas)
    result = ci.run("release", str(task_file), "-o", "json", check=False)
    after = snapshot(ci.areas)
    needles = {**signer.needles, **(cert_needles(pem) if pem else {})}
    areas = [a for a in ci.areas if a != ci.cwd] + [p for p in ci.cwd.iterdir() if p != task_file]
    hits = find_key_material(areas, needles, {"stdout": result.stdout, "stderr": result.stderr})
    assert not hits, (hits, changed(before, after))
    assert "Traceback" not in result.stderr, result.stderr
    written = changed(before, after)
    assert all(p == task_file or p.is_relative_to(ci.trust_dir / "tuf") for p in written), written
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def layout(tmp_path: Path, tag: str, text: str) -> tuple[Path, str]:
    image = make_image(text)
    return write_oci_layout(tmp_path / unique("oci"), tag, image), image.manifest.digest


def test_release_in_all_three_formats_verifies_each_and_leaves_nothing(
    admin: Notar,
    ci: Notar,
    make_signer: MakeSigner,
    moto: Moto,
    image_repo: str,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    signer = make_signer("ci", image_repo)
    cert_secret, pem = certificate(admin, signer, moto)
    src, digest = layout(tmp_path, "1.0", "three formats")
    task = {**signer.task(f"{image_repo}:1.0", src), "formats": ["v1", "notation", "cosign"],
            "cert_secret_name": cert_secret}  # fmt: skip
    code, out, err = run_release(ci, signer, [task], pem)
    assert code == 0, err
    (result,) = out
    assert result["ok"] and result["digest"] == digest and result["formats"] == ["v1", "notation", "cosign"]
    assert [(s["format"], s["status"]) for s in result["signatures"]] == [
        ("notation", "signed"), ("cosign", "signed"), ("v1", "signed"),
    ]  # fmt: skip
    assert {"certificate", "notation", "cosign", "sign", "publish", "tag", "verify"} <= set(result["phases"])
    assert "as v1, notation, cosign" in err

    verifier = Verifier(tmp_path / "verifier", notar_server.url, notar_server.ca)
    crt = verifier.cwd / "ci.crt"
    crt.write_bytes(pem)
    verifier.trust_certificate(crt)
    ok = verifier.ok("verify", f"{image_repo}:1.0")
    assert ok.stdout == f"Successfully verified signature for {image_repo}@{digest}\n"
    pub = verifier.cwd / "ci.pub"
    pub.write_bytes(public_pem(signer))
    cosign = verifier.ok("verify", "--key", str(pub), f"{image_repo}:1.0", "-o", "json").json()
    assert cosign["verified"] and len(cosign["signatures"]) == 1
    assert verifier.ok("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{digest}"


def test_notation_and_cosign_only_never_contact_a_trust_server(
    admin: Notar, ci: Notar, make_signer: MakeSigner, moto: Moto, image_repo: str, tmp_path: Path
) -> None:
    signer = make_signer("ci", image_repo)
    cert_secret, pem = certificate(admin, signer, moto)
    src, _digest = layout(tmp_path, "2.0", "no trust server")
    ci.env["DOCKER_CONTENT_TRUST_SERVER"] = f"https://{LOOPBACK}:{free_port()}"  # nothing listens there
    task = {
        **signer.task(f"{image_repo}:2.0", src),
        "formats": "notation,cosign",
        "cert_secret_name": cert_secret,
    }
    code, out, err = run_release(ci, signer, [task], pem)
    assert code == 0, err
    (result,) = out
    assert result["ok"] and result["trust_server"] is None and result["roles"] == []
    assert not {"check", "sign", "publish"} & set(result["phases"])
    assert [(s["format"], s["status"]) for s in result["signatures"]] == [
        ("notation", "signed"),
        ("cosign", "signed"),
    ]


def test_a_certificate_of_another_key_fails_notation_signs_cosign_and_stops_before_v1(
    admin: Notar,
    ci: Notar,
    make_signer: MakeSigner,
    moto: Moto,
    image_repo: str,
    registry: Registry,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    signer = make_signer("ci", image_repo)
    other = make_signer("other", None, upload=False)
    cert_secret, pem = certificate(admin, other, moto)  # other's certificate for ci's key
    src, digest = layout(tmp_path, "3.0", "wrong certificate")
    task = {**signer.task(f"{image_repo}:3.0", src), "formats": ["v1", "notation", "cosign"],
            "cert_secret_name": cert_secret}  # fmt: skip
    code, out, err = run_release(ci, signer, [task], pem)
    assert code == 1
    (result,) = out
    assert result["failed_phase"] == "notation" and not result["ok"]
    assert [(s["format"], s["status"]) for s in result["signatures"]] == [
        ("notation", "failed"),
        ("cosign", "signed"),
    ]
    assert "is not for the signer's key" in result["error"]
    assert result["error"].endswith("(cosign signed; v1 not signed, the tag was not moved)")
    assert "FAILED in notation" in err
    repo = image_repo.split("/", 1)[1]
    with RegistryClient(registry.host) as client:
        with pytest.raises(ManifestNotFoundError):
            client.get_manifest(repo, "3.0")  # the tag was not moved
        notation = list_referrers(client, repo, digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
        assert notation.referrers == ()
    fresh = Notar(tmp_path / "fresh", notar_server.url, notar_server.ca)
    unsigned = fresh.run("resolve", f"{image_repo}:3.0", check=False)
    assert unsigned.returncode == 1 and "No valid trust data for 3.0" in unsigned.stderr


def test_a_broken_certificate_secret_fails_before_anything_is_written(
    ci: Notar, make_signer: MakeSigner, moto: Moto, image_repo: str, registry: Registry, tmp_path: Path
) -> None:
    signer = make_signer("ci", image_repo)
    broken = f"notar/broken-{uuid.uuid4().hex[:8]}"
    moto.client().create_secret(
        Name=broken, SecretString="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )  # type: ignore[attr-defined]
    src, digest = layout(tmp_path, "4.0", "broken certificate")
    task = {
        **signer.task(f"{image_repo}:4.0", src),
        "formats": ["v1", "notation"],
        "cert_secret_name": broken,
    }
    code, out, _err = run_release(ci, signer, [task])
    assert code == 1
    (result,) = out
    assert result["failed_phase"] == "certificate" and result["signatures"] == [] and not result["pushed"]
    assert f"secret {broken!r}" in result["error"]
    with RegistryClient(registry.host) as client, pytest.raises(ManifestNotFoundError):
        client.get_manifest(image_repo.split("/", 1)[1], digest)  # not even pushed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"formats": ["v1", "notation"]},
            "notation needs the signer's certificate chain: set cert_secret_name",
        ),
        (
            {"formats": ["v1"], "cert_secret_name": "notar/x/cert"},
            "cert_secret_name is for notation signatures",
        ),
        ({"formats": ["v1", "dct"]}, "formats: unknown format 'dct' (one of v1, notation, cosign)"),
        ({"formats": []}, "formats: must list one or more of v1, notation, cosign"),
        ({"formats": ["cosign", "cosign"]}, "formats: lists a format twice"),
        ({"formats": [1]}, "formats: a format must be a string, got int '1'"),
        ({"formats": {"a": 1}}, "formats must be a list like [v1, notation], got a mapping"),
        (
            {"formats": "cosign", "cert_secret_name": "bad name!"},
            "cert_secret_name: 'bad name!' is not a Secrets Manager",
        ),
    ],
)
def test_bad_formats_are_exit_2_naming_file_and_line(
    ci: Notar, make_signer: MakeSigner, image_repo: str, extra: dict[str, Any], message: str
) -> None:
    signer = make_signer("ci", None, add=False, upload=False)
    task_file = write_tasks(ci.cwd / unique("bad"), [{**signer.task(f"{image_repo}:1"), **extra}])  # type: ignore[dict-item]
    result = ci.run("release", str(task_file), check=False)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"notar: error: {task_file}:") and message in line, line


def test_formats_from_flags_and_environment(
    admin: Notar,
    ci: Notar,
    make_signer: MakeSigner,
    moto: Moto,
    image_repo: str,
    registry: Registry,
    tmp_path: Path,
) -> None:
    signer = make_signer("ci", image_repo)
    cert_secret, _pem = certificate(admin, signer, moto)
    src, digest = layout(tmp_path, "5.0", "flags")
    env = {"NOTAR_RELEASE_FORMATS": "v1,notation", "NOTAR_CERT_SECRET_NAME": cert_secret}
    flags = ["--image", f"{image_repo}:5.0", "--src", str(src), "--signer-name", signer.name,
             "--key-secret-name", signer.key_secret, "--passphrase-secret-name", signer.passphrase_secret,
             "--region", "us-east-1", "--format", "notation", "-o", "json"]  # fmt: skip
    result = ci.run("release", *flags, check=False, env=env)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["formats"] == ["notation"]  # the flag wins over the environment
    assert report["digest"] == digest and [s["format"] for s in report["signatures"]] == ["notation"]
    from_env = ci.run("release", *flags[:-4], "-o", "json", check=False, env=env)
    assert from_env.returncode == 0, from_env.stderr
    (report,) = json.loads(from_env.stdout)
    assert report["formats"] == ["v1", "notation"] and report["digest"] == digest
