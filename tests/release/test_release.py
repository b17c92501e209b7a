"""`notar release` end to end against real peers: moto (Secrets Manager, server mode), `notar server`, the
distribution registry; the CLI runs as a subprocess in a clean "CI machine" HOME, TMPDIR and cwd.

Every test also proves that no private key material (PEM blocks, raw scalar, DER, passphrase) was left in
any file the run could write, nor printed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.lab import LOOPBACK, NotarServer, Registry, free_port
from tests.registry.images import Skopeo, make_image, write_oci_layout
from tests.release.conftest import IamMoto, MakeSigner, Moto
from tests.release.support import (
    REGION,
    Notar,
    Signer,
    changed,
    find_key_material,
    snapshot,
    unique,
    write_tasks,
)

pytestmark = pytest.mark.peers


def layout(tmp_path: Path, tag: str, text: str) -> tuple[Path, str]:
    image = make_image(text)
    return write_oci_layout(tmp_path / unique("oci"), tag, image), image.manifest.digest


def run_release(
    ci: Notar, signer: Signer, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `notar release ARGS` on the CI machine; assert nothing secret was left or printed."""
    before = snapshot(ci.areas)
    result = ci.run("release", *args, check=False, env=env)
    after = snapshot(ci.areas)
    hits = find_key_material(ci.areas, signer.needles, {"stdout": result.stdout, "stderr": result.stderr})
    assert not hits, (hits, changed(before, after))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def resolve(notar_server: NotarServer, tmp_path: Path, image: str) -> str:
    fresh = Notar(tmp_path / unique("verifier"), notar_server.url, notar_server.ca)
    return fresh.run("resolve", image).stdout.strip()


# --------------------------------------------------------------------------- success


def test_release_task_file_with_src(
    ci: Notar,
    make_signer: MakeSigner,
    image_repo: str,
    registry: Registry,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    signer = make_signer("ci", image_repo)
    src, digest = layout(tmp_path, "1.0", "release one")
    task_file = write_tasks(ci.cwd / "task.yaml", [signer.task(f"{image_repo}:1.0", src)])
    before = snapshot(ci.areas)
    code, out, err = run_release(ci, signer, str(task_file), "-o", "json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["ok"] and result["image"] == f"{image_repo}:1.0"
    assert result["digest"] == digest and result["signer"] == "ci" and result["key_id"] == signer.key_id
    assert result["trust_server"] == notar_server.url and result["pushed"] is True
    assert result["roles"] == ["targets/ci", "targets/releases"]
    assert set(result["phases"]) == {
        "secrets",
        "decrypt",
        "check",
        "push",
        "sign",
        "publish",
        "tag",
        "verify",
    }
    # what the run wrote: only cached (public) trust metadata and its lock, below the trust directory
    written = changed(before, snapshot(ci.areas))
    assert written and all(p.is_relative_to(ci.trust_dir / "tuf") for p in written), written
    assert not (ci.trust_dir / "private").exists()
    assert not any(ci.tmp.iterdir())
    # anybody resolves the tag to the pushed digest, and the registry serves it under the tag
    assert resolve(notar_server, tmp_path, f"{image_repo}:1.0") == f"{image_repo}@{digest}"
    raw = Skopeo(tmp_path).inspect_raw(f"{image_repo}:1.0")
    assert "sha256:" + __import__("hashlib").sha256(raw).hexdigest() == digest


def test_release_flags_from_environment_without_src(
    ci: Notar,
    make_signer: MakeSigner,
    image_repo: str,
    registry: Registry,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    signer = make_signer("builder", image_repo)
    src, digest = layout(tmp_path, "2.0", "already pushed")
    Skopeo(tmp_path).push_layout(src, "2.0", f"{image_repo}:2.0")
    env = {
        "NOTAR_RELEASE_IMAGE": f"{image_repo}:2.0",
        "NOTAR_SIGNER_NAME": signer.name,
        "NOTAR_KEY_SECRET_NAME": signer.key_secret,
        "NOTAR_PASSPHRASE_SECRET_NAME": signer.passphrase_secret,
        "AWS_REGION": REGION,
    }
    code, out, err = run_release(ci, signer, env=env)
    assert code == 0, err
    assert out.strip() == f"{image_repo}@{digest}"
    assert f"signed {digest} by builder (key {signer.key_id})" in err  # plain progress lines (no TTY)
    assert "secrets ..." in err and "verify ..." in err
    assert resolve(notar_server, tmp_path, f"{image_repo}:2.0") == f"{image_repo}@{digest}"


def test_one_failed_task_does_not_stop_the_others(
    ci: Notar, make_signer: MakeSigner, image_repo: str, notar_server: NotarServer, tmp_path: Path
) -> None:
    signer = make_signer("ci", image_repo)
    src1, d1 = layout(tmp_path, "1", "first")
    src3, d3 = layout(tmp_path, "3", "third")
    tasks = [
        signer.task(f"{image_repo}:1", src1),
        signer.task(f"{image_repo}:2", src1, key_secret_name="notar/no/such/secret"),
        signer.task(f"{image_repo}:3", src3),
    ]
    code, out, err = run_release(ci, signer, str(write_tasks(ci.cwd / "t.yaml", tasks)), "--output", "json")
    assert code == 1
    results = json.loads(out)
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[1]["failed_phase"] == "secrets" and "does not exist" in results[1]["error"]
    assert "1 of 3 release task(s) failed" in err
    assert resolve(notar_server, tmp_path, f"{image_repo}:1") == f"{image_repo}@{d1}"
    assert resolve(notar_server, tmp_path, f"{image_repo}:3") == f"{image_repo}@{d3}"


# --------------------------------------------------------------------------- failures


def _failing(ci: Notar, signer: Signer, task: dict[str, str], *extra: str) -> dict[str, object]:
    code, out, err = run_release(
        ci, signer, str(write_tasks(ci.cwd / unique("t"), [task])), "-o", "json", *extra
    )
    assert code == 1, err
    (result,) = json.loads(out)
    assert result["ok"] is False and result["error"]
    assert str(result["error"]) in err  # the reason is on stderr too, in one line
    return dict(result)


def test_missing_secret(ci: Notar, make_signer: MakeSigner, image_repo: str) -> None:
    signer = make_signer("ci", image_repo)
    result = _failing(
        ci, signer, signer.task(f"{image_repo}:1", passphrase_secret_name="notar/missing/passphrase")
    )
    assert result["failed_phase"] == "secrets"
    assert "secret 'notar/missing/passphrase' in us-east-1" in str(result["error"])
    assert "does not exist: ResourceNotFoundException" in str(result["error"])


def test_wrong_passphrase(ci: Notar, make_signer: MakeSigner, image_repo: str, moto: Moto) -> None:
    signer = make_signer("ci", image_repo)
    wrong = f"notar/wrong-{uuid.uuid4().hex[:8]}"
    moto.client().create_secret(Name=wrong, SecretString="not-the-passphrase")  # type: ignore[attr-defined]
    result = _failing(ci, signer, signer.task(f"{image_repo}:1", passphrase_secret_name=wrong))
    assert result["failed_phase"] == "decrypt"
    assert result["error"] == (
        f"the passphrase in secret {wrong!r} does not decrypt the key in secret {signer.key_secret!r}"
    )


def test_put_signer_refuses_a_wrong_passphrase_and_overwrites(
    admin: Notar, make_signer: MakeSigner, image_repo: str, moto: Moto
) -> None:
    signer = make_signer("ci", image_repo)
    common = ["--key", str(signer.key_file), "--region", REGION, "--key-secret-name", signer.key_secret]
    common += ["--passphrase-secret-name", signer.passphrase_secret]
    again = admin.run(
        "secrets",
        "put-signer",
        "ci",
        *common,
        "--passphrase-env",
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
        check=False,
    )
    assert again.returncode == 1 and "already exist" in again.stderr and "--force" in again.stderr
    bad = admin.run(
        "secrets",
        "put-signer",
        "ci",
        *common,
        "--passphrase-env",
        "WRONG",
        "--force",
        check=False,
        env={"WRONG": "nope-nope"},
    )
    assert bad.returncode == 1 and "wrong passphrase" in bad.stderr and "nope-nope" not in bad.stderr
    forced = admin.run(
        "secrets",
        "put-signer",
        "ci",
        *common,
        "--passphrase-env",
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
        "--force",
        "-o",
        "json",
    )
    assert json.loads(forced.stdout)["key_id"] == signer.key_id
    versions = moto.client().list_secret_version_ids(SecretId=signer.key_secret)["Versions"]  # type: ignore[attr-defined]
    assert len(versions) == 2


def test_signer_that_is_not_a_delegation(
    ci: Notar, make_signer: MakeSigner, image_repo: str, tmp_path: Path
) -> None:
    make_signer("alice", image_repo)  # the repository exists, with alice as its signer
    mallory = make_signer("mallory", image_repo, add=False)
    src, _ = layout(tmp_path, "1", "mallory's")
    result = _failing(ci, mallory, mallory.task(f"{image_repo}:1", src))
    assert result["failed_phase"] == "check"
    name = image_repo
    assert str(result["error"]).startswith(
        f"mallory is not a signer (delegation targets/mallory) of {name}; signers: alice"
    )
    assert result["pushed"] is False  # checked before anything was pushed
    # mallory's key under alice's name: refused too
    impostor = mallory.task(f"{image_repo}:1", src, signer_name="alice")
    result = _failing(ci, mallory, impostor)
    assert f"(key ID {mallory.key_id[:12]}) is not a key of signer alice" in str(result["error"])


def test_registry_down(ci: Notar, make_signer: MakeSigner, tmp_path: Path) -> None:
    dead = f"{LOOPBACK}:{free_port()}/release/app-{uuid.uuid4().hex[:8]}"
    signer = make_signer("ci", dead)  # trust data exists; the registry does not answer
    src, _ = layout(tmp_path, "1", "nowhere")
    for task in (signer.task(f"{dead}:1"), signer.task(f"{dead}:1", src)):
        result = _failing(ci, signer, task)
        assert result["failed_phase"] == "push"
        assert str(result["error"]).startswith(f"registry {dead.split('/')[0]}:")


def test_trust_server_down(ci: Notar, make_signer: MakeSigner, image_repo: str, tmp_path: Path) -> None:
    signer = make_signer("ci", image_repo)
    src, _ = layout(tmp_path, "1", "unsigned")
    down = f"https://{LOOPBACK}:{free_port()}"
    result = _failing(ci, signer, signer.task(f"{image_repo}:1", src), "--server", down)
    assert result["failed_phase"] == "check"
    assert f"error contacting trust server {down}" in str(result["error"])
    assert result["trust_server"] == down


def test_aws_access_denied(
    iam_moto: IamMoto, notar_server: NotarServer, make_signer: MakeSigner, image_repo: str, tmp_path: Path
) -> None:
    """A real IAM decision by moto: the CI user's policy allows only DescribeSecret, so GetSecretValue is
    denied (AccessDenied over HTTP), exactly as AWS answers a role without secretsmanager:GetSecretValue."""
    admin_env = iam_moto.moto.env(key_id=iam_moto.admin[0], secret=iam_moto.admin[1])
    from tests.release.support import ADMIN_PASSPHRASES

    admin = Notar(tmp_path / "iam-admin", notar_server.url, notar_server.ca, **ADMIN_PASSPHRASES, **admin_env)
    signer = make_signer("ci", image_repo, admin=admin)
    key_id, secret = iam_moto.user(
        unique("ci"),
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}],
        },
    )
    ci = Notar(
        tmp_path / "iam-ci",
        notar_server.url,
        notar_server.ca,
        **iam_moto.moto.env(key_id=key_id, secret=secret),
    )
    result = _failing(ci, signer, signer.task(f"{image_repo}:1"))
    assert result["failed_phase"] == "secrets"
    error = str(result["error"])
    assert error.startswith(
        f"access denied to read secret {signer.key_secret!r} in us-east-1 ({iam_moto.moto.url})"
    )
    assert "is not authorized to perform: secretsmanager:GetSecretValue" in error
    # with the right permission the same job signs
    key_id, secret = iam_moto.user(
        unique("ci"),
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
        },
    )
    src, digest = layout(tmp_path, "1", "allowed")
    ok = Notar(
        tmp_path / "iam-ok",
        notar_server.url,
        notar_server.ca,
        **iam_moto.moto.env(key_id=key_id, secret=secret),
    )
    code, out, err = run_release(
        ok, signer, str(write_tasks(ok.cwd / "t.yaml", [signer.task(f"{image_repo}:1", src)]))
    )
    assert code == 0, err
    assert out.strip() == f"{image_repo}@{digest}"


def test_key_secret_stored_as_secret_binary(
    ci: Notar,
    make_signer: MakeSigner,
    image_repo: str,
    moto: Moto,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    """Some teams store the key file as SecretBinary (e.g. `aws secretsmanager ... --secret-binary fileb://`)."""
    signer = make_signer("binary", image_repo)
    secrets = moto.client()
    binary_name = f"{signer.key_secret}-binary"
    secrets.create_secret(Name=binary_name, SecretBinary=signer.key_file.read_bytes())  # type: ignore[attr-defined]
    src, digest = layout(tmp_path, "3.0", "binary secret")
    Skopeo(tmp_path).push_layout(src, "3.0", f"{image_repo}:3.0")
    env = {
        "NOTAR_RELEASE_IMAGE": f"{image_repo}:3.0",
        "NOTAR_SIGNER_NAME": signer.name,
        "NOTAR_KEY_SECRET_NAME": binary_name,
        "NOTAR_PASSPHRASE_SECRET_NAME": signer.passphrase_secret,
        "AWS_REGION": REGION,
    }
    code, out, err = run_release(ci, signer, env=env)
    assert code == 0, err
    assert out.strip() == f"{image_repo}@{digest}"
    assert resolve(notar_server, tmp_path, f"{image_repo}:3.0") == f"{image_repo}@{digest}"
