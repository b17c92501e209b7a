"""Gateway benchmark: what `notar gateway` costs in front of the Debian `docker-registry`, beside nginx.

Everything runs on 127.0.0.1 from one temporary directory and is stopped before the script exits: a lab CA,
``docker-registry`` (plain HTTP), ``notar server`` (TLS, SQLite), two ``notar gateway`` processes (the
default 5 s trust cache, and ``--cache-ttl 0`` so that every request re-verifies the trust data) and, when
``nginx`` is installed (not a project dependency: ``apt-get install nginx-light``), nginx as a plain reverse
proxy in front of the same registry: what any proxy costs on the machine.

1. **Blob download throughput**: one random layer (default 200 MB) uploaded once, then downloaded with
   ``curl -o /dev/null`` directly from the registry, through the gateway and through nginx, one after the
   other, ``--runs`` times (each goes first in turn), after one warm-up download each. Figures of merit: the
   ratios notar/direct and notar/nginx of back-to-back runs (the machine's speed drifts between runs), and
   the server CPU per GB (the registry's for direct downloads, the proxy's own otherwise), which depends far
   less on the other load than MB/s does.
2. **Manifest GET by tag**: latency directly from the registry, through the gateway with a warm trust cache
   (the manifest bytes of the signed digest reused too), through it with a warm trust cache but a new
   ``Authorization`` value per request (so that the bytes are read upstream each time; the registry ignores
   the header), through the ``--cache-ttl 0`` gateway (a full TUF update against the trust server per
   request), and through nginx; median and p90 of ``--requests`` requests per target, each on its own
   keep-alive connection, the targets taking turns request by request.
3. **Peak RSS of the gateway** (``VmHWM`` in /proc/<pid>/status) after start and after the downloads: the
   layer is streamed, so the peak must not grow with its size.

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
import time
from collections.abc import Iterator
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import markdown_table, percentile, say, scratch_dir, start_peers

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
def run_nginx(workdir: Path, upstream: str) -> Iterator[tuple[str, int] | None]:
    """A reference proxy, when ``nginx`` is installed: what a C reverse proxy costs on the same machine.

    Tuned for this: unbuffered relaying with 1 MiB reads, upstream keep-alive, no access log. Yields its URL
    and the master's pid (its worker is a child).
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
    with Process("nginx", argv, log=workdir / "nginx.log", port=port) as proc:
        yield f"http://{LOOPBACK}:{port}", proc.pid


def tree_cpu(pid: int) -> float:
    """user + system CPU seconds of process *pid* (all its threads) and of its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def interleaved_latencies(
    targets: dict[str, str], n: int, accept: str, *, new_credentials: bool = False
) -> dict[str, list[float]]:
    """ms of *n* GETs per target, one keep-alive connection each, taking turns request by request (so that
    the machine's drift falls on all alike), after one warm-up request each. *new_credentials*: a fresh
    ``Authorization`` value on every request (the registry has no auth and ignores it; the gateway keeps
    manifest bytes per credentials, so it reads them upstream every time)."""
    clients = {name: httpx.Client(trust_env=False, timeout=60) for name in targets}
    out: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for i in range(n + 1):
            names = list(targets)
            names = names[i % len(names) :] + names[: i % len(names)]
            for name in names:
                headers = {"Accept": accept}
                if new_credentials:
                    headers["Authorization"] = "Basic " + os.urandom(12).hex()
                start = time.perf_counter()
                clients[name].get(targets[name], headers=headers).raise_for_status()
                if i:
                    out[name].append((time.perf_counter() - start) * 1e3)
    finally:
        for c in clients.values():
            c.close()
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 90):.2f}"


def pairs(a: list[float], b: list[float]) -> str:
    """Median (min-max) of a/b over back-to-back runs."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    return f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"


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
            # name -> (base URL, pid whose CPU is the server's: the registry itself, or the proxy)
            targets = {"direct": (registry.url, registry.pid), "notar": (gw.url, gw.process.pid)}
            if nginx is not None:
                targets["nginx"] = nginx
            mbs: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, list[float]] = {name: [] for name in targets}  # CPU seconds per GB
            for base, _ in targets.values():  # warm-up: page cache, connection pools, thread pool
                curl_download(f"{base}/v2/{REPO}/blobs/{digest}")
            for run in range(args.runs):
                names = list(targets)
                names = names[run % len(names) :] + names[: run % len(names)]  # each goes first in turn
                for name in names:
                    base, pid = targets[name]
                    before = tree_cpu(pid)
                    seconds, got = curl_download(f"{base}/v2/{REPO}/blobs/{digest}")
                    if got != size:
                        raise RuntimeError(f"downloaded {got} bytes, expected {size}")
                    mbs[name].append(size / seconds / 1e6)
                    cpu[name].append((tree_cpu(pid) - before) / (size / 1e9))
            rss_hwm = vm(gw.process.pid, "VmHWM")

            accept = image.manifest.media_type
            path = f"/v2/{REPO}/manifests/1.0"
            lat_targets = {name: base + path for name, (base, _) in targets.items()}
            lat = interleaved_latencies(lat_targets, args.requests, accept)
            lat_fresh = interleaved_latencies(
                {"direct": registry.url + path, "notar": gw.url + path},
                args.requests,
                accept,
                new_credentials=True,
            )
            n0 = max(10, args.requests // 2)
            lat_ttl0 = interleaved_latencies(
                {"direct": registry.url + path, "notar": gw0.url + path}, n0, accept
            )

    has_nginx = "nginx" in mbs
    d, t = mbs["direct"], mbs["notar"]
    r = mbs.get("nginx", [])
    na = "" if has_nginx else "(no nginx)"

    def row(label: str, fmt: str, direct: float, notar: float, ref: float | None) -> list[str]:
        cells = [label, fmt.format(direct), fmt.format(notar), fmt.format(ref) if ref is not None else na]
        cells += [f"{notar / direct:.2f}", f"{notar / ref:.2f}" if ref is not None else ""]
        return cells

    rows = [
        row(
            "blob GET throughput, MB/s (median)",
            "{:.0f}",
            statistics.median(d),
            statistics.median(t),
            statistics.median(r) if r else None,
        ),
        row("blob GET throughput, MB/s (best)", "{:.0f}", max(d), max(t), max(r) if r else None),
        [
            "blob GET throughput, ratios of back-to-back runs: median (min-max)",
            "",
            "",
            "",
            pairs(t, d),
            pairs(t, r) if r else "",
        ],
        [
            "blob GET: server CPU per GB, s (the registry's, direct; the proxy process's, through one)",
            *(
                f"{sum(cpu[name]) / len(cpu[name]):.3f}" if name in cpu else na
                for name in ("direct", "notar", "nginx")
            ),
            "",
            "",
        ],
    ]

    def latency_row(label: str, values: dict[str, list[float]]) -> list[str]:
        md, mn = statistics.median(values["direct"]), statistics.median(values["notar"])
        ref = values.get("nginx")
        return [
            f"manifest GET by tag, {label}: median / p90 ms",
            ms(values["direct"]),
            ms(values["notar"]),
            ms(ref) if ref else ("" if has_nginx else na),
            f"{mn - md:+.2f} ms",
            f"{mn - statistics.median(ref):+.2f} ms" if ref else "",
        ]

    rows += [
        latency_row("cached trust (ttl 5 s)", lat),
        latency_row("cached trust, manifest read upstream (new credentials per request)", lat_fresh),
        latency_row("uncached (ttl 0: TUF update)", lat_ttl0),
        [
            "gateway RSS after start / peak (VmHWM) while streaming",
            "",
            f"{rss_start / 1024:.1f} MiB / {rss_hwm / 1024:.1f} MiB",
            "",
            "",
            "",
        ],
    ]
    print(
        f"\n### notar gateway benchmark ({args.size_mb} MB layer, {args.runs} runs, {os.cpu_count()} CPUs)\n"
    )
    header = [
        "measurement",
        "direct (registry)",
        "notar gateway",
        "nginx (reverse proxy)",
        "notar / direct",
        "notar / nginx",
    ]
    print(markdown_table(header, rows))
    load = os.getloadavg()[0]
    print(
        f"\nGoals (issue 15): notar / nginx >= 1.0 for blobs; at most +2 ms for a manifest GET by tag with cached "
        f"trust. Load average at the end: {load:.2f} on {os.cpu_count()} CPUs (this bench itself keeps ~2 busy "
        "while downloading); compare ratios of one run."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
