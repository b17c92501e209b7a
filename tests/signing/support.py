"""Helpers for the signing-event tests: the CLI as a process, images in the registry, notation's trust
files, and a loopback proxy in front of the registry that refuses artifact manifests (a registry that
does not take manifests with a ``subject``, as some older ones answer)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notar.registry import RegistryClient
from tests.lab import LOOPBACK, child_env
from tests.registry.artifacts import push_image
from tests.registry.images import Image, Index, make_image, make_index

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "test-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "test-repo-passphrase",
}
SUBJECT_DN = "C=US,ST=WA,O=Acme,CN=release"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error_lines(self) -> list[str]:
        """The ``notar: error:`` lines of stderr (and never a traceback)."""
        assert "Traceback" not in self.stderr, self.stderr
        return [line for line in self.stderr.splitlines() if line.startswith("notar: error: ")]

    def one_line_error(self) -> str:
        """The whole of stderr, which must be exactly one ``notar: error:`` line."""
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("notar: error: "), self.stderr
        return lines[0]


class Notar:
    """``python -m notar`` in its own HOME, DOCKER_CONFIG (trust dir) and XDG_CONFIG_HOME (notation's files)."""

    def __init__(self, home: Path, server: str | None = None, ca: Path | None = None, **extra: str) -> None:
        self.home = home
        self.cwd = home / "work"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.docker_config = home / ".docker"
        self.trust_dir = self.docker_config / "trust"
        self.notation = home / "xdg" / "notation"
        env: dict[str, str] = {
            "DOCKER_CONFIG": str(self.docker_config),
            "XDG_CONFIG_HOME": str(home / "xdg"),
            **PASSPHRASES,
        }
        if server is not None:
            env["DOCKER_CONTENT_TRUST_SERVER"] = server
        if ca is not None:
            env["NOTAR_TLS_CA"] = str(ca)
        self.env = child_env(home=home, **env, **extra)

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "notar", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        run = self(*args, env=env)
        assert run.code == 0, f"notar {' '.join(args)} failed ({run.code}):\n{run.stdout}\n{run.stderr}"
        return run

    def signer(self, name: str, image: str | None = None, *, cert: bool = True) -> str:
        """``key generate NAME`` (+ ``signer add NAME IMAGE``, + ``cert generate NAME``); returns the key ID.

        The public key is ``cwd/NAME.pub``, the certificate ``cwd/NAME.crt``.
        """
        key_id = self.ok("key", "generate", name, "--dir", str(self.cwd)).stdout.strip()
        if image is not None:
            self.ok("signer", "add", name, image, "--key", str(self.cwd / f"{name}.pub"))
        if cert:
            self.ok("cert", "generate", name, "--subject", SUBJECT_DN.replace("release", name))
        return key_id

    def trust_certificate(self, cert: Path, *, store: str = "acme", level: str = "strict") -> None:
        """notation's trust files: *cert* in ``ca:STORE`` and a ``*`` statement trusting it (any identity)."""
        directory = self.notation / "truststore" / "x509" / "ca" / store
        directory.mkdir(parents=True, exist_ok=True)
        (directory / cert.name).write_bytes(cert.read_bytes())
        statement = {
            "name": "all",
            "registryScopes": ["*"],
            "signatureVerification": {"level": level},
            "trustStores": [f"ca:{store}"],
            "trustedIdentities": ["*"],
        }
        policy = {"version": "1.0", "trustPolicies": [statement]}
        (self.notation / "trustpolicy.json").write_text(json.dumps(policy))


def unique_repo(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def push(registry_host: str, repo: str, tag: str, text: str) -> Image:
    """A one-layer image pushed to ``registry_host/repo:tag`` with the library."""
    image = make_image(text)
    with RegistryClient(registry_host) as client:
        push_image(client, repo, image, tag)
    return image


def push_index(registry_host: str, repo: str, tag: str, text: str) -> Index:
    """A two-platform index (amd64, arm64) and its images, pushed to ``registry_host/repo:tag``."""
    index = make_index([make_image(f"{text} amd64"), make_image(f"{text} arm64", arch="arm64")])
    with RegistryClient(registry_host) as client:
        for image in index.images:
            push_image(client, repo, image)
        client.put_manifest(repo, index.manifest.digest, index.manifest.data, index.manifest.media_type)
        client.put_manifest(repo, tag, index.manifest.data, index.manifest.media_type)
    return index


# ------------------------------------------------------------------------------- refusing proxy

_MANIFEST_PUT = re.compile(r"/v2/.+/manifests/[^/]+\Z")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if self.command == "PUT" and _MANIFEST_PUT.search(path) and b'"subject"' in body:
            self.server.refused.append(self.path)
            error = {
                "errors": [
                    {
                        "code": "MANIFEST_INVALID",
                        "message": "manifest invalid",
                        "detail": "subject not accepted",
                    }
                ]
            }
            data = json.dumps(error).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=body if body or length else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status, resp.reason)
            for name, value in resp.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.upstream = upstream
        self.refused: list[str] = []


@contextlib.contextmanager
def refusing_proxy(upstream_host: str) -> Iterator[_ProxyServer]:
    """A registry on ``127.0.0.1:<port>`` (``server.server_address``) that forwards to *upstream_host*
    (``127.0.0.1:PORT``) but answers ``400 MANIFEST_INVALID`` to every manifest PUT with a ``subject``.

    The Host header is passed on, so the registry's upload ``Location`` URLs point at the proxy."""
    host, _, port = upstream_host.partition(":")
    assert host == LOOPBACK
    server = _ProxyServer((host, int(port)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
