"""docker-credential-* helpers are run at arm's length: they never see a passphrase variable from notar's
environment (everything else still reaches them), and what they print is capped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notar.registry import DockerConfigCredentials
from notar.registry.credentials import MAX_HELPER_OUTPUT, helper_environment
from notar.registry.errors import CredentialsError

SECRETS = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "root-SECRET-1",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repo-SECRET-2",
    "NOTARY_ROOT_PASSPHRASE": "n-root-SECRET-3",
    "NOTARY_TARGETS_PASSPHRASE": "n-targets-SECRET-4",
    "NOTARY_SNAPSHOT_PASSPHRASE": "n-snapshot-SECRET-5",
    "NOTARY_DELEGATION_PASSPHRASE": "n-delegation-SECRET-6",
    "NOTAR_SERVER_KEY_PASSPHRASE": "server-SECRET-7",
}


HELPER = """#!/bin/sh
env > "{log}"
cat > /dev/null
printf '{{"ServerURL":"x","Username":"bob","Secret":"helper-secret"}}'
"""


def _helper(tmp_path: Path, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-rt"
    script.write_text(body)
    script.chmod(0o755)
    (tmp_path / "config.json").write_text('{"credsStore": "rt"}')
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}", **SECRETS}


def test_credential_helper_never_sees_passphrase_variables(tmp_path: Path) -> None:
    env = _helper(tmp_path, HELPER.format(log=tmp_path / "helper-env"))
    env["notar_custom_passphrase"] = "lower-SECRET-8"
    credentials = DockerConfigCredentials(tmp_path / "config.json", env=env).get_credentials("reg.example")
    assert credentials is not None and credentials.password == "helper-secret"
    seen = (tmp_path / "helper-env").read_text()
    assert "SECRET" not in seen and "PASSPHRASE" not in seen.upper(), seen
    assert f"PATH={env['PATH']}" in seen  # everything else still reaches the helper
    assert helper_environment({"A": "1", "X_PASSPHRASE_FILE": "f"}) == {"A": "1"}


def test_credential_helper_output_is_capped(tmp_path: Path) -> None:
    size = MAX_HELPER_OUTPUT * 4
    env = _helper(tmp_path, f"#!/bin/sh\nhead -c {size} /dev/zero | tr '\\0' A\n")
    provider = DockerConfigCredentials(tmp_path / "config.json", env=env, helper_timeout=30)
    with pytest.raises(CredentialsError, match="printed more than 1024 KiB"):
        provider.get_credentials("reg.example")


def test_credential_helper_big_but_allowed_stderr_and_timeout(tmp_path: Path) -> None:
    env = _helper(tmp_path, "#!/bin/sh\nhead -c 3000000 /dev/zero >&2\nexit 3\n")
    with pytest.raises(CredentialsError, match="exit 3"):
        DockerConfigCredentials(tmp_path / "config.json", env=env).get_credentials("reg.example")
