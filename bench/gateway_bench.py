"""Gateway benchmark: what `notar gateway` costs in front of the Debian `docker-registry`.

Everything runs on 127.0.0.1 from one temporary directory and is stopped before the script exits: a lab CA,
``docker-registry`` (plain HTTP), ``notar server`` (TLS, SQLite) and two ``notar gateway`` processes (the
default 5 s trust cache, and ``--cache-ttl 0`` so that every request re-verifies the trust data).

1. **Blob download throughput**: one random layer (default 200 MB) uploaded once, then downloaded with
   ``curl -o /dev/null`` directly from the registry and through the gateway, alternating; median of
   ``--runs`` after one warm-up download each. The ratio gateway/direct is the figure of merit (goal >= 0.9),
   also shown per back-to-back pair (the machine's speed drifts between runs).
2. **Manifest GET by tag**: latency directly from the registry, through the gateway with a warm trust cache,
   and through the gateway without a cache (a full TUF update against the trust server per request);
   median and p90 of ``--requests`` sequential requests over one keep-alive connection.
3. **Peak RSS of the gateway** (``VmHWM`` in /proc/<pid>/status) after start and after the downloads: the
   layer is streamed, so the peak must not grow with its size.

When ``nginx`` is installed (not a project dependency: ``apt-get install nginx-light``), the same downloads go
through it too, as a reference for what any reverse proxy costs on the machine.

Run: ``.venv/bin/python bench/gateway_bench.py`` (``--size-mb 50 --runs 2`` for a quick run).
Needs docker-registry, skopeo and curl.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import markdown_table, percentile, repeat_ms, say, scratch_dir, start_peers

# isort: split
import httpx
from tests.gateway.conftest import Signer
from tests.lab import LOOPBACK, Process, free_port, run_gateway
from tests.registry.images import Skopeo, make_image, write_oci_layout

REPO = "bench/app"
CHUNK = 1024 * 1024


def vm(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def upload_blob(base: str, size: int) -> str:
    """Stream ``size`` pseudo-random bytes into the registry as one blob; returns its digest."""
    seed = os.urandom(CHUNK)
    hasher = hashlib.sha256()
    for i in range(0, size, CHUNK):
        hasher.update(seed[: min(CHUNK, size - i)])
    digest = "sha256:" + hasher.hexdigest()

    def body() -> Iterator[bytes]:
        for i in range(0, size, CHUNK):
            yield seed[: min(CHUNK, size - i)]

    with httpx.Client(trust_env=False, timeout=600) as c:
        start = c.post(f"{base}/v2/{REPO}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["location"]
        sep = "&" if "?" in location else "?"
        done = c.put(f"{location}{sep}digest={digest}", content=body(), headers={"Content-Length": str(size)})
        done.raise_for_status()
    return digest


def curl_download(url: str) -> tuple[float, int]:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total} %{size_download} %{http_code}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out[2] != "200":
        raise RuntimeError(f"GET {url} answered {out[2]}")
    return float(out[0]), int(out[1])


@contextlib.contextmanager
def run_nginx(workdir: Path, upstream: str) -> Iterator[str | None]:
    """A reference proxy, when ``nginx`` is installed: what a C reverse proxy costs on the same machine.

    Tuned for this: unbuffered relaying with 1 MiB reads, upstream keep-alive, no access log.
    """
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        yield None
        return
    workdir.mkdir(parents=True)
    port = free_port()
    hostport = upstream.split("://", 1)[1].rstrip("/")
    (workdir / "nginx.conf").write_text(
        f"""worker_processes 1; daemon off; pid {workdir}/nginx.pid; error_log {workdir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {workdir}; proxy_temp_path {workdir};
  upstream registry {{ server {hostport}; keepalive 4; }}
  server {{
    listen {LOOPBACK}:{port};
    location / {{
      proxy_pass http://registry; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_buffer_size 1m; proxy_buffers 4 1m;
    }}
  }}
}}
"""
    )
    argv = [nginx, "-c", str(workdir / "nginx.conf"), "-p", str(workdir)]
    with Process("nginx", argv, log=workdir / "nginx.log", port=port):
        yield f"http://{LOOPBACK}:{port}"


def latencies(url: str, n: int, accept: str) -> list[float]:
    """ms of *n* sequential GETs on one keep-alive connection, after one (connection, cache) warm-up."""
    with httpx.Client(trust_env=False, timeout=60) as c:
        return repeat_ms(lambda: c.get(url, headers={"Accept": accept}).raise_for_status(), n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024

    with (
        scratch_dir("notar-gateway-bench-") as work,
        start_peers(work, registry=True, notar=True) as peers,
    ):
        registry, server = peers.registry, peers.notar
        with (
            run_gateway(
                work / "gw", upstream=registry.url, trust_server=server.url, ca=server.ca, config=None
            ) as gw,
            run_gateway(
                work / "gw0",
                upstream=registry.url,
                trust_server=server.url,
                ca=server.ca,
                config=None,
                extra=("--cache-ttl", "0", "--log-level", "warning"),
            ) as gw0,
            run_nginx(work / "nginx", registry.url) as nginx,
        ):
            rss_start = vm(gw.process.pid, "VmRSS")
            # a signed image, for the manifest part (signed for both gateways' GUNs)
            image = make_image("bench")
            layout = write_oci_layout(work / "oci", "1.0", image)
            Skopeo(work).push_layout(layout, "1.0", f"{registry.host}/{REPO}:1.0")
            signer = Signer(server, work / "signer")
            signer.sign(gw.gun(REPO), {"1.0": image.manifest.data})
            signer.sign(gw0.gun(REPO), {"1.0": image.manifest.data})

            say(f"uploading a {args.size_mb} MB layer ...")
            digest = upload_blob(registry.url, size)
            direct: list[float] = []
            through: list[float] = []
            reference: list[float] = []
            targets = [(registry.url, direct), (gw.url, through)]
            if nginx is not None:
                targets.append((nginx, reference))
            for target, _ in targets:  # warm-up: page cache, connection pools, thread pool
                curl_download(f"{target}/v2/{REPO}/blobs/{digest}")
            for _ in range(args.runs):
                for target, results in targets:
                    seconds, got = curl_download(f"{target}/v2/{REPO}/blobs/{digest}")
                    if got != size:
                        raise RuntimeError(f"downloaded {got} bytes, expected {size}")
                    results.append(size / seconds / 1e6)
            rss_hwm = vm(gw.process.pid, "VmHWM")

            accept = image.manifest.media_type
            path = f"/v2/{REPO}/manifests/1.0"
            lat_direct = latencies(registry.url + path, args.requests, accept)
            lat_cached = latencies(gw.url + path, args.requests, accept)
            lat_uncached = latencies(gw0.url + path, max(10, args.requests // 2), accept)

    d, t = statistics.median(direct), statistics.median(through)
    pairs = [t / d for d, t in zip(direct, through, strict=True)]
    md = statistics.median(lat_direct)
    rows = [
        ("blob GET throughput, MB/s (median)", f"{d:.0f}", f"{t:.0f}", f"{t / d:.2f}"),
        (
            "blob GET throughput, MB/s (best)",
            f"{max(direct):.0f}",
            f"{max(through):.0f}",
            f"{max(through) / max(direct):.2f}",
        ),
        (
            "blob GET throughput, gateway/direct of back-to-back pairs: median (min-max)",
            "",
            "",
            f"{statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})",
        ),
    ]
    if reference:
        r = statistics.median(reference)
        ref_pairs = [x / d for d, x in zip(direct, reference, strict=True)]
        rows.append(
            (
                "reference: blob GET through nginx (unbuffered, 1 MiB), MB/s (median); pairs median",
                f"{d:.0f}",
                f"{r:.0f}",
                f"{r / d:.2f}; {statistics.median(ref_pairs):.2f}",
            )
        )
    for label, lat in (
        ("cached trust (ttl 5 s)", lat_cached),
        ("uncached (ttl 0: TUF update)", lat_uncached),
    ):
        m = statistics.median(lat)
        rows.append(
            (
                f"manifest GET by tag, {label}: median / p90 ms",
                f"{md:.2f} / {percentile(lat_direct, 90):.2f}",
                f"{m:.2f} / {percentile(lat, 90):.2f}",
                f"+{m - md:.2f} ms",
            )
        )
    rows.append(
        (
            "gateway RSS after start / peak (VmHWM) while streaming",
            "",
            f"{rss_start / 1024:.1f} MiB / {rss_hwm / 1024:.1f} MiB",
            "",
        )
    )
    print(
        f"\n### notar gateway benchmark ({args.size_mb} MB layer, {args.runs} runs, {os.cpu_count()} CPUs)\n"
    )
    print(markdown_table(["measurement", "direct (registry)", "through gateway", "ratio / added"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
