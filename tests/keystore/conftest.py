"""Shared fixtures for the keystore tests: the notary 0.7 vectors, lab passphrases, ready-made keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from notar.crypto import PrivateKey
from notar.keystore import CallbackPassphrases, EnvPassphrases

# The real notary-server / notary CLI fixtures (notary_server, notary_cli, lab_pki) come from
# tests/lab/fixtures.py, which the root tests/conftest.py registers with ``pytest_plugins``. Importing
# them here as well would define the session fixtures twice and start a second notary-server.
from tests.conftest import VECTORS

KEYS_EXAMPLE = VECTORS / "keys-example"
PBKDF2_SAFE_EXAMPLES = 15  # hypothesis examples for tests that run PBKDF2 (2048 iterations each)


def _readme_passphrases() -> dict[str, str]:
    """``ENV_VAR -> passphrase`` from the table in the vectors' README."""
    text = (VECTORS / "README.md").read_text()
    found = dict(
        re.findall(r"\|\s*((?:NOTARY|DOCKER_CONTENT_TRUST)_\w+_PASSPHRASE)\s*\|\s*`([^`]+)`\s*\|", text)
    )
    assert len(found) == 6, found  # four notary variables, two docker ones
    return found


LAB_ENV: Mapping[str, str] = _readme_passphrases()


def vector_tool(path: Path) -> Literal["docker", "notary"]:
    """Which CLI wrote a vector key file: ``docker`` or ``notary``."""
    rel = path.relative_to(VECTORS).as_posix()
    return "docker" if rel.startswith("docker-cli/") or path.name.startswith("docker-") else "notary"


def lab_passphrase(path: Path, role: str) -> str:
    """The passphrase of a vector key file: the tool's own environment rules applied to the README table."""
    flavor = vector_tool(path)
    return EnvPassphrases(flavor, environ=LAB_ENV)("", role, create_new=False, attempt=0)


def constant(passphrase: str) -> CallbackPassphrases:
    return CallbackPassphrases(lambda _key_id, _alias: passphrase)


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return PrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def keys(rsa_key: PrivateKey) -> dict[str, PrivateKey]:
    """One key of each type (the RSA one is reused: generating RSA keys is slow)."""
    return {"ecdsa": PrivateKey.generate("ecdsa"), "ed25519": PrivateKey.generate("ed25519"), "rsa": rsa_key}
