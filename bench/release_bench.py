"""Where one `notar release` of one tag spends its time, phase by phase.

Starts everything on 127.0.0.1 from one temporary directory (stopped before exit): moto in server mode
(Secrets Manager), the Debian ``docker-registry``, ``notar server`` (TLS, SQLite). An administrator
machine generates a signer key, adds it to a repository and uploads key + passphrase with
``notar secrets put-signer`` (CLI processes). Then ``--runs`` releases run in this process
(:func:`notar.release.release`, one new tag each, pushed from an OCI layout) on an empty "CI" trust
directory, and the phase timings they report (``ReleaseResult.phases``) are printed as a Markdown table
(median, min, max in milliseconds), plus the whole ``notar release`` command as a process once.

Run: ``.venv/bin/python bench/release_bench.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import time
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import markdown_table, scratch_dir, start_peers

# isort: split
from tests.registry.images import make_image, write_oci_layout
from tests.release.support import ADMIN_PASSPHRASES, REGION, Notar, aws_env, write_tasks

from notar.release import PHASES, ReleaseOptions, make_task, release


def task(image: str, src: Path) -> dict[str, str]:
    """A release task for *image* from the layout *src*, signed by signer ``ci`` (its secrets in moto)."""
    return {
        "image": image,
        "src": str(src),
        "signer_name": "ci",
        "key_secret_name": "notar/signers/ci/key",
        "passphrase_secret_name": "notar/signers/ci/passphrase",
        "region": REGION,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with (
        scratch_dir("notar-release-bench-") as tmp,
        start_peers(tmp, moto=True, registry=True, notar=True) as peers,
    ):
        server = peers.notar
        env = aws_env(peers.moto.url)
        admin = Notar(tmp / "admin", server.url, server.ca, **ADMIN_PASSPHRASES, **env)
        repo = f"{peers.registry.host}/bench/app"
        key_id = admin.run("key", "generate", "ci", "--dir", str(tmp)).stdout.strip()
        admin.run("signer", "add", "ci", repo, "--key", str(tmp / "ci.pub"))
        admin.run(
            "secrets", "put-signer", "ci", "--key", str(admin.trust_dir / "private" / f"{key_id}.key"),
            "--passphrase-env", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "--region", REGION,
        )  # fmt: skip
        os.environ.update(env)
        options = ReleaseOptions(
            trust_dir=tmp / "ci-trust",
            server_url=lambda _ref: server.url,
            tls_verify=lambda _url: ssl.create_default_context(cafile=str(server.ca)),
        )
        samples: dict[str, list[float]] = {p: [] for p in (*PHASES, "total")}
        for i in range(args.runs):
            tag = f"r{i}"
            src = write_oci_layout(tmp / f"oci-{i}", tag, make_image(f"bench {i}"))
            start = time.perf_counter()
            result = release(make_task(task(f"{repo}:{tag}", src)), options)
            total = time.perf_counter() - start
            if not result.ok:
                raise SystemExit(f"release failed: {result.error}")
            for phase in PHASES:
                samples[phase].append(result.phases.get(phase, 0.0))
            samples["total"].append(total)
        # the whole command once, as a process (interpreter start and imports included)
        ci = Notar(tmp / "ci", server.url, server.ca, **env)
        src = write_oci_layout(tmp / "oci-cli", "cli", make_image("bench cli"))
        task_file = write_tasks(ci.cwd / "task.yaml", [task(f"{repo}:cli", src)])
        start = time.perf_counter()
        ci.run("release", str(task_file))
        process_wall = time.perf_counter() - start

    print(
        f"`notar release` of one tag (push from an OCI layout, sign, publish, verify); {args.runs} runs, in-process\n"
    )
    rows = []
    for phase, values in samples.items():
        ms = [v * 1000 for v in values]
        name = f"**{phase}**" if phase == "total" else phase
        rows.append((name, f"{statistics.median(ms):.1f}", f"{min(ms):.1f}", f"{max(ms):.1f}"))
    print(markdown_table(["phase", "median ms", "min ms", "max ms"], rows, right={1, 2, 3}))
    print(
        f"\nWhole `notar release task.yaml` as a process (cold trust dir, imports included): {process_wall * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
