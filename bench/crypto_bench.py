"""Foundation benchmark: ECDSA P-256 through notar's API beside `openssl speed`, and a 10,000-target file.

Run: `make bench` (or `.venv/bin/python bench/crypto_bench.py [--seconds N]`). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable

from common import best_ms, markdown_table
from notar.crypto import PrivateKey
from notar.encoding import GoTime
from notar.tuf import Envelope, FileMeta, RoleKeys, Targets, new_targets, verify_signatures


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of *fn* over about *seconds*."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def openssl_speed(seconds: int) -> tuple[float, float] | None:
    """(sign/s, verify/s) for ecdsap256 from `openssl speed` on this machine, single process."""
    if not shutil.which("openssl"):
        return None
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "ecdsap256"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60 + 4 * seconds,
    ).stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    return (float(m.group(1)), float(m.group(2))) if m else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per rate measurement")
    parser.add_argument("--targets", type=int, default=10_000, help="targets in the large file")
    args = parser.parse_args()

    key = PrivateKey.generate("ecdsa")
    message = os.urandom(1024)
    method, sig = key.sign(message)
    pub = key.public_key
    notar_sign = rate(lambda: key.sign(message), args.seconds)
    notar_verify = rate(lambda: pub.verify(message, sig, method), args.seconds)
    ossl = openssl_speed(max(1, int(args.seconds)))

    now = GoTime.now()
    body = new_targets(now=now)
    for i in range(args.targets):
        body.targets[f"v{i}.{i % 97}.{i % 13}"] = FileMeta(400 + i, {"sha256": os.urandom(32)})
    signed = Envelope.sign(body, [key])
    keys = RoleKeys("targets", {key.key_id: pub}, 1)

    encode_ms = best_ms(lambda: Envelope.sign(body, [key]), 5)
    parse_ms = best_ms(lambda: Envelope.from_bytes(signed.data, expect=Targets), 5)
    verify_ms = best_ms(lambda: verify_signatures(Envelope.from_bytes(signed.data, expect=Targets), keys), 5)

    rows: list[tuple[str, str]] = [
        ("ECDSA P-256 sign/s, notar `PrivateKey.sign` (1 KiB message)", f"{notar_sign:,.0f}"),
        ("ECDSA P-256 verify/s, notar `PublicKey.verify`", f"{notar_verify:,.0f}"),
    ]
    if ossl:
        rows += [
            ("ECDSA P-256 sign/s, `openssl speed ecdsap256`", f"{ossl[0]:,.0f}"),
            ("ECDSA P-256 verify/s, `openssl speed ecdsap256`", f"{ossl[1]:,.0f}"),
            ("notar / openssl, sign", f"{notar_sign / ossl[0]:.2f}"),
            ("notar / openssl, verify", f"{notar_verify / ossl[1]:.2f}"),
        ]
    else:
        rows.append(("openssl speed", "not available"))
    rows += [
        (f"targets file with {args.targets:,} targets: size", f"{len(signed.data):,} B"),
        ("encode + sign (to_dict, canonical JSON, sign, file bytes)", f"{encode_ms:.1f} ms"),
        ("parse (JSON, typed model, canonical signed bytes)", f"{parse_ms:.1f} ms"),
        ("parse + verify signature", f"{verify_ms:.1f} ms"),
    ]
    print(markdown_table([f"measurement (this machine, {os.cpu_count()} cores)", "value"], rows))


if __name__ == "__main__":
    main()
