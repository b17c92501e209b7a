"""Registry auth through the gateway, against the real `docker-registry`: htpasswd Basic auth behind TLS, and
bearer tokens from a token server. The gateway passes credentials and challenges through unchanged, and the
trust rules still apply to authenticated clients."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import pytest

from notar.registry import Credentials, RegistryClient
from tests.gateway.conftest import Signer
from tests.lab import LabPKI, NotarServer, run_gateway
from tests.registry.images import Skopeo, make_image
from tests.registry.test_real_registry import (  # noqa: F401 - the registries are module fixtures there
    HTPASSWD_PASSWORD,
    HTPASSWD_USER,
    TokenServer,
    push_with_client,
    tls_registry,
    token_registry,
)

pytestmark = pytest.mark.peers


def _skopeo_copy(skopeo: Skopeo, ref: str, out: Path, creds: str | None) -> None:
    args = ["copy", "--src-tls-verify=false"]
    if creds is not None:
        args.append(f"--src-creds={creds}")
    skopeo.run(*args, f"docker://{ref}", f"dir:{out}")


def test_basic_auth_and_tls_upstream(
    tls_registry: str,  # noqa: F811
    lab_pki: LabPKI,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    repo = f"auth/app-{uuid.uuid4().hex[:8]}"
    signed, unsigned = make_image("basic auth, signed\n"), make_image("basic auth, unsigned\n")
    creds = Credentials(HTPASSWD_USER, HTPASSWD_PASSWORD)
    with RegistryClient(tls_registry, verify=lab_pki.ca, credentials=creds) as client:
        push_with_client(client, repo, "1.0", signed)
        push_with_client(client, repo, "unsigned", unsigned)
    with run_gateway(
        tmp_path / "gw", upstream=tls_registry, trust_server=notar_server.url, ca=lab_pki.ca
    ) as gw:
        Signer(notar_server, tmp_path / "signer").sign(gw.gun(repo), {"1.0": signed.manifest.data})
        basic = "Basic " + base64.b64encode(f"{HTPASSWD_USER}:{HTPASSWD_PASSWORD}".encode()).decode()
        with httpx.Client(trust_env=False, timeout=30) as c:
            ping = c.get(f"{gw.url}/v2/")
            assert ping.status_code == 401 and ping.headers["www-authenticate"].startswith("Basic ")
            anonymous = c.get(f"{gw.url}/v2/{repo}/manifests/1.0")
            assert anonymous.status_code == 401  # the registry's challenge, relayed
            r = c.get(f"{gw.url}/v2/{repo}/manifests/1.0", headers={"Authorization": basic})
            assert r.status_code == 200 and r.content == signed.manifest.data
            layer = signed.layers[0]
            blob = c.get(f"{gw.url}/v2/{repo}/blobs/{layer.digest}", headers={"Authorization": basic})
            assert blob.status_code == 200 and blob.content == layer.data
        skopeo = Skopeo(tmp_path)
        _skopeo_copy(
            skopeo, f"{gw.host}/{repo}:1.0", tmp_path / "pulled", f"{HTPASSWD_USER}:{HTPASSWD_PASSWORD}"
        )
        assert (tmp_path / "pulled" / "manifest.json").read_bytes() == signed.manifest.data
        with pytest.raises(AssertionError):
            _skopeo_copy(skopeo, f"{gw.host}/{repo}:1.0", tmp_path / "nocreds", None)
        with pytest.raises(AssertionError, match="(?i)no valid trust data"):
            _skopeo_copy(
                skopeo,
                f"{gw.host}/{repo}:unsigned",
                tmp_path / "unsigned",
                f"{HTPASSWD_USER}:{HTPASSWD_PASSWORD}",
            )


def test_bearer_tokens_pass_through(
    token_registry: tuple[str, TokenServer],  # noqa: F811
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    host, server = token_registry
    repo = f"tok/gw-{uuid.uuid4().hex[:8]}"
    image = make_image("token auth through the gateway\n")
    with RegistryClient(host, credentials=Credentials("alice", "token-flow-secret")) as client:
        push_with_client(client, repo, "1.0", image)
    with run_gateway(
        tmp_path / "gw", upstream=f"http://{host}", trust_server=notar_server.url, ca=notar_server.ca
    ) as gw:
        Signer(notar_server, tmp_path / "signer").sign(gw.gun(repo), {"1.0": image.manifest.data})
        with httpx.Client(trust_env=False, timeout=30) as c:
            challenge = c.get(f"{gw.url}/v2/{repo}/manifests/1.0")
            assert challenge.status_code == 401
            assert challenge.headers["www-authenticate"].startswith(f'Bearer realm="{server.url}"')
        before = len(server.requests)
        _skopeo_copy(
            Skopeo(tmp_path), f"{gw.host}/{repo}:1.0", tmp_path / "pulled", "alice:token-flow-secret"
        )
        assert (tmp_path / "pulled" / "manifest.json").read_bytes() == image.manifest.data
        assert len(server.requests) > before  # skopeo asked the token server, the gateway passed the token on
