"""Helpers for the release tests: the CLI as a subprocess, AWS environments, key material scanning."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notar.keystore import decode_private_key
from notar.keystore._pkcs8 import notary_private_key_info
from tests.lab import child_env

REPO_PASSPHRASE = "test-repo-passphrase"
ADMIN_PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "test-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": REPO_PASSPHRASE,
}
REGION = "us-east-1"


def aws_env(endpoint: str, *, key_id: str = "testing", secret: str = "testing") -> dict[str, str]:
    """The standard AWS variables: boto3 picks the endpoint override up by itself (AWS_ENDPOINT_URL)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class Notar:
    """`python -m notar` in its own HOME/DOCKER_CONFIG, cwd and TMPDIR, with a minimal environment."""

    def __init__(self, home: Path, server: str, ca: Path, **extra: str) -> None:
        self.home = home
        self.docker_config = home / ".docker"
        self.trust_dir = self.docker_config / "trust"
        self.tmp = home.parent / f"{home.name}-tmp"
        self.cwd = home.parent / f"{home.name}-work"
        for d in (home, self.tmp, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.env = child_env(
            home=home,
            DOCKER_CONFIG=str(self.docker_config),
            DOCKER_CONTENT_TRUST_SERVER=server,
            NOTAR_TLS_CA=str(ca),
            TMPDIR=str(self.tmp),
            **extra,
        )

    def run(
        self, *args: str, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "notar", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"notar {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    @property
    def areas(self) -> list[Path]:
        """Everything a run in this environment can write: HOME (and the trust dir in it), TMPDIR, cwd."""
        return [self.home, self.trust_dir, self.tmp, self.cwd]


@dataclass
class Signer:
    """A signer set up by an administrator: key generated, added to a repository, uploaded to AWS."""

    name: str
    key_id: str
    key_file: Path  # the encrypted key in the admin's trust directory
    key_secret: str
    passphrase_secret: str
    needles: dict[str, bytes] = field(default_factory=dict)

    def task(self, image: str, src: Path | None = None, **override: str) -> dict[str, str]:
        task = {
            "image": image,
            "signer_name": self.name,
            "key_secret_name": self.key_secret,
            "passphrase_secret_name": self.passphrase_secret,
            "region": REGION,
        }
        if src is not None:
            task["src"] = str(src)
        task.update(override)
        return task


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def key_needles(key_file: Path, passphrase: str) -> dict[str, bytes]:
    """Byte strings that must never appear outside the admin's trust directory and Secrets Manager."""
    pem = key_file.read_bytes()
    key = decode_private_key(pem, passphrase).key
    crypto = key.crypto
    assert isinstance(crypto, ec.EllipticCurvePrivateKey)
    scalar = crypto.private_numbers().private_value.to_bytes((crypto.curve.key_size + 7) // 8, "big")
    pkcs8 = crypto.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sec1 = crypto.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    notary_der = bytes(notary_private_key_info(key))
    body = b"".join(
        line for line in pem.splitlines() if line and b":" not in line and not line.startswith(b"-----")
    )
    encrypted_der = base64.b64decode(body)
    return {
        "PEM PRIVATE KEY block": b"PRIVATE KEY-----",
        "private scalar (raw)": scalar,
        "private scalar (hex)": scalar.hex().encode(),
        "private scalar (base64)": base64.b64encode(scalar),
        "PKCS#8 DER": pkcs8,
        "PKCS#8 DER (base64, PEM body start)": base64.b64encode(pkcs8)[:48],
        "SEC1 DER": sec1,
        "notary PrivateKeyInfo DER": notary_der,
        "encrypted PKCS#8 DER": encrypted_der,
        "encrypted PEM body start": body[:48],
        "passphrase": passphrase.encode(),
    }


def snapshot(areas: Iterable[Path]) -> dict[Path, str]:
    out: dict[Path, str] = {}
    for area in areas:
        if not area.exists():
            continue
        for path in [area, *area.rglob("*")]:
            if path.is_file() and not path.is_symlink():
                out[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def find_key_material(
    areas: Iterable[Path], needles: Mapping[str, bytes], extra: Mapping[str, str | bytes] = {}
) -> list[str]:
    """``what in where`` for every needle found in any file below *areas* or in the *extra* texts."""
    hits: list[str] = []
    for path in snapshot(areas):
        data = path.read_bytes()
        hits += [f"{what} in {path}" for what, needle in needles.items() if needle in data]
    for name, text in extra.items():
        data = text.encode() if isinstance(text, str) else text
        hits += [f"{what} in {name}" for what, needle in needles.items() if needle in data]
    return hits


def changed(before: Mapping[Path, str], after: Mapping[Path, str]) -> list[Path]:
    return sorted(p for p, h in after.items() if before.get(p) != h)


def write_tasks(path: Path, tasks: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps({"tasks": tasks}, indent=2))  # JSON is YAML
    return path
