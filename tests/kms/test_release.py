"""`notar release` with `key: awskms:///...`: the CI machine holds no key at all.

An administrator adds the KMS key as signer (`notar signer add ci IMAGE --key awskms:///...`); the release
job runs a task file with `key:` instead of the two secret names, with AWS pointed at the lab KMS. Proved:
the tag is signed and resolves, KMS was asked once per signed role (and GetPublicKey once), nothing was
written but cached public trust data, and the KMS key's private key (which only the lab KMS knows) is in no
file the run could write nor in its output (the same scan as for the Secrets Manager form); a KMS failure
while signing publishes nothing; errors name the cause in one line.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.kms.support import Notar as Admin
from tests.lab import NotarServer, Registry
from tests.lab.kms import KmsKey, KmsLab
from tests.registry.images import make_image, write_oci_layout
from tests.release.support import Notar, changed, find_key_material, snapshot, write_tasks

pytestmark = pytest.mark.peers


def needles(kms: KmsLab, key: KmsKey) -> dict[str, bytes]:
    private = kms.private_key(key)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sec1 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return {
        "PEM PRIVATE KEY block": b"PRIVATE KEY-----",
        "private scalar (raw)": scalar,
        "private scalar (hex)": scalar.hex().encode(),
        "private scalar (base64)": base64.b64encode(scalar),
        "PKCS#8 DER": pkcs8,
        "PKCS#8 DER (base64)": base64.b64encode(pkcs8)[:48],
        "SEC1 DER": sec1,
    }


@pytest.fixture
def signed_repo(
    notar_server: NotarServer, registry: Registry, kms: KmsLab, tmp_path: Path
) -> tuple[str, KmsKey]:
    """A repository whose signer ci is a KMS key (added by the administrator)."""
    repo = f"{registry.host}/kms-release/app-{uuid.uuid4().hex[:8]}"
    key = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias("ci"))
    admin = Admin(tmp_path / "admin", notar_server.url, notar_server.ca, kms)
    admin.run("signer", "add", "ci", repo, "--key", key.uri)
    return repo, key


def ci_machine(notar_server: NotarServer, kms: KmsLab, tmp_path: Path, **env: str) -> Notar:
    aws = {**kms.env(), **env}
    return Notar(tmp_path / "ci", notar_server.url, notar_server.ca, **{k: v for k, v in aws.items() if v})


def run(ci: Notar, kms: KmsLab, key: KmsKey, *args: str) -> tuple[int, str, str]:
    before = snapshot(ci.areas)
    result = ci.run("release", *args, check=False)
    hits = find_key_material(ci.areas, needles(kms, key), {"stdout": result.stdout, "stderr": result.stderr})
    assert not hits, (hits, changed(before, snapshot(ci.areas)))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def test_release_with_a_kms_key(
    notar_server: NotarServer, kms: KmsLab, signed_repo: tuple[str, KmsKey], tmp_path: Path
) -> None:
    repo, key = signed_repo
    image = make_image(f"kms release {repo}")
    src = write_oci_layout(tmp_path / "oci", "1.0", image)
    # region from the task (no AWS_DEFAULT_REGION on the CI machine)
    ci = ci_machine(notar_server, kms, tmp_path, AWS_DEFAULT_REGION="")
    task = {
        "image": f"{repo}:1.0",
        "src": str(src),
        "signer_name": "ci",
        "key": key.uri,
        "region": "us-east-1",
    }
    task_file = write_tasks(ci.cwd / "task.yaml", [task])
    before = snapshot(ci.areas)
    kms.reset()
    code, out, err = run(ci, kms, key, str(task_file), "-o", "json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["ok"] and result["digest"] == image.manifest.digest and result["pushed"] is True
    assert result["roles"] == ["targets/ci", "targets/releases"]
    assert set(result["phases"]) == {"key", "check", "push", "sign", "publish", "tag", "verify"}
    assert kms.calls("Sign") == 2 and kms.calls("GetPublicKey") == 1  # one Sign per signed role
    written = changed(before, snapshot(ci.areas))
    assert written and all(p.is_relative_to(ci.trust_dir / "tuf") for p in written), written
    assert not (ci.trust_dir / "private").exists()  # not even a reference: the task names the key
    fresh = Notar(tmp_path / "verifier", notar_server.url, notar_server.ca)
    assert fresh.run("resolve", f"{repo}:1.0").stdout.strip() == f"{repo}@{image.manifest.digest}"


def test_kms_failure_while_signing_publishes_nothing(
    notar_server: NotarServer,
    registry: Registry,
    kms: KmsLab,
    signed_repo: tuple[str, KmsKey],
    tmp_path: Path,
) -> None:
    repo, key = signed_repo
    image = make_image(f"kms half release {repo}")
    src = write_oci_layout(tmp_path / "oci", "1.0", image)
    ci = ci_machine(notar_server, kms, tmp_path)
    task_file = write_tasks(
        ci.cwd / "task.yaml", [{"image": f"{repo}:1.0", "src": str(src), "signer_name": "ci", "key": key.uri}]
    )
    kms.inject("Sign", "ok", "AccessDeniedException")
    code, out, err = run(ci, kms, key, str(task_file), "-o", "json")
    assert code == 1
    (result,) = json.loads(out)
    assert result["failed_phase"] == "sign" and f"AWS KMS denied kms:Sign on key {key.uri}" in result["error"]
    assert f"FAILED in sign: AWS KMS denied kms:Sign on key {key.uri}" in err
    fresh = Notar(tmp_path / "verifier", notar_server.url, notar_server.ca)
    assert fresh.run("resolve", f"{repo}:1.0", check=False).returncode == 1  # not signed, tag not moved


def test_release_kms_errors(
    notar_server: NotarServer, kms: KmsLab, signed_repo: tuple[str, KmsKey], tmp_path: Path
) -> None:
    repo, key = signed_repo
    ci = ci_machine(notar_server, kms, tmp_path)
    rsa = kms.create_key("RSA_2048", alias=kms.unique_alias("rsa"))
    other = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias("other"))
    tasks = [
        {"image": f"{repo}:rsa", "signer_name": "ci", "key": rsa.uri},
        {"image": f"{repo}:other", "signer_name": "ci", "key": other.uri},
    ]
    code, out, _err = run(ci, kms, key, str(write_tasks(ci.cwd / "t.yaml", tasks)), "-o", "json")
    assert code == 1
    bad_spec, not_listed = json.loads(out)
    assert bad_spec["failed_phase"] == "key" and "is RSA_2048: Notary v1" in bad_spec["error"]
    assert not_listed["failed_phase"] == "check"
    assert (
        f"the KMS key {other.uri} (key ID" in not_listed["error"]
        and "is not a key of signer ci" in not_listed["error"]
    )
    both = {
        "image": f"{repo}:1.0",
        "signer_name": "ci",
        "key": key.uri,
        "key_secret_name": "s",
        "region": "us-east-1",
    }
    result = ci.run("release", str(write_tasks(ci.cwd / "both.yaml", [both])), check=False)
    assert result.returncode == 2 and "exclude each other" in result.stderr
    bad_uri = {"image": f"{repo}:1.0", "signer_name": "ci", "key": "awskms:///not-a-key"}
    result = ci.run("release", str(write_tasks(ci.cwd / "bad.yaml", [bad_uri])), check=False)
    assert result.returncode == 2 and "key: 'awskms:///not-a-key'" in result.stderr
