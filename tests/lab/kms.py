"""AWS KMS for the tests: moto in server mode with an AWS-faithful ``Sign`` (``tests/lab/kms_server.py``).

moto 5.2.5's own ``Sign`` hashes a ``MessageType=DIGEST`` message again, so a test that only checks against
it can pass with wrong code; this lab's KMS signs the digest as AWS does (and answers disabled, pending
deletion and wrong-usage keys as AWS does), logs every ``Sign``/``GetPublicKey`` call, can inject faults
(throttling, KMS errors), and writes each created key's private key to ``keys/`` so that tests can scan
the host for it. ``stock=True`` starts plain moto instead (to show what notar does with its double hash).

    with run_kms(tmp_path / "kms") as kms:
        key = kms.create_key("ECC_NIST_P256", alias="alias/release")
        env = kms.env()                     # AWS_ENDPOINT_URL_KMS, credentials, region for child processes
        ...
        assert kms.calls("Sign") == 2       # Sign calls made by anybody since the last kms.reset()
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives import serialization

from tests.lab.process import LOOPBACK, Process, child_env, free_port, loopback_get

__all__ = ["KMS_REGION", "KmsKey", "KmsLab", "run_kms"]

KMS_REGION = "us-east-1"
_REPO = Path(__file__).resolve().parents[2]  # tests.lab.kms_server is run with the repository on PYTHONPATH


@dataclass(frozen=True)
class KmsKey:
    key_id: str
    arn: str
    spec: str
    alias: str | None

    @property
    def uri(self) -> str:
        """``awskms:///alias/NAME`` when the key has an alias, else ``awskms:///<key id>``."""
        return f"awskms:///{self.alias or self.key_id}"


@dataclass(frozen=True)
class KmsLab:
    url: str
    process: Process
    workdir: Path
    stock: bool = False

    @property
    def log(self) -> Path:
        return self.workdir / "calls.jsonl"

    @property
    def faults(self) -> Path:
        return self.workdir / "faults.json"

    @property
    def keys_dir(self) -> Path:
        return self.workdir / "keys"

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, for ``awskms://127.0.0.1:PORT/...`` references."""
        return self.url.split("://", 1)[1]

    def env(self, *, key_id: str = "testing", secret: str = "testing") -> dict[str, str]:
        """The standard AWS variables for a child process (boto3 reads the KMS endpoint override itself)."""
        return {
            "AWS_ENDPOINT_URL_KMS": self.url,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": KMS_REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, key_id: str = "testing", secret: str = "testing", service: str = "kms") -> Any:
        return boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=KMS_REGION
        ).client(service, endpoint_url=self.url)

    def create_key(
        self,
        spec: str = "ECC_NIST_P256",
        *,
        usage: str = "SIGN_VERIFY",
        alias: str | None = None,
        **creds: str,
    ) -> KmsKey:
        """A new key (and alias, ``alias/<name>``; unique names are the caller's business)."""
        kms = self.client(**creds)
        meta = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        if alias is not None:
            kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        return KmsKey(meta["KeyId"], meta["Arn"], spec, alias)

    def unique_alias(self, prefix: str = "signer") -> str:
        return f"alias/{prefix}-{uuid.uuid4().hex[:8]}"

    def calls(self, action: str | None = None, key: str | None = None) -> int:
        """How many calls (of *action*, for key reference *key* as sent) were logged since :meth:`reset`."""
        return len(self.call_log(action, key))

    def call_log(self, action: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [
            e
            for e in entries
            if (action is None or e["action"] == action) and (key is None or e.get("key") == key)
        ]

    def reset(self) -> None:
        """Forget the logged calls and any fault not yet consumed."""
        self.log.write_text("")
        self.faults.write_text("{}")

    def inject(self, action: str, *errors: str) -> None:
        """The next calls of *action* answer these error codes, one each (e.g. ``ThrottlingException``)."""
        plan = json.loads(self.faults.read_text() or "{}") if self.faults.exists() else {}
        plan.setdefault(action, []).extend(errors)
        self.faults.write_text(json.dumps(plan))

    def private_key(self, key: KmsKey) -> Any:
        """The key's private key as KMS holds it (only the lab knows it), for key-material scans."""
        return serialization.load_der_private_key((self.keys_dir / f"{key.key_id}.der").read_bytes(), None)


@contextlib.contextmanager
def run_kms(workdir: Path, *, stock: bool = False, **env: str) -> Iterator[KmsLab]:
    """Start the lab KMS (moto server + AWS-faithful Sign; *stock*: plain moto) on a free loopback port.

    *env*: extra variables for the server, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT`` to enforce IAM.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "keys").mkdir(exist_ok=True)
    port = free_port()
    program = ["-m", "moto.server"] if stock else ["-m", "tests.lab.kms_server"]
    argv = [sys.executable, *program, "-H", LOOPBACK, "-p", str(port)]
    knobs = {
        "NOTAR_LAB_KMS_LOG": str(workdir / "calls.jsonl"),
        "NOTAR_LAB_KMS_FAULTS": str(workdir / "faults.json"),
        "NOTAR_LAB_KMS_KEYS": str(workdir / "keys"),
    }
    proc = Process(
        "moto-kms" if not stock else "moto-stock",
        argv,
        log=workdir / "moto.log",
        port=port,
        env=child_env(home=workdir, PYTHONPATH=str(_REPO), **knobs, **env),
        cwd=workdir,
    )
    with proc:
        url = f"http://{LOOPBACK}:{port}"
        status, _ = loopback_get(f"{url}/moto-api/")
        if status != 200:
            raise proc.failure(f"moto answered {status}")
        lab = KmsLab(url, proc, workdir, stock)
        lab.reset()
        yield lab
