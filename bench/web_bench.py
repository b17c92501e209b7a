"""Trust UI benchmark: time to render a repository page with 1,000 signed tags.

Builds one repository in process with notar's own client library (``Repository`` over a Starlette
TestClient of the full server app, real SQLite via Alembic in a temporary directory): a signer ``alice``,
1,000 tags signed into ``targets/alice`` and ``targets/releases``, then ``--updates`` (3) more publishes so
that the revoked-tag history has older versions to read. Then it times N GETs of each page through the
TestClient (the whole stack: routing, verification with the client's Updater from an empty cache,
inspect, history, Jinja rendering) and prints a Markdown table of median / p95 / min in milliseconds.
No registry is configured (registry round trips are not the UI's cost).

Run: `.venv/bin/python bench/web_bench.py [--tags 1000] [--requests 30] [--updates 3]`. Target: median of
the repository page < 200 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from common import markdown_table, percentile, repeat_ms

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")

from starlette.testclient import TestClient  # noqa: E402

from notar.client import Repository, TrustCache, TrustServer  # noqa: E402
from notar.crypto import PrivateKey  # noqa: E402
from notar.keystore import CallbackPassphrases, FileKeyStore  # noqa: E402
from notar.server.app import ServerSettings, create_app  # noqa: E402
from notar.server.keys import DatabaseKeyService, Secret  # noqa: E402
from notar.server.service import TrustService  # noqa: E402
from notar.server.storage import migrate, open_store  # noqa: E402
from notar.tuf import FileMeta  # noqa: E402
from notar.web import create_web_app  # noqa: E402
from notar.web.trust import TrustReader  # noqa: E402

GUN = "registry.example.com/bench/app"
TARGET_MS = 200.0


def meta(i: int) -> FileMeta:
    return FileMeta(1000 + i, {"sha256": hashlib.sha256(f"manifest {i}".encode()).digest()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--updates", type=int, default=3)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="notar-web-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'notar.db'}"
        migrate(url)
        store = open_store(url)
        service = TrustService(store, DatabaseKeyService(store, Secret("bench")))
        app = create_app(ServerSettings(), service=service, web=create_web_app(service))
        with TestClient(app) as client:
            keys = FileKeyStore(Path(tmp) / "trust", CallbackPassphrases(lambda _k, _a: "bench-passphrase"))
            repo = Repository(
                GUN,
                server=TrustServer("http://testserver", http=client),
                cache=TrustCache(Path(tmp) / "trust"),
                keys=keys,
            )
            alice = PrivateKey.generate()
            keys.add(alice, role="alice")
            started = time.perf_counter()
            repo.add_signer("alice", [alice.public_key])
            repo.sign({f"v{i}": meta(i) for i in range(args.tags)})
            for u in range(args.updates):
                repo.sign({f"extra-{u}": meta(args.tags + u)})
            build_s = time.perf_counter() - started
            total_tags = args.tags + args.updates

            page = client.get(f"/repositories/{GUN}")
            assert page.status_code == 200 and page.text.count('<tr class="row-signed"') == total_tags, (
                "bad page"
            )
            reader = TrustReader(service)
            cases: list[tuple[str, Callable[[], object]]] = [
                ("GET /repositories/<gun> (HTML page)", lambda: client.get(f"/repositories/{GUN}")),
                ("GET /api/repositories/<gun> (JSON)", lambda: client.get(f"/api/repositories/{GUN}")),
                ("  of which: verify (Updater.refresh, empty cache)", lambda: reader.verify(GUN)),
                ("  of which: whole view (verify + statuses + history)", lambda: reader.view(GUN)),
                ("GET / (listing, 1 repository)", lambda: client.get("/")),
            ]
            results = [(name, repeat_ms(fn, args.requests)) for name, fn in cases]  # after a warm-up call
            reader.close()
        store.close()

    print(
        f"\nnotar web UI: repository with {total_tags} signed tags (targets/alice + targets/releases), "
        f"{args.updates + 1} versions of each; built in {build_s:.1f} s; N = {args.requests} requests "
        f"per row; Python {sys.version.split()[0]}\n"
    )
    rows = [
        (name, f"{statistics.median(ms):.1f}", f"{percentile(ms, 95):.1f}", f"{min(ms):.1f}")
        for name, ms in results
    ]
    print(markdown_table(["request", "median ms", "p95 ms", "min ms"], rows, right={1, 2, 3}))
    page_median = statistics.median(results[0][1])
    verdict = "meets" if page_median < TARGET_MS else "MISSES"
    print(f"\nrepository page median {page_median:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return 0 if page_median < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
