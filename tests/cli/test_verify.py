"""``notar verify`` as a process, against the real docker-registry (no referrers API: the tag schema).

The notation e2e OCI layouts (tests/vectors/notation/README.md) are copied into the registry as they are
stored -- image, signature manifest, envelope and the ``sha256-<hex>`` tag index -- and verified with the
e2e trust policy and a ``ca:e2e`` trust store holding e2e.crt, in a temporary XDG_CONFIG_HOME: valid
verifies, invalid fails at integrity, expired fails at expiry (strict). Bad input is one line and exit 2;
an unreachable registry one line and exit 1; never a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from notar.cosign import append_signature, sign_image
from notar.crypto import PrivateKey
from notar.registry import (
    MEDIA_TYPE_OCI_MANIFEST,
    RegistryClient,
    Update,
    add_referrer,
    append_cosign_signature,
)
from tests.lab import LOOPBACK, Registry, child_env, free_port
from tests.notation.conftest import E2E, LAYOUTS
from tests.registry.artifacts import push_image, push_oci_layout
from tests.registry.images import make_image

pytestmark = pytest.mark.peers

SUBJECT = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
INVALID_SIGNATURE = LAYOUTS / "e2e-invalid-signature"
STRICT_E2E = (E2E / "config" / "trustpolicies" / "trustpolicy.json").read_bytes()


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def one_line_error(self) -> str:
        """The whole of stderr, which must be exactly one ``notar: error:`` line."""
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("notar: error: "), self.stderr
        return lines[0]


def policy(
    level: str = "strict", stores: tuple[str, ...] = ("ca:e2e",), scopes: tuple[str, ...] = ("*",)
) -> bytes:
    """A one-statement trust policy (level ``skip`` takes no stores and identities)."""
    statement: dict[str, Any] = {
        "name": "test",
        "registryScopes": list(scopes),
        "signatureVerification": {"level": level},
    }
    if level != "skip":
        statement |= {"trustStores": list(stores), "trustedIdentities": ["*"]}
    return json.dumps({"version": "1.0", "trustPolicies": [statement]}).encode()


@pytest.fixture(scope="module")
def repos(registry: Registry) -> dict[str, str]:
    """Each e2e layout in its own repository (they share the subject digest): name -> HOST/REPO."""
    out = {}
    with RegistryClient(registry.host) as client:
        for name in ("valid", "invalid", "expired"):
            repo = f"e2e-{name}-{uuid.uuid4().hex[:8]}"
            tags = push_oci_layout(client, repo, LAYOUTS / f"e2e-{name}-signature")
            assert tags["v1"] == SUBJECT and f"sha256-{SUBJECT[7:]}" in tags
            out[name] = f"{registry.host}/{repo}"
    return out


class Notar:
    """Runs ``python -m notar verify`` with its own HOME, XDG_CONFIG_HOME and DOCKER_CONFIG."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.config = home / "xdg" / "notation"  # notation's configuration directory
        self.config.mkdir(parents=True)

    def trust(self, policy_bytes: bytes = STRICT_E2E, *, name: str = "trustpolicy.json") -> Notar:
        """The e2e trust policy (or *policy_bytes*) and ``ca:e2e`` holding e2e.crt."""
        store = self.config / "truststore" / "x509" / "ca" / "e2e"
        store.mkdir(parents=True, exist_ok=True)
        shutil.copy(E2E / "config" / "localkeys" / "e2e.crt", store / "e2e.crt")
        (self.config / name).write_bytes(policy_bytes)
        return self

    def __call__(self, *args: str) -> Run:
        env = child_env(
            home=self.home, XDG_CONFIG_HOME=str(self.home / "xdg"), DOCKER_CONFIG=str(self.home / "docker")
        )
        done = subprocess.run(
            [sys.executable, "-m", "notar", "verify", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def notar(tmp_path: Path) -> Iterator[Notar]:
    yield Notar(tmp_path / "home")


# ------------------------------------------------------------------------------------ the vectors


def test_valid_signature_verifies_by_tag_as_notation_prints_it(repos: dict[str, str], notar: Notar) -> None:
    run = notar.trust()(f"{repos['valid']}:v1")
    assert run.code == 0, run.stderr
    assert run.stdout == f"Successfully verified signature for {repos['valid']}@{SUBJECT}\n"
    assert run.stderr.splitlines() == [
        f"Resolved artifact tag `v1` to digest `{SUBJECT}` before verification.",
        "Warning: The resolved digest may not point to the same signed artifact, since tags are mutable.",
    ]


def test_valid_signature_verifies_by_digest_without_the_tag_warning(
    repos: dict[str, str], notar: Notar
) -> None:
    run = notar.trust()(f"{repos['valid']}@{SUBJECT}")
    assert (run.code, run.stderr) == (0, "")
    assert run.stdout == f"Successfully verified signature for {repos['valid']}@{SUBJECT}\n"


@pytest.mark.parametrize(
    ("name", "code", "failed_step", "reason"),
    [
        ("valid", 0, None, None),
        ("invalid", 1, "integrity", "layer media type 'application/vnd.oci.image.layer.v1.tar'"),
        ("expired", 1, "expiry", "the signature expired at 2023-06-27T13:21:21+08:00"),
    ],
)
def test_every_e2e_vector_in_json(
    repos: dict[str, str], notar: Notar, name: str, code: int, failed_step: str | None, reason: str | None
) -> None:
    run = notar.trust()(f"{repos[name]}:v1", "-o", "json")
    assert run.code == code, run.stderr
    report = run.json()
    assert report["reference"] == f"{repos[name]}@{SUBJECT}" and report["tag"] == "v1"
    assert report["verified"] is (code == 0) and report["result"] == ("Success" if code == 0 else "Failure")
    assert report["referrers"] == "referrers tag schema"
    assert report["trustPolicy"] == {"statement": "e2e", "level": "strict"}
    [signature] = report["signatures"]
    assert signature["failedStep"] == failed_step
    statuses = [s["status"] for s in signature["steps"]]
    if failed_step is None:
        assert statuses == ["passed"] * 5
        assert signature["signedBy"] == "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"
    else:
        assert reason is not None and reason in signature["reason"]
        failed_at = [s["step"] for s in signature["steps"]].index(failed_step)
        assert statuses[failed_at] == "failed" and set(statuses[failed_at + 1 :]) <= {"skipped"}
        assert (
            f"Error: signature verification failed for all the signatures associated with {repos[name]}@{SUBJECT}"
            in run.stderr
        )
        assert f"{failed_step} failed: " in run.stderr


def test_one_good_signature_among_bad_ones_is_enough(registry: Registry, notar: Notar) -> None:
    """The invalid vector's signature manifest added as a second referrer (with add_referrer) to the valid one."""
    repo = f"e2e-mixed-{uuid.uuid4().hex[:8]}"
    bad = json.loads((INVALID_SIGNATURE / "index.json").read_text())["manifests"][1]
    blob = lambda digest: (INVALID_SIGNATURE / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()  # noqa: E731
    manifest = blob(bad["digest"])
    layers = [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]
    with RegistryClient(registry.host) as client:
        push_oci_layout(client, repo, LAYOUTS / "e2e-valid-signature")
        added = add_referrer(client, repo, manifest, blobs={d["digest"]: blob(d["digest"]) for d in layers})
    assert added.subject == SUBJECT
    run = notar.trust()(f"{registry.host}/{repo}@{SUBJECT}", "-o", "json")
    assert run.code == 0, run.stderr
    first, second = run.json()["signatures"]
    assert (first["verified"], second["failedStep"]) == (True, "integrity")


def test_trustpolicy_oci_json_is_preferred_and_levels_apply(repos: dict[str, str], notar: Notar) -> None:
    notar.trust()  # the strict e2e policy as trustpolicy.json ...
    notar.trust(policy("audit"), name="trustpolicy.oci.json")  # ... and an audit one that wins
    run = notar(f"{repos['expired']}@{SUBJECT}")
    assert run.code == 0, run.stderr
    assert "Warning: expiry verification failed (logged, not enforced): the signature expired" in run.stderr
    skip = notar.trust(policy("skip"), name="trustpolicy.oci.json")(f"{repos['invalid']}@{SUBJECT}")
    assert skip.code == 0, skip.stderr
    assert (
        skip.stdout
        == f"Trust policy is configured to skip signature verification for {repos['invalid']}@{SUBJECT}\n"
    )


def test_trust_policy_and_trust_store_overrides(repos: dict[str, str], notar: Notar, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "certs" / "x509" / "ca" / "e2e").mkdir(parents=True)
    shutil.copy(E2E / "config" / "localkeys" / "e2e.crt", elsewhere / "certs" / "x509" / "ca" / "e2e")
    (elsewhere / "policy.json").write_bytes(STRICT_E2E)
    args = ["--trust-policy", str(elsewhere / "policy.json"), "--trust-store", str(elsewhere / "certs")]
    assert notar(f"{repos['valid']}@{SUBJECT}", *args).code == 0  # nothing in XDG_CONFIG_HOME
    other = elsewhere / "other"
    (other / "x509" / "ca" / "e2e").mkdir(parents=True)
    shutil.copy(E2E / "config" / "localkeys" / "new_e2e.crt", other / "x509" / "ca" / "e2e")  # not the signer
    run = notar.trust()(f"{repos['valid']}@{SUBJECT}", "--trust-store", str(other), "-o", "json")
    assert run.code == 1 and run.json()["signatures"][0]["failedStep"] == "authenticity"


def test_an_image_without_signatures_is_not_verified(registry: Registry, notar: Notar) -> None:
    repo = f"unsigned-{uuid.uuid4().hex[:8]}"
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, make_image("unsigned\n"), "1.0")
    run = notar.trust()(f"{registry.host}/{repo}:1.0")
    assert run.code == 1
    assert run.stderr.splitlines()[-1] == (
        f'Error: signature verification failed: no signature is associated with "{registry.host}/{repo}@{digest}", '
        "make sure the artifact was signed successfully"
    )


# ------------------------------------------------------------------------------------- bad input


def test_broken_policy_json_is_bad_input(repos: dict[str, str], notar: Notar) -> None:
    run = notar.trust(b'{"version": "1.0", "trustPolicies": [')(f"{repos['valid']}:v1")
    assert run.code == 2
    line = run.one_line_error()
    assert str(notar.config / "trustpolicy.json") in line


def test_missing_policy_is_bad_input_with_a_hint(repos: dict[str, str], notar: Notar) -> None:
    run = notar(f"{repos['valid']}:v1")
    assert run.code == 2
    assert "no such file" in run.one_line_error() and "--trust-policy" in run.stderr


def test_an_unknown_trust_store_is_bad_input(repos: dict[str, str], notar: Notar) -> None:
    run = notar.trust(policy(stores=("ca:nope",)))(f"{repos['valid']}:v1")
    assert run.code == 2
    assert "trust store ca:nope does not exist" in run.one_line_error()


def test_a_repository_no_statement_covers_is_bad_input(repos: dict[str, str], notar: Notar) -> None:
    run = notar.trust(policy(scopes=("registry.example.com/other",)))(f"{repos['valid']}:v1")
    assert run.code == 2
    assert "no trust policy statement applies" in run.one_line_error()


@pytest.mark.parametrize(
    "reference", ["127.0.0.1:5000/E2E:v1", "127.0.0.1:5000/e2e@sha256:1234", "e2e:v1:v2"]
)
def test_a_bad_reference_is_bad_input(notar: Notar, reference: str) -> None:
    run = notar.trust()(reference)
    assert run.code == 2
    run.one_line_error()


def test_an_unreachable_registry_is_one_line_and_exit_1(notar: Notar) -> None:
    port = free_port()  # nothing listens there
    run = notar.trust()(f"{LOOPBACK}:{port}/e2e:v1")
    assert run.code == 1
    assert f"registry http://{LOOPBACK}:{port}" in run.one_line_error()


def test_key_and_notation_files_together_are_bad_input(notar: Notar, tmp_path: Path) -> None:
    (tmp_path / "cosign.pub").write_text("not a key")
    run = notar(f"{LOOPBACK}:1/e2e:v1", "--key", str(tmp_path / "cosign.pub"), "--trust-policy", "x")
    assert run.code == 2
    run.one_line_error()
    bad_key = notar(f"{LOOPBACK}:1/e2e:v1", "--key", str(tmp_path / "cosign.pub"))
    assert bad_key.code == 2 and "not a PEM public key" in bad_key.one_line_error()


def test_help_says_where_the_files_are_and_what_is_verified(notar: Notar) -> None:
    run = notar("--help")
    assert run.code == 0
    text = " ".join(run.stdout.split())
    for needed in (
        "trustpolicy.oci.json",
        "$XDG_CONFIG_HOME/notation",
        "~/.config/notation",
        "x509/{ca,signingAuthority,tsa}/<name>/",
        "sha256-<hex>",
        "integrity",
        "authenticity",
        "revocation",
        "Exit codes: 0 verified",
    ):
        assert needed in text, needed


# ------------------------------------------------------------------------------------------ cosign


def _pem(key: PrivateKey) -> bytes:
    return key.public_key.to_crypto().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_cosign_signatures_verify_with_key(registry: Registry, notar: Notar, tmp_path: Path) -> None:
    repo = f"cosign-{uuid.uuid4().hex[:8]}"
    signer, stranger = PrivateKey.generate(), PrivateKey.generate()
    (tmp_path / "cosign.pub").write_bytes(_pem(signer))
    (tmp_path / "other.pub").write_bytes(_pem(stranger))
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, make_image(f"cosign {repo}\n"), "1.0")
        unsigned = push_image(client, repo, make_image(f"unsigned {repo}\n"), "2.0")
        signature = sign_image(f"{registry.host}/{repo}", digest, signer)

        def append(manifest: bytes | None, config: bytes | None) -> Update | None:
            made = append_signature(manifest, config, signature)
            return Update(made.manifest, MEDIA_TYPE_OCI_MANIFEST, made.blobs) if made.appended else None

        append_cosign_signature(client, repo, digest, append)
    shown = f"{registry.host}/{repo}@{digest}"
    good = notar(f"{registry.host}/{repo}:1.0", "--key", str(tmp_path / "cosign.pub"))
    assert good.code == 0, good.stderr
    assert good.stdout == f"Successfully verified cosign signature for {shown}\n"
    wrong = notar(f"{registry.host}/{repo}@{digest}", "--key", str(tmp_path / "other.pub"), "-o", "json")
    assert wrong.code == 1
    [layer] = wrong.json()["signatures"]
    assert layer["reason"] == "signature does not verify with the public key"
    assert (
        f"Error: signature verification failed for all the cosign signatures associated with {shown}"
        in wrong.stderr
    )
    none = notar(f"{registry.host}/{repo}:2.0", "--key", str(tmp_path / "cosign.pub"))
    assert none.code == 1
    assert f"no cosign signature is associated with {registry.host}/{repo}@{unsigned}" in none.stderr
