"""Signing with a key that stays in AWS KMS against a local key: latency, and KMS calls per command.

Starts on 127.0.0.1 from one temporary directory (stopped before exit): the lab KMS (moto in server mode
with an AWS-faithful ``Sign``, ``tests/lab/kms.py``), the Debian ``docker-registry`` and ``notar server``
(TLS, SQLite). Two repositories: one whose signer holds a local key (``notar key generate``), one whose
signer is a KMS ``ECC_NIST_P256`` key (``notar signer add ci IMAGE --key awskms:///alias/...``).

1. One signature, in this process: a Notary v1 signature over a 15 kB targets body (``Signer.sign``) and a
   Notation ES256 digest signature (``sign_digest``), local key vs ``KmsSigner`` (one ``Sign`` with
   ``MessageType=DIGEST`` over HTTP on loopback, plus the local check of the signature); median and p90.
2. ``notar sign`` as a process (interpreter start and imports included) of 1 and of ``--tags`` tags, local
   key vs KMS key; median wall time, and the KMS calls each command made (from the lab KMS's call log):
   one ``Sign`` per signed role (targets/<signer> and targets/releases), however many tags, and no
   ``GetPublicKey`` (the public key is in the stored reference).

moto on loopback answers in a few milliseconds; the real service adds a network round trip per ``Sign``
(typically 10-30 ms inside the region), which is what the call count multiplies. A ``notar sign`` process
with a KMS signer also imports boto3 and builds a KMS client once (measured and printed under the table).

Run: ``.venv/bin/python bench/kms_bench.py [--runs N] [--tags N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import uuid

# common first: it puts the repository root on sys.path for the imports from tests below
from common import markdown_table, percentile, repeat_ms, run_timed, say, scratch_dir, start_peers

# isort: split
from cryptography.hazmat.primitives import hashes
from tests.kms.support import Notar
from tests.lab.kms import run_kms
from tests.registry.artifacts import push_image
from tests.registry.images import make_image

from notar.crypto import PrivateKey
from notar.kms import KmsSigner
from notar.registry import RegistryClient

_BOTO = "import boto3; boto3.session.Session().client('kms', region_name='us-east-1')"
BODY = b'{"signed":{"_type":"Targets","targets":{}}}' * 350  # ~15 kB, a targets file with ~100 tags


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 90):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="notar sign processes per cell (default 5)")
    parser.add_argument("--calls", type=int, default=200, help="signatures per in-process cell (default 200)")
    parser.add_argument("--tags", type=int, default=10, help="tags of the many-tags notar sign (default 10)")
    args = parser.parse_args()
    with (
        scratch_dir("notar-kms-bench-") as tmp,
        start_peers(tmp, registry=True, notar=True) as peers,
        run_kms(tmp / "kms") as kms,
    ):
        server, registry = peers.notar, peers.registry
        key = kms.create_key("ECC_NIST_P256", alias="alias/bench-signer")
        os.environ.update(kms.env())

        # 1. one signature, in-process
        say(f"{args.calls} signatures per cell, in-process")
        local = PrivateKey.generate()
        remote = KmsSigner.open(key.uri)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(BODY)
        hashed = digest.finalize()
        signature_rows = [
            (
                "Notary v1 signature of a 15 kB targets body",
                _ms(repeat_ms(lambda: local.sign(BODY), args.calls)),
                _ms(repeat_ms(lambda: remote.sign(BODY), args.calls)),
            ),
            (
                "Notation ES256 signature of a digest",
                _ms(repeat_ms(lambda: local.sign_digest(hashed, hashes.SHA256()), args.calls)),
                _ms(repeat_ms(lambda: remote.sign_digest(hashed, hashes.SHA256()), args.calls)),
            ),
        ]

        # 2. notar sign as a process
        admin = Notar(tmp / "admin", server.url, server.ca, kms)
        suffix = uuid.uuid4().hex[:6]
        repos = {
            "local key": f"{registry.host}/bench/local-{suffix}",
            "KMS key": f"{registry.host}/bench/kms-{suffix}",
        }
        tags = [f"t{i}" for i in range(args.tags)]
        with RegistryClient(registry.host) as client:
            for repo in repos.values():
                for tag in tags:
                    push_image(client, repo.split("/", 1)[1], make_image(f"{repo} {tag}"), tag)
        admin.run("key", "generate", "alice", "--dir", str(tmp))
        admin.run("signer", "add", "alice", repos["local key"], "--key", str(tmp / "alice.pub"))
        admin.run("signer", "add", "ci", repos["KMS key"], "--key", key.uri)
        admin.run("sign", *(f"{repos['KMS key']}:{t}" for t in tags[:1]))  # warm the trust cache
        admin.run("sign", *(f"{repos['local key']}:{t}" for t in tags[:1]))
        sign_rows = []
        call_rows = []
        for count in (1, args.tags):
            cells = []
            for label, repo in repos.items():
                say(f"notar sign of {count} tag(s), {label}: {args.runs} runs")
                walls = []
                sign_calls: set[int] = set()
                lookups: set[int] = set()
                for _ in range(args.runs):
                    kms.reset()
                    argv = [sys.executable, "-m", "notar", "sign", *(f"{repo}:{t}" for t in tags[:count])]
                    sample, _out, _err = run_timed(argv, env=admin.env, cwd=admin.home)
                    walls.append(sample.wall * 1e3)
                    sign_calls.add(kms.calls("Sign"))
                    lookups.add(kms.calls("GetPublicKey"))
                cells.append(f"{statistics.median(walls):.0f}")
                if label == "KMS key":
                    call_rows.append(
                        (
                            f"`notar sign` of {count} tag(s)",
                            "/".join(map(str, sorted(sign_calls))),
                            "/".join(map(str, sorted(lookups))),
                        )
                    )
            sign_rows.append((f"`notar sign` of {count} tag(s), median ms (process)", *cells))
        # what a KMS-backed `notar sign` process pays once: importing boto3 and building the KMS client
        boto_cost = []
        for _ in range(args.runs):
            bare, _o, _e = run_timed([sys.executable, "-c", "pass"], env=admin.env, cwd=admin.home)
            boto, _o, _e = run_timed([sys.executable, "-c", _BOTO], env=admin.env, cwd=admin.home)
            boto_cost.append((boto.wall - bare.wall) * 1e3)
        with contextlib.suppress(KeyError):
            del os.environ["AWS_ENDPOINT_URL_KMS"]

    print("Signing latency, local key vs AWS KMS key (the lab KMS: moto server on loopback)\n")
    rows = [(name, a, b) for name, a, b in signature_rows] + [(name, a, b) for name, a, b in sign_rows]
    print(markdown_table(["", "local key", "KMS key"], rows, right={1, 2}))
    print("\n(in-process rows: median / p90 ms over", args.calls, "signatures)\n")
    print("KMS calls per command (KMS-backed signer; targets/ci and targets/releases are signed)\n")
    print(markdown_table(["command", "kms:Sign", "kms:GetPublicKey"], call_rows, right={1, 2}))
    print(
        f"\nOf the difference between the process rows, importing boto3 and building the KMS client takes "
        f"{statistics.median(boto_cost):.0f} ms (median of {args.runs}, a fresh interpreter); the two Sign "
        "calls take the rest."
    )


if __name__ == "__main__":
    main()
