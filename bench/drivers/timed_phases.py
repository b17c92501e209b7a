"""`notar` with timers around the client's I/O and crypto: where one command spends its time.

Run as ``python bench/drivers/timed_phases.py ARGS...``, like ``notar ARGS...``, with ``BENCH_PHASES_OUT``
naming a file; it gets ``{"import": s, "main": s, "acc": {phase: s}, "counts": {phase: calls}}``, where
``import`` is ``import notar.cli`` and ``main`` everything after it (the imports below, ``main(argv)``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

T0 = time.perf_counter()
import notar.cli  # noqa: E402 - timed

T1 = time.perf_counter()

from notar.client.cache import TrustCache  # noqa: E402
from notar.client.remote import TrustServer  # noqa: E402
from notar.crypto import PrivateKey, PublicKey  # noqa: E402
from notar.keystore import FileKeyStore  # noqa: E402
from notar.registry import RegistryClient  # noqa: E402
from notar.tuf import Envelope  # noqa: E402

seconds: dict[str, float] = {}
calls: dict[str, int] = {}


def wrap(cls: type, name: str, label: str) -> None:
    """Replace ``cls.name`` by a wrapper that adds its wall time and one call to *label*."""
    original = getattr(cls, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
            calls[label] = calls.get(label, 0) + 1

    setattr(cls, name, timed)


def main() -> int:
    wrap(RegistryClient, "__init__", "registry client setup (httpx.Client)")
    wrap(RegistryClient, "head_manifest", "registry HEAD manifest")
    wrap(TrustServer, "__init__", "trust server client setup (httpx.Client)")
    for method in ("get", "get_key", "publish"):
        wrap(TrustServer, method, "trust server HTTP")
    wrap(FileKeyStore, "get", "private key load + decrypt")
    wrap(PrivateKey, "sign", "ECDSA sign")
    wrap(PublicKey, "verify", "signature verify")
    wrap(Envelope, "from_bytes", "TUF parse (Envelope.from_bytes)")
    wrap(TrustCache, "store", "trust cache store (write + fsync every role)")
    wrap(TrustCache, "load", "trust cache load")
    rc = notar.cli.main(sys.argv[1:])
    t2 = time.perf_counter()
    with open(os.environ["BENCH_PHASES_OUT"], "w") as f:
        json.dump({"import": T1 - T0, "main": t2 - T1, "acc": seconds, "counts": calls}, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
