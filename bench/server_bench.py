"""Trust-server benchmark: `notar server` beside the Go `notary-server`, same load generator, one run.

For each server (notar with ``--workers 1`` and ``--workers 2``, TLS, on SQLite (the default) and on
PostgreSQL (a throw-away cluster from tests/lab/postgres.py, one fresh database per server); Go notary-server from
Debian, TLS, memory storage, local trust service, as in tests/lab/notary.py) this script

1. builds one repository with notar's own library: fetches ``timestamp.key`` and ``snapshot.key`` from the
   server, signs root + a targets file of ``--targets`` (1,000) targets and POSTs them (server-managed
   snapshot and timestamp);
2. runs ``wrk -t2 -c32 -d<duration>s --latency`` against ``GET /v2/<gun>/_trust/tuf/timestamp.json`` and
   ``.../targets.json`` (after a short warm-up run), and reads requests/s, p50 and p99 from its output, and the
   server's CPU time over the run from /proc (with PostgreSQL, the database's processes count as server);
3. publishes ``--publishes`` (30) new targets versions, each with one more target, as multipart POSTs from
   Python with httpx on one keep-alive connection, and takes the median wall time of the POST.

All servers run at once, on 127.0.0.1 only (each idle while another is measured), and are stopped (with
everything else the script started) before it exits. The wrk runs go round-robin over servers and endpoints,
``--repeat`` rounds, so that other processes' load falls on all servers alike. It prints a Markdown table with the servers side by side and the notar/notary ratios.
wrk, the servers and this script share the machine's cores; before each measurement the script waits (up
to ``--quiet-wait`` s) for other processes to go idle, and reports how much CPU they took during the runs.

Run: `.venv/bin/python bench/server_bench.py [--duration 10] [--backends sqlite postgres] [--skip-go]`
(about 3 minutes with the defaults). Needs `wrk` (installed with apt-get when run as root), the test extras
(it reuses tests/lab/), for ``postgres`` the PostgreSQL server binaries and, unless
``--skip-go``, `notary-server` (both: scripts/install-peers.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # for tests.lab, tests.server.tuf_builders

import httpx  # noqa: E402
from tests.lab import (  # noqa: E402
    LabPKI,
    PostgresServer,
    child_env,
    make_lab_pki,
    require_loopback,
    run_notar_server,
    run_notary_server,
    run_postgres,
)
from tests.server.tuf_builders import Repo, multipart  # noqa: E402

from notar.crypto import PublicKey  # noqa: E402

GUN = "127.0.0.1:5000/bench/server-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # wrk's time units -> ms


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect/read/write/timeout) + non-2xx/3xx answers
    server_cpu_s: float  # CPU time of the server's processes over the run
    wrk_cpu_s: float  # CPU time of wrk itself over the run
    other_cpu_s: float  # CPU time of everything else on the machine over the run (noise)

    @property
    def server_cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")


@dataclass
class ServerResult:
    name: str
    get: dict[str, WrkResult] = field(default_factory=dict)  # "timestamp" / "targets" -> result
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of each served file
    publish_ms: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- wrk


def ensure_wrk() -> str:
    """The path of `wrk`; installs the Debian package when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: run `apt-get install -y wrk` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"]
    print("server_bench: installing wrk", file=sys.stderr)
    if subprocess.run(install, env=env, check=False, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, timeout=600)
        subprocess.run(install, env=env, check=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk still missing after apt-get install wrk")
    return found


def ensure_notary_server() -> None:
    if shutil.which("notary-server"):
        return
    if os.geteuid() != 0:
        sys.exit("notary-server is not installed: run scripts/install-peers.sh (or pass --skip-go)")
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install-peers.sh")], check=True, timeout=900)


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(out: str) -> tuple[int, float, float, float, float, int]:
    """(requests, seconds, requests/s, p50 ms, p99 ms, errors) from `wrk --latency` output."""
    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    if not (done and rps and p50 and p99):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    seconds = _ms(done.group(2), done.group(3)) / 1e3
    return (
        int(done.group(1)),
        seconds,
        float(rps.group(1)),
        _ms(*p50.groups()),
        _ms(*p99.groups()),
        errors,
    )


def group_cpu_seconds(*pgids: int) -> float:
    """user + system CPU seconds of the live processes in process groups ``pgids`` (server and its workers)
    and of their children (PostgreSQL's backends each call setsid(), so only their parent tells whose they
    are: the database server's postmaster, whose process group is listed for a notar run on PostgreSQL)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:  # the process went away
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) in pgids or int(fields[1]) in pgids:  # fields 5 and 4 of stat: pgrp, ppid
            ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return ticks / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    with Path("/proc/stat").open() as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / CLK_TCK  # user..steal; guest time is already counted in user


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str, url: str, *, pgids: tuple[int, ...], threads: int, connections: int, seconds: float
) -> tuple[WrkResult, str]:
    """One `wrk --latency` run against ``url``; also returns wrk's raw output."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        require_loopback(url),
    ]
    cpu0, wrk0, busy0 = group_cpu_seconds(*pgids), children_cpu_seconds(), machine_busy_seconds()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=child_env(), timeout=seconds + 60, check=False
    )
    cpu1, wrk1, busy1 = group_cpu_seconds(*pgids), children_cpu_seconds(), machine_busy_seconds()
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed (rc={done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, secs, rps, p50, p99, errors = parse_wrk(done.stdout)
    server, wrk_cpu = cpu1 - cpu0, wrk1 - wrk0
    other = max(0.0, busy1 - busy0 - server - wrk_cpu)
    result = WrkResult(requests, secs, rps, p50, p99, errors, server, wrk_cpu, other)
    return result, done.stdout


# --------------------------------------------------------------------------- the repository


class Client:
    """httpx on one keep-alive connection to one server's repository URL (loopback only)."""

    def __init__(self, base_url: str, ca: Path, gun: str) -> None:
        self.tuf = require_loopback(f"{base_url}/v2/{gun}/_trust/tuf/")
        ctx = ssl.create_default_context(cafile=str(ca))
        self.http = httpx.Client(verify=ctx, trust_env=False, timeout=60.0)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> bytes:
        resp = self.http.get(self.tuf + path)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path}: {resp.status_code} {resp.text[:300]}")
        return resp.content

    def key(self, role: str) -> PublicKey:
        return PublicKey.from_dict(json.loads(self.get(f"{role}.key")))

    def post(self, files: dict[str, bytes]) -> float:
        """POST one multipart update; returns the wall time of the request in ms."""
        body, ctype = multipart(files)
        start = time.perf_counter()
        resp = self.http.post(self.tuf, content=body, headers={"Content-Type": ctype})
        elapsed = (time.perf_counter() - start) * 1e3
        if resp.status_code != 200:
            raise RuntimeError(f"POST update: {resp.status_code} {resp.text[:300]}")
        return elapsed


def publish_repository(client: Client, targets: int) -> Repo:
    """root + a targets file with ``targets`` targets, snapshot and timestamp held by the server."""
    repo = Repo(GUN, timestamp_key=client.key("timestamp"), snapshot_key=client.key("snapshot"))
    client.post(repo.first_publish(*(f"v{i}.{i % 97}.{i % 13}" for i in range(targets))))
    return repo


def publish_latency(client: Client, repo: Repo, count: int) -> list[float]:
    """``count`` updates, each a new targets version with one more target; POST wall times in ms."""
    assert repo.targets is not None
    times = []
    for i in range(count):
        env = repo.sign_targets(f"bench-extra-{i}", version=repo.targets.version + 1)
        times.append(client.post({"targets": env.data}))
    return times


# --------------------------------------------------------------------------- one server


@dataclass(frozen=True)
class Options:
    wrk: str
    duration: float
    warmup: float
    threads: int
    connections: int
    targets: int
    publishes: int
    repeat: int
    quiet_wait: float
    verbose: bool
    postgres_version: str = "-"


def wait_until_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most ``max_wait`` s) until the machine is idle: busy cores over 1 s below ``threshold``.

    Our own servers are idle between runs, so what is busy here is someone else. Returns the last reading.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        if busy < threshold or time.monotonic() >= deadline:
            return busy


ROLES = ("timestamp", "targets")


@dataclass
class Server:
    """One running server under test, with its repository published."""

    result: ServerResult
    url: str
    pgids: tuple[int, ...]
    client: Client
    repo: Repo


def prepare(name: str, url: str, ca: Path, pgids: tuple[int, ...], opts: Options) -> Server:
    """Publish the repository to the server at ``url`` and check what it serves."""
    print(f"server_bench: {name:<16} up at {url}, process groups {pgids}", file=sys.stderr)
    client = Client(url, ca, GUN)
    result = ServerResult(name)
    repo = publish_repository(client, opts.targets)
    for role in ROLES:
        data = client.get(f"{role}.json")
        result.sizes[role] = len(data)
        if role == "targets" and data.count(b'"sha256"') < opts.targets:
            raise RuntimeError(f"{name}: targets.json does not hold {opts.targets} targets")
    return Server(result, url, pgids, client, repo)


def measure_all(servers: Sequence[Server], opts: Options) -> None:
    """wrk against every server and endpoint in turn, ``opts.repeat`` rounds; keeps per server and endpoint
    the run least disturbed by other processes.

    Round-robin rather than one server after the other: on a shared machine the load of other processes
    comes and goes over minutes, and taking turns spreads it over all servers alike.
    """
    for role in ROLES:
        for server in servers:
            if opts.warmup > 0:
                url = f"{server.client.tuf}{role}.json"
                run_wrk(
                    opts.wrk,
                    url,
                    pgids=server.pgids,
                    threads=opts.threads,
                    connections=opts.connections,
                    seconds=opts.warmup,
                )
    for _ in range(opts.repeat):
        for role in ROLES:
            for server in servers:
                if opts.quiet_wait > 0:
                    wait_until_quiet(opts.quiet_wait)
                name, url = server.result.name, f"{server.client.tuf}{role}.json"
                res, raw = run_wrk(
                    opts.wrk,
                    url,
                    pgids=server.pgids,
                    threads=opts.threads,
                    connections=opts.connections,
                    seconds=opts.duration,
                )
                if opts.verbose:
                    print(f"--- {name} {role}.json\n{raw}", file=sys.stderr)
                print(
                    f"server_bench: {name:<16} {role + '.json':<15} {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms"
                    f"  p99 {res.p99_ms:7.2f} ms  errors {res.errors}  server {res.server_cpu_s / res.seconds:.2f}"
                    f" cores  others {res.other_cpu_s / res.seconds:.2f} cores",
                    file=sys.stderr,
                )
                best = server.result.get.get(role)
                if best is None or res.other_cpu_s < best.other_cpu_s:
                    server.result.get[role] = res


def publish_all(servers: Sequence[Server], opts: Options) -> None:
    for server in servers:
        if opts.quiet_wait > 0:
            wait_until_quiet(opts.quiet_wait)
        server.result.publish_ms = publish_latency(server.client, server.repo, opts.publishes)
        print(
            f"server_bench: {server.result.name:<16} publish         median "
            f"{statistics.median(server.result.publish_ms):.1f} ms",
            file=sys.stderr,
        )


@contextlib.contextmanager
def notar(
    pki: LabPKI, workdir: Path, workers: int, postgres: PostgresServer | None
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """`notar server --workers N` on SQLite, or on a fresh database of *postgres* (dropped afterwards)."""
    database = postgres.create_database() if postgres is not None else None
    try:
        url = postgres.url(database) if postgres is not None and database else None
        with run_notar_server(
            pki, workdir, database_url=url, extra_args=("--workers", str(workers))
        ) as server:
            yield server.url, (server.pid, *((postgres.pid,) if postgres is not None else ()))
    finally:
        if postgres is not None and database:
            postgres.drop_database(database)


@contextlib.contextmanager
def notary_go(pki: LabPKI, workdir: Path) -> Iterator[tuple[str, tuple[int, ...]]]:
    with run_notary_server(pki, workdir, log_level="error") as server:
        yield server.url, (server.pid,)


# --------------------------------------------------------------------------- report


def uvicorn_stack() -> str:
    """uvicorn's version and the event loop / HTTP parser it picks in this environment (``auto``)."""
    from importlib import metadata, util

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    loop = f"uvloop {version('uvloop')}" if util.find_spec("uvloop") else "asyncio loop"
    http = f"httptools {version('httptools')}" if util.find_spec("httptools") else "h11"
    return f"uvicorn {version('uvicorn')}, {loop}, {http}"


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def report(results: Sequence[ServerResult], go: ServerResult | None, opts: Options) -> str:
    notars = [r for r in results if r is not go]
    cols = [*notars, *([go] if go else [])]
    head = ["measurement", *(r.name for r in cols)]
    if go:
        head += [f"{r.name} / Go" for r in notars]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label: str, values: list[float], digits: int, *, ratio: bool = True) -> None:
        cells = [label, *(_fmt(v, digits) for v in values)]
        if go:
            ref = values[-1]
            cells += [f"{v / ref:.2f}" if ratio and ref else "" for v in values[: len(notars)]]
        lines.append("| " + " | ".join(cells) + " |")

    for role in ("timestamp", "targets"):
        what = f"GET {role}.json"
        row(f"{what}: requests/s (higher is better)", [r.get[role].rps for r in cols], 0)
        row(f"{what}: p50 latency, ms", [r.get[role].p50_ms for r in cols], 2)
        row(f"{what}: p99 latency, ms", [r.get[role].p99_ms for r in cols], 2)
        row(
            f"{what}: server CPU per request, µs (with PostgreSQL's)",
            [r.get[role].server_cpu_us_per_request for r in cols],
            0,
        )
        row(
            f"{what}: server CPU, cores busy",
            [r.get[role].server_cpu_s / r.get[role].seconds for r in cols],
            2,
        )
        row(f"{what}: errors (socket + non-2xx)", [float(r.get[role].errors) for r in cols], 0, ratio=False)
        row(f"{what}: response size, bytes", [float(r.sizes[role]) for r in cols], 0)
    row("publish (targets +1 target): median ms", [statistics.median(r.publish_ms) for r in cols], 1)
    row(
        "publish: p90 ms",
        [statistics.quantiles(r.publish_ms, n=10)[-1] for r in cols],
        1,
    )
    runs = [run for r in cols for run in r.get.values()]
    wrk_cpu = [run.wrk_cpu_s / run.seconds for run in runs]
    other = max(run.other_cpu_s / run.seconds for run in runs)
    nproc = os.cpu_count()
    notes = [
        "",
        f"Machine: {nproc} cores (nproc); wrk, the servers and the Python client share them, so requests/s",
        f"is capped by wrk's own CPU too (wrk used {min(wrk_cpu):.2f}-{max(wrk_cpu):.2f} cores during the runs).",
        f"Other processes used at most {other:.2f} cores during any measured run"
        + (" -- WARNING: a busy machine; re-run when it is quiet." if other > 0.2 else "."),
        f"Load: `wrk -t{opts.threads} -c{opts.connections} -d{round(opts.duration)}s --latency --timeout 10s` "
        "over TLS to 127.0.0.1"
        + (f", after a {opts.warmup:g} s warm-up run" if opts.warmup > 0 else ", no warm-up")
        + (f", least disturbed of {opts.repeat} runs" if opts.repeat > 1 else "")
        + "; the runs take turns over the servers, one at a time.",
        f"Repository: server-managed snapshot and timestamp, targets.json with {opts.targets:,} targets;"
        f" publish = median of {opts.publishes} POSTs (httpx, one keep-alive connection), signing excluded.",
        f"notar: `notar server` ({uvicorn_stack()}, TLS) on SQLite (WAL, the default) or on PostgreSQL "
        f"{opts.postgres_version} (local, loopback TCP, fsync off as in the tests); Go: Debian `notary-server` "
        "(TLS, memory storage, local trust service).",
    ]
    return "\n".join(lines + notes)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of the warm-up wrk run (0: none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--targets", type=int, default=1000, help="targets in targets.json")
    parser.add_argument("--publishes", type=int, default=30, help="publishes timed per server")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="notar server --workers values to run"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of measured wrk runs (each round: every server and endpoint in turn); per server and "
        "endpoint the least disturbed run is kept",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each measurement, wait up to this many s for other processes to go idle (0: never)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("sqlite", "postgres"),
        default=["sqlite", "postgres"],
        help="notar's databases to run (each with every --workers value)",
    )
    parser.add_argument("--skip-go", action="store_true", help="do not run the Go notary-server")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print wrk's raw output")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1..600 s and --warmup 0..60 s")
    if not 2 <= args.publishes <= 1000 or not 1 <= args.targets <= 100_000:
        parser.error("--publishes must be 2..1000 and --targets 1..100000")
    if not 1 <= args.repeat <= 10 or not 0 <= args.quiet_wait <= 600:
        parser.error("--repeat must be 1..10 and --quiet-wait 0..600 s")

    opts = Options(
        wrk=ensure_wrk(),
        duration=args.duration,
        warmup=args.warmup,
        threads=args.threads,
        connections=args.connections,
        targets=args.targets,
        publishes=args.publishes,
        repeat=args.repeat,
        quiet_wait=args.quiet_wait,
        verbose=args.verbose,
    )
    if not args.skip_go:
        ensure_notary_server()

    workdir = Path(tempfile.mkdtemp(prefix="notar-server-bench-"))
    try:
        pki = make_lab_pki(workdir / "pki")
        servers: list[Server] = []
        with contextlib.ExitStack() as stack:  # every server runs until the end; each is idle in between
            postgres = None
            if "postgres" in args.backends:
                postgres = stack.enter_context(run_postgres(workdir / "postgres", log_level="error"))
                with postgres.connect() as conn:
                    row = conn.execute("SHOW server_version").fetchone()
                opts = dataclasses.replace(opts, postgres_version=str(row[0]).split()[0] if row else "?")
            for backend in args.backends:
                db = postgres if backend == "postgres" else None
                for workers in args.workers:
                    name = f"notar w{workers} {'pg' if db else 'sqlite'}"
                    where = workdir / f"notar-w{workers}-{backend}"
                    url, pgids = stack.enter_context(notar(pki, where, workers, db))
                    servers.append(prepare(name, url, pki.ca, pgids, opts))
                    stack.callback(servers[-1].client.close)
            if not args.skip_go:
                url, pgids = stack.enter_context(notary_go(pki, workdir / "notary-server"))
                servers.append(prepare("notary (Go)", url, pki.ca, pgids, opts))
                stack.callback(servers[-1].client.close)
            measure_all(servers, opts)
            publish_all(servers, opts)
        results = [s.result for s in servers]
        go = None if args.skip_go else results[-1]
    finally:
        if args.keep:
            print(f"server_bench: work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(results, go, opts))


if __name__ == "__main__":
    main()
