"""The real docker CLI (28.2.2, client only, no daemon) driving ``docker trust ...`` against any trust server.

None of ``docker trust key generate|load``, ``signer add|remove``, ``inspect``, ``revoke`` contacts the
registry or needs a daemon; ``docker trust sign REPO:TAG`` works daemonless only when the tag is already in
the trust data (e.g. put into base ``targets`` with the notary CLI: :meth:`DockerCLI.publish_tag`).

For a loopback registry name (``127.0.0.1:5000/...``) docker does not verify the trust server's
certificate; for another registry name it verifies it against
``$DOCKER_CONFIG/tls/<trust server host:port>/ca.crt`` (where :class:`DockerCLI` installs ``ca``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.lab.notary import NotaryCLI
from tests.lab.process import child_env, require_loopback, run_peer

DOCKER = "/usr/local/bin/docker"
REGISTRY = "127.0.0.1:5000"  # loopback: docker does not verify the trust server certificate
ROOT_PASSPHRASE = "docker-root-pass"
REPOSITORY_PASSPHRASE = "docker-repo-pass"
DIGEST = "64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc"
SIZE = "401"


class DockerCLI:
    """Runs ``docker trust ...`` with a throw-away DOCKER_CONFIG (and HOME) under ``workdir``.

    ``ca`` (if given) is installed where docker looks for the trust server's CA:
    ``$DOCKER_CONFIG/tls/<host:port of server_url>/ca.crt``. Commands run in ``workdir/keys``
    (where ``trust key generate`` writes ``NAME.pub``), with stdin closed unless ``input`` is given.
    A second DockerCLI on the same ``workdir`` and another ``server_url`` shares the keys and the
    trust cache (``$DOCKER_CONFIG/trust``, keyed by GUN, not by server).
    """

    def __init__(
        self,
        server_url: str,
        ca: Path | None,
        workdir: Path,
        *,
        timeout: float = 120.0,
        root_passphrase: str = ROOT_PASSPHRASE,
        repository_passphrase: str = REPOSITORY_PASSPHRASE,
    ) -> None:
        self.server_url = require_loopback(server_url)
        self.workdir = workdir
        self.config = workdir / "docker-config"
        self.home = workdir / "home"
        self.cwd = workdir / "keys"
        self.timeout = timeout
        self.root_passphrase = root_passphrase
        self.repository_passphrase = repository_passphrase
        for d in (self.config, self.home, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        if ca is not None:
            self.install_ca(ca)

    @property
    def tls_dir(self) -> Path:
        hostport = urllib.parse.urlsplit(self.server_url).netloc
        return self.config / "tls" / hostport

    @property
    def trust_dir(self) -> Path:
        return self.config / "trust"

    def install_ca(self, ca: Path) -> None:
        shutil.copyfile(ca, self.tls_dir / "ca.crt")

    def env(self) -> dict[str, str]:
        # child_env builds the environment from scratch: no DOCKER_HOST / DOCKER_CONTEXT / proxies leak in
        return child_env(
            home=self.home,
            DOCKER_CONFIG=str(self.config),
            DOCKER_CONTENT_TRUST_SERVER=self.server_url,
            DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=self.root_passphrase,
            DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=self.repository_passphrase,
        )

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker args...``; with ``check`` a non-zero exit raises an AssertionError with the output."""
        return run_peer(
            "docker",
            [DOCKER, *args],
            env=self.env(),
            cwd=self.cwd,
            timeout=self.timeout,
            input=input,
            check=check,
        )

    def inspect(self, ref: str) -> list[dict[str, Any]]:
        """``docker trust inspect ref`` (must succeed) as parsed JSON."""
        out = self.run("trust", "inspect", ref).stdout
        doc = json.loads(out)
        assert isinstance(doc, list), out
        return doc

    def pretty(self, ref: str) -> str:
        """``docker trust inspect --pretty ref`` (must succeed): stdout, stderr warnings dropped."""
        return self.run("trust", "inspect", "--pretty", ref).stdout

    def private_keys(self) -> dict[str, dict[str, str]]:
        """Key ID -> PEM headers (role, gun) of every private key in the docker trust dir."""
        keys = {}
        for path in sorted((self.trust_dir / "private").glob("*.key")):
            headers = {}
            for line in path.read_text().splitlines()[1:]:
                if ": " not in line:
                    break
                name, value = line.split(": ", 1)
                headers[name] = value
            keys[path.stem] = headers
        return keys

    def key_of(self, role: str, gun: str | None = None) -> str:
        """The ID of the one private key with ``role`` (and ``gun``) in the docker trust dir."""
        found = [
            kid for kid, h in self.private_keys().items() if h.get("role") == role and h.get("gun") == gun
        ]
        assert len(found) == 1, (role, gun, self.private_keys())
        return found[0]

    def notary(self) -> NotaryCLI:
        """The Go notary CLI on docker's trust dir, with docker's passphrases (as the lab script does)."""
        return NotaryCLI(
            self.server_url,
            self.tls_dir / "ca.crt",
            self.trust_dir,
            passphrases={
                "root": self.root_passphrase,
                "targets": self.repository_passphrase,
                "snapshot": self.repository_passphrase,
                "delegation": self.repository_passphrase,
            },
            home=self.workdir / "notary-home",
        )

    def publish_tag(
        self, gun: str, tag: str = "1.0", *, digest: str = DIGEST, size: str | int = SIZE
    ) -> None:
        """Publish ``tag`` into base ``targets`` with the notary CLI (lab script's notary_publish_tag)."""
        out = self.notary().run("addhash", gun, tag, str(size), "--sha256", digest, "-p")
        assert f"Successfully published changes for repository {gun}" in out.stdout, out.stdout


def write_plain_key(path: Path) -> Path:
    """A fresh P-256 key as unencrypted PKCS#8 PEM (mode 0600: docker refuses readable key files), for
    ``docker trust key load``; its public key goes next to it as ``.pub`` (returned)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = path.with_suffix(".pub")
    pub_path.write_bytes(pub)
    return pub_path
