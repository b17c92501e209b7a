"""Notary v1 with a key that never leaves KMS, end to end against the real peers:

`notar signer add NAME IMAGE --key awskms:///alias/...` (public key from GetPublicKey, reference kept in
the trust directory), `notar sign` through the stored reference (one KMS Sign per signed role, however
many tags), read back by the Go notary CLI and docker trust inspect from fresh trust directories, a KMS
failure in the middle of a sign leaving the trust data untouched, and one-line errors.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.client.test_cli_flow import push_image
from tests.kms.support import Notar
from tests.lab import NotarServer, NotaryCLI, NotaryServer, Registry
from tests.lab.kms import KmsLab

pytestmark = pytest.mark.peers


@pytest.fixture(params=["notar-server", "notary-server"])
def trust_server(request: pytest.FixtureRequest) -> NotaryServer | NotarServer:
    name = "notary_server" if request.param == "notary-server" else "notar_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def docker_trust(notar: Notar, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "trust", *args],
        capture_output=True,
        text=True,
        env=notar.env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_kms_signer_signs_and_go_clients_verify(
    trust_server: NotaryServer | NotarServer, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    repo = f"{registry.host}/kms/app-{uuid.uuid4().hex[:8]}"
    path = repo.split("/", 1)[1]
    d1 = push_image(registry, tmp_path, path, "1.0", f"kms one {trust_server.url}")
    d2 = push_image(registry, tmp_path, path, "2.0", f"kms two {trust_server.url}")
    key = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias("release"))
    notar = Notar(tmp_path / "admin", trust_server.url, trust_server.ca, kms)

    added = json.loads(notar.run("signer", "add", "ci", repo, "--key", key.uri, "-o", "json").stdout)
    [entry] = added
    [key_id] = entry["keys"]
    assert entry["kms_keys"] == {key_id: key.uri} and entry["initialized"] is True
    listing = json.loads(notar.run("key", "list", "-o", "json").stdout)
    [kms_entry] = [k for k in listing if "kms" in k]
    assert kms_entry == {"key_id": key_id, "role": "ci", "gun": None, "certificate": None, "kms": key.uri}
    assert not (notar.trust_dir / "private" / f"{key_id}.key").exists()
    text = notar.run("key", "list").stdout
    assert "KMS SIGNER" in text and key.uri in text and key_id in text

    # signing: the stored reference is used; one Sign per signed role (targets/ci, targets/releases)
    kms.reset()
    notar.run("sign", f"{repo}:1.0", f"{repo}:2.0")
    assert kms.calls("Sign") == 2 and kms.calls("GetPublicKey") == 0
    assert {e["message_type"] for e in kms.call_log("Sign")} == {"DIGEST"}

    # the Go notary CLI, fresh trust dir: TOFU, verifies targets/releases signed by the KMS key
    fresh = NotaryCLI(
        trust_server.url, trust_server.ca, tmp_path / "fresh-notary", home=tmp_path / "fresh-home"
    )
    listing_go = fresh.run("list", repo, "-r", "targets/releases").stdout
    assert "1.0" in listing_go and d1.split(":")[1] in listing_go
    assert "2.0" in listing_go and d2.split(":")[1] in listing_go
    delegations = fresh.run("delegation", "list", repo).stdout
    assert key_id in delegations

    # docker reads it too, and agrees with notar inspect; resolve from a fresh trust dir
    reader = Notar(tmp_path / "reader", trust_server.url, trust_server.ca, kms)
    ours = json.loads(reader.run("inspect", f"{repo}:1.0").stdout)
    d = docker_trust(reader, "inspect", f"{repo}:1.0")
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout) == ours
    assert (
        ours[0]["SignedTags"][0]["Signers"] == ["ci"]
        and ours[0]["SignedTags"][0]["Digest"] == d1.split(":")[1]
    )
    assert reader.run("resolve", f"{repo}:2.0").stdout.strip() == f"{repo}@{d2}"

    # one tag: still one call per role, not per tag
    kms.reset()
    notar.run("sign", f"{repo}:1.0")
    assert kms.calls("Sign") == 2


def test_kms_failure_mid_sign_publishes_nothing(
    notar_server: NotarServer, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    repo = f"{registry.host}/kms/half-{uuid.uuid4().hex[:8]}"
    push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", "kms half")
    key = kms.create_key(alias=kms.unique_alias("half"))
    notar = Notar(tmp_path / "admin", notar_server.url, notar_server.ca, kms)
    notar.run("signer", "add", "ci", repo, "--key", key.uri)
    before = json.loads(notar.run("inspect", repo).stdout)
    kms.reset()
    kms.inject("Sign", "ok", "AccessDeniedException")  # the first role is signed, the second is denied
    line = notar.fail("sign", f"{repo}:1.0")
    assert f"AWS KMS denied kms:Sign on key {key.uri}" in line
    assert kms.calls("Sign") == 2
    fresh = Notar(tmp_path / "fresh", notar_server.url, notar_server.ca, kms)
    assert json.loads(fresh.run("inspect", repo).stdout) == before  # nothing was published
    assert fresh.run("resolve", f"{repo}:1.0", check=False).returncode == 1
    kms.reset()
    notar.run("sign", f"{repo}:1.0")  # KMS answers again: the same command signs
    assert fresh.run("resolve", f"{repo}:1.0", check=False).returncode == 0


def test_cli_errors_are_one_line(
    notar_server: NotarServer, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    repo = f"{registry.host}/kms/errors-{uuid.uuid4().hex[:8]}"
    push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", "kms errors")
    notar = Notar(tmp_path / "admin", notar_server.url, notar_server.ca, kms)
    rsa = kms.create_key("RSA_2048", alias=kms.unique_alias("rsa"))
    line = notar.fail("signer", "add", "ci", repo, "--key", rsa.uri, code=2)
    assert "is RSA_2048: Notary v1 (docker trust) signatures need an ECC_NIST_P256 key" in line
    encrypting = kms.create_key("RSA_2048", usage="ENCRYPT_DECRYPT", alias=kms.unique_alias("enc"))
    assert "key usage ENCRYPT_DECRYPT" in notar.fail(
        "signer", "add", "ci", repo, "--key", encrypting.uri, code=2
    )
    assert "is not a key ID, key ARN" in notar.fail(
        "signer", "add", "ci", repo, "--key", "awskms:///nope", code=2
    )
    assert "does not exist" in notar.fail("signer", "add", "ci", repo, "--key", "awskms:///alias/absent-x")
    assert (
        not list((notar.trust_dir / "private").glob("*.kms"))
        if (notar.trust_dir / "private").exists()
        else True
    )

    key = kms.create_key(alias=kms.unique_alias("state"))
    notar.run("signer", "add", "ci", repo, "--key", key.uri)
    kms.client().disable_key(KeyId=key.key_id)
    assert f"KMS key {key.uri} is disabled" in notar.fail("sign", f"{repo}:1.0")
    kms.client().enable_key(KeyId=key.key_id)
    kms.inject("Sign", *["ThrottlingException"] * 10)
    assert "throttled kms:Sign" in notar.fail("sign", f"{repo}:1.0")
    kms.reset()
    unreachable = Notar(
        tmp_path / "admin", notar_server.url, notar_server.ca, kms, AWS_ENDPOINT_URL_KMS="http://127.0.0.1:9"
    )
    assert "cannot reach AWS KMS at http://127.0.0.1:9" in unreachable.fail("sign", f"{repo}:1.0")
    notar.run("sign", f"{repo}:1.0")
