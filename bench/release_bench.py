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
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab import (  # noqa: E402
    LOOPBACK,
    Process,
    child_env,
    free_port,
    make_lab_pki,
    run_notar_server,
    run_registry,
)
from tests.registry.images import make_image, write_oci_layout  # noqa: E402
from tests.release.support import ADMIN_PASSPHRASES, REGION, Notar, aws_env, write_tasks  # noqa: E402

from notar.release import PHASES, ReleaseOptions, make_task, release  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="notar-release-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pki = make_lab_pki(tmp / "pki")
        port = free_port()
        moto = Process(
            "moto-server",
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            log=tmp / "moto.log",
            port=port,
            env=child_env(home=tmp),
        )
        with (
            moto,
            run_registry(tmp / "registry") as registry,
            run_notar_server(pki, tmp / "server") as server,
        ):
            env = aws_env(f"http://{LOOPBACK}:{port}")
            admin = Notar(tmp / "admin", server.url, server.ca, **ADMIN_PASSPHRASES, **env)
            repo = f"{registry.host}/bench/app"
            key_id = admin.run("key", "generate", "ci", "--dir", str(tmp)).stdout.strip()
            admin.run("signer", "add", "ci", repo, "--key", str(tmp / "ci.pub"))
            admin.run(
                "secrets", "put-signer", "ci", "--key", str(admin.trust_dir / "private" / f"{key_id}.key"),
                "--passphrase-env", "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "--region", REGION,
            )  # fmt: skip
            import os

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
                task = make_task(
                    {
                        "image": f"{repo}:{tag}",
                        "src": str(src),
                        "signer_name": "ci",
                        "key_secret_name": "notar/signers/ci/key",
                        "passphrase_secret_name": "notar/signers/ci/passphrase",
                        "region": REGION,
                    }
                )
                start = time.perf_counter()
                result = release(task, options)
                total = time.perf_counter() - start
                if not result.ok:
                    raise SystemExit(f"release failed: {result.error}")
                for phase in PHASES:
                    samples[phase].append(result.phases.get(phase, 0.0))
                samples["total"].append(total)
            # the whole command once, as a process (interpreter start and imports included)
            ci = Notar(tmp / "ci", server.url, server.ca, **env)
            src = write_oci_layout(tmp / "oci-cli", "cli", make_image("bench cli"))
            task_file = write_tasks(
                ci.cwd / "task.yaml",
                [
                    {
                        "image": f"{repo}:cli",
                        "src": str(src),
                        "signer_name": "ci",
                        "key_secret_name": "notar/signers/ci/key",
                        "passphrase_secret_name": "notar/signers/ci/passphrase",
                        "region": REGION,
                    }
                ],
            )
            start = time.perf_counter()
            ci.run("release", str(task_file))
            process_wall = time.perf_counter() - start

    print(
        f"`notar release` of one tag (push from an OCI layout, sign, publish, verify); {args.runs} runs, in-process\n"
    )
    print("| phase | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for phase, values in samples.items():
        ms = [v * 1000 for v in values]
        name = f"**{phase}**" if phase == "total" else phase
        print(f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f} | {max(ms):.1f} |")
    print(
        f"\nWhole `notar release task.yaml` as a process (cold trust dir, imports included): {process_wall * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
