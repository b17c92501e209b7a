"""Fixtures for the release tests: moto's Secrets Manager as a real server process, signers set up by an
administrator (``notar key generate`` + ``notar signer add`` + ``notar secrets put-signer``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.lab import NotarServer, Process, Registry, run_moto
from tests.release.support import (
    ADMIN_PASSPHRASES,
    REGION,
    REPO_PASSPHRASE,
    Notar,
    Signer,
    aws_env,
    key_needles,
)


@dataclass(frozen=True)
class Moto:
    url: str
    process: Process

    def env(self, **kw: str) -> dict[str, str]:
        return aws_env(self.url, **kw)

    def client(
        self, key_id: str = "testing", secret: str = "testing", service: str = "secretsmanager"
    ) -> object:
        return boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
        ).client(service, endpoint_url=self.url)  # type: ignore[call-overload]


def _start_moto(workdir: Path, **env: str) -> Iterator[Moto]:
    with run_moto(workdir, **env) as server:
        yield Moto(server.url, server.process)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """moto in server mode: a real Secrets Manager endpoint on 127.0.0.1 (no IAM checks)."""
    yield from _start_moto(tmp_path_factory.mktemp("moto"))


@dataclass(frozen=True)
class IamMoto:
    moto: Moto
    admin: tuple[str, str]  # access key id, secret

    def user(self, name: str, policy: dict[str, object]) -> tuple[str, str]:
        iam = self.moto.client(*self.admin, service="iam")
        iam.create_user(UserName=name)  # type: ignore[attr-defined]
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))  # type: ignore[attr-defined]
        key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
        return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamMoto]:
    """A second moto server that ENFORCES IAM (INITIAL_NO_AUTH_ACTION_COUNT=3): the first three calls
    create an all-powerful admin user; every later call is authenticated and checked against the
    caller's IAM policies by moto, so a denied call is a real AccessDenied answer over HTTP."""
    for moto in _start_moto(tmp_path_factory.mktemp("moto-iam"), INITIAL_NO_AUTH_ACTION_COUNT="3"):
        iam = moto.client(service="iam")
        iam.create_user(UserName="admin")  # type: ignore[attr-defined]
        iam.put_user_policy(  # type: ignore[attr-defined]
            UserName="admin",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]  # type: ignore[attr-defined]
        yield IamMoto(moto, (key["AccessKeyId"], key["SecretAccessKey"]))


@pytest.fixture
def admin(notar_server: NotarServer, moto: Moto, tmp_path: Path) -> Notar:
    """The administrator's machine: holds the root and signer keys, uploads signers to Secrets Manager."""
    return Notar(tmp_path / "admin", notar_server.url, notar_server.ca, **ADMIN_PASSPHRASES, **moto.env())


@pytest.fixture
def ci(notar_server: NotarServer, moto: Moto, tmp_path: Path) -> Notar:
    """The release job's machine: an empty HOME, no passphrase in its environment, AWS via moto."""
    return Notar(tmp_path / "ci", notar_server.url, notar_server.ca, **moto.env())


@pytest.fixture
def image_repo(registry: Registry) -> str:
    return f"{registry.host}/release/app-{uuid.uuid4().hex[:8]}"


MakeSigner = Callable[..., Signer]


@pytest.fixture
def make_signer(admin: Notar, tmp_path: Path) -> MakeSigner:
    """``make_signer(name, repo, add=True, upload=True)``: generate a key, add it as a signer of *repo*,
    upload key + passphrase with ``notar secrets put-signer`` (unique secret names per test)."""

    def make(
        name: str, repo: str | None, *, add: bool = True, upload: bool = True, admin: Notar = admin
    ) -> Signer:
        pub_dir = tmp_path / f"pub-{uuid.uuid4().hex[:6]}"
        key_id = admin.run("key", "generate", name, "--dir", str(pub_dir)).stdout.strip()
        if add and repo is not None:
            admin.run("signer", "add", name, repo, "--key", str(pub_dir / f"{name}.pub"))
        key_file = admin.trust_dir / "private" / f"{key_id}.key"
        suffix = uuid.uuid4().hex[:8]
        signer = Signer(
            name,
            key_id,
            key_file,
            key_secret=f"notar/signers/{name}-{suffix}/key",
            passphrase_secret=f"notar/signers/{name}-{suffix}/passphrase",
            needles=key_needles(key_file, REPO_PASSPHRASE),
        )
        if upload:
            admin.run(
                "secrets",
                "put-signer",
                name,
                "--key",
                str(key_file),
                "--passphrase-env",
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
                "--region",
                REGION,
                "--key-secret-name",
                signer.key_secret,
                "--passphrase-secret-name",
                signer.passphrase_secret,
            )
        return signer

    return make
