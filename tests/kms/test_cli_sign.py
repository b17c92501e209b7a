"""`notar sign --format v1,notation,cosign` with a KMS signer: through the stored reference, and with
`--key awskms:///...` from a trust directory that holds nothing. Every format verifies (notary list, notar
verify with a Notation trust store, notar verify --key for cosign) and KMS is asked once per signed role
(v1) and once per signed digest (Notation, cosign), however the tags are split."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from notar.crypto import encode_pem
from notar.kms import KmsSigner
from tests.client.test_cli_flow import push_image
from tests.kms.support import Notar
from tests.lab import NotarServer, NotaryCLI, Registry, child_env
from tests.lab.kms import KmsLab

pytestmark = pytest.mark.peers


def verify(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", "verify", *args],
        capture_output=True,
        text=True,
        env=child_env(home=home, XDG_CONFIG_HOME=str(home / "xdg"), DOCKER_CONFIG=str(home / "docker")),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_all_formats_with_a_kms_signer(
    notar_server: NotarServer, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    repo = f"{registry.host}/kms-sign/app-{uuid.uuid4().hex[:8]}"
    digests = {
        tag: push_image(registry, tmp_path, repo.split("/", 1)[1], tag, f"kms formats {tag}")
        for tag in ("1.0", "1.1", "2.0")
    }
    key = kms.create_key(alias=kms.unique_alias("formats"))
    admin = Notar(tmp_path / "admin", notar_server.url, notar_server.ca, kms)
    admin.run("signer", "add", "ci", repo, "--key", key.uri)
    admin.run("cert", "generate", "ci", "--subject", "C=US,ST=WA,O=Acme,CN=ci")  # finds the reference
    kms.reset()
    admin.run("sign", f"{repo}:1.0", f"{repo}:1.1", "--format", "v1,notation,cosign")
    assert kms.calls("Sign") == 2 + 2 + 2 and kms.calls("GetPublicKey") == 0  # v1: 2 roles; 2 digests x 2

    # v1: the Go notary CLI from a fresh trust dir
    fresh = NotaryCLI(notar_server.url, notar_server.ca, tmp_path / "fresh", home=tmp_path / "fresh-home")
    listing = fresh.run("list", repo, "-r", "targets/releases").stdout
    assert all(digests[t].split(":")[1] in listing for t in ("1.0", "1.1"))
    # Notation: notar verify with a trust store holding the KMS-signed certificate
    home = tmp_path / "verifier"
    store = home / "xdg" / "notation" / "truststore" / "x509" / "ca" / "ci"
    store.mkdir(parents=True)
    (store / "ci.crt").write_text(admin.run("cert", "show", "ci").stdout)
    policy = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "ci",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:ci"],
                "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=ci"],
            }
        ],
    }
    (home / "xdg" / "notation" / "trustpolicy.json").write_text(json.dumps(policy))
    for tag in ("1.0", "1.1"):
        run = verify(home, f"{repo}:{tag}")
        assert run.returncode == 0, run.stderr
    # cosign: notar verify --key with the KMS public key
    public = KmsSigner.open(key.uri).public_key
    (tmp_path / "ci.pub").write_bytes(encode_pem("PUBLIC KEY", public.public))
    run = verify(home, f"{repo}:1.1", "--key", str(tmp_path / "ci.pub"))
    assert run.returncode == 0, run.stderr

    # --key from a machine whose trust directory holds nothing: the same key, named on the command line
    ci = Notar(tmp_path / "ci", notar_server.url, notar_server.ca, kms)
    kms.reset()
    ci.run("sign", f"{repo}:2.0", "--format", "v1,cosign", "--key", key.uri)
    assert kms.calls("GetPublicKey") == 1 and kms.calls("Sign") == 2 + 1
    assert not (ci.trust_dir / "private").exists()
    assert digests["2.0"].split(":")[1] in fresh.run("list", repo, "-r", "targets/releases").stdout
    assert verify(home, f"{repo}:2.0", "--key", str(tmp_path / "ci.pub")).returncode == 0
    # Notation with --key and no certificate for it: that format fails, in one line, the others are not run
    out = ci.run("sign", f"{repo}:2.0", "--format", "notation", "--key", key.uri, check=False)
    assert out.returncode == 1 and "has no certificate" in out.stderr and "Traceback" not in out.stderr
    both = ("--format", "cosign", "--key", key.uri, "--signer", "ci")
    assert "exclude each other" in ci.fail("sign", f"{repo}:2.0", *both, code=2)
    assert "is not a key ID" in ci.fail("sign", f"{repo}:2.0", "--key", "awskms:///nope", code=2)
