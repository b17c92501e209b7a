"""Helpers for the KMS CLI tests: notar as a subprocess with AWS pointed at the lab KMS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.lab import child_env
from tests.lab.kms import KmsLab

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "test-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "test-repo-passphrase",
}


class Notar:
    """`python -m notar` in its own HOME/DOCKER_CONFIG with the lab KMS as AWS."""

    def __init__(self, home: Path, server: str, ca: Path, kms: KmsLab, **extra: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.docker_config = home / ".docker"
        self.trust_dir = self.docker_config / "trust"
        self.env = child_env(
            home=home,
            DOCKER_CONFIG=str(self.docker_config),
            DOCKER_CONTENT_TRUST_SERVER=server,
            NOTAR_TLS_CA=str(ca),
            **PASSPHRASES,
            **{**kms.env(), **extra},
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "notar", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"notar {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def fail(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail with *code*; its stderr, which must be one ``notar: error:`` line
        (click's usage errors: a ``Usage:`` block ending in one ``Error:`` line)."""
        result = self.run(*args, check=False)
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        assert len(errors) == 1, result.stderr
        assert "Traceback" not in result.stderr
        return errors[0]
