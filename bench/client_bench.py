"""Client benchmark: the `notar` CLI and library beside the Go notary CLI (and docker), same peers, one run.

Everything runs on 127.0.0.1 from one temporary directory and is stopped before the script exits: a lab CA,
the Debian ``docker-registry`` (plain HTTP), the Go ``notary-server`` (TLS, memory storage, local trust
service, as tests/lab runs it) and, for part 3, ``notar server`` (TLS, SQLite, tests/lab/notar.py).

1. **One signature, end to end, as a whole process.** An image is pushed with skopeo and tagged many times
   (manifest PUT); a notar trust directory gets a key (``notar key generate alice``) and the repository is
   initialised with ``notar signer add``. Each run is ``notar sign IMAGE:<new tag>`` (registry HEAD, TUF
   update, sign targets/releases + targets/alice, publish, verify), interleaved with the Go CLI on a
   ``notary init -p`` repository: ``notary addhash GUN TAG SIZE --sha256 HEX`` + ``notary publish GUN``
   (two processes) and ``notary addhash ... -p`` (one process). Wall time and CPU time (user+sys of the
   child, from rusage) per process; median of ``--runs`` after ``--warmup``. Also: process floors
   (``python -c pass``, ``import notar.cli``, the imports ``sign`` really needs, ``notary version``), a
   what-if row with ``notar.cli.server`` stubbed out of the import graph (what a lazy ``server`` command
   would give), and, when hyperfine is installed (apt-get installs it when we are root), a hyperfine
   cross-check with the same tag every run, as /work/shared/lab/BASELINES.md measured it.
2. **1,000 tags in one publish.** In-process ``Repository.sign({tag: FileMeta})`` with 1,000 random
   digests on a fresh repository each repeat (docker-style repository with a signer, and a repository
   without signers: tags into ``targets``), beside ``notary publish`` of 1,000 staged ``notary addhash``
   (only the publish is timed, as BASELINES.md does).
3. **``notar inspect`` of a repository with 10,000 signed tags** (signed in one ``Repository.sign``),
   against notary-server and against notar server: the CLI as a process (JSON to /dev/null; warm trust
   directory, and an empty one) and the library (``refresh`` + ``inspect_data`` + ``render_json``), beside
   ``docker trust inspect`` (Go, same JSON) when docker is installed.
4. **Where one ``notar sign`` spends its time**: an instrumented in-process run (import, registry, trust
   server HTTP, key decryption, signing, verification, cache I/O; median of ``--phase-runs``),
   ``python -X importtime`` of one ``notar sign`` (largest imports) and a cProfile of the command itself (top functions).

Run: ``.venv/bin/python bench/client_bench.py`` (about 3-5 minutes on 2 cores). ``--quick`` for a short
smoke run. Needs notary, notary-server, docker-registry and skopeo (scripts/install-peers.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import pstats
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# common first: it puts the repository root on sys.path for the imports from tests below
from common import (
    PROC_TIMEOUT,
    REPO_ROOT,
    Sample,
    best_ms,
    ensure_tool,
    markdown_table,
    run_timed,
    say,
    scratch_dir,
    start_peers,
    time_call,
)

# isort: split
from tests.lab import LabPKI, NotaryCLI, Registry, child_env, run_notar_server
from tests.registry.images import Skopeo, make_image, write_oci_layout

from notar.client import Repository, TrustCache, TrustedRepo, TrustServer, inspect_data, render_json
from notar.crypto import PrivateKey, PublicKey
from notar.encoding import canonical_json, loads_strict
from notar.keystore import EnvPassphrases, FileKeyStore
from notar.registry import RegistryClient
from notar.tuf import Envelope, FileMeta, Targets

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "bench-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "bench-repo-passphrase",
}
PYTHON = sys.executable
T = TypeVar("T")

# Programs run in a child instead of `notar`, with the same arguments (see each one's docstring):
DRIVERS = Path(__file__).resolve().parent / "drivers"
LAZY_SUBCOMMANDS = str(DRIVERS / "lazy_subcommands.py")  # other subcommands' modules stubbed out
TIMED_PHASES = str(DRIVERS / "timed_phases.py")  # timers around I/O and crypto -> $BENCH_PHASES_OUT
PROFILED_MAIN = str(DRIVERS / "profiled_main.py")  # cProfile of main(argv) -> $BENCH_PROFILE_OUT


# --------------------------------------------------------------------------- samples and rows


@dataclass
class Row:
    part: str
    what: str
    tool: str
    server: str
    samples: list[Sample]
    note: str = ""

    def walls_ms(self) -> list[float]:
        return [s.wall * 1e3 for s in self.samples]

    def median_wall_ms(self) -> float:
        return statistics.median(self.walls_ms())

    def median_cpu_ms(self) -> float:
        return statistics.median(s.cpu * 1e3 for s in self.samples)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    phases: list[tuple[str, float, str]] = field(default_factory=list)  # (phase, median ms, note)
    imports: list[tuple[str, float]] = field(default_factory=list)  # (module, cumulative ms)
    import_total_ms: float = 0.0
    import_packages: list[tuple[str, float]] = field(default_factory=list)  # (package, self ms summed)
    profile_top: list[str] = field(default_factory=list)
    micro: list[tuple[str, float, str]] = field(default_factory=list)  # (operation, best ms, note)
    facts: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


# --------------------------------------------------------------------------- peers and tools


class Notar:
    """The notar CLI with its own HOME and DOCKER_CONFIG, against one trust server."""

    def __init__(self, home: Path, server: str, ca: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.docker_config = home / ".docker"
        self.trust_dir = self.docker_config / "trust"
        self.server = server
        self.ca = ca
        self.env = self.env_for(self.docker_config)

    def env_for(self, docker_config: Path) -> dict[str, str]:
        return child_env(
            home=self.home,
            DOCKER_CONFIG=str(docker_config),
            DOCKER_CONTENT_TRUST_SERVER=self.server,
            NOTAR_TLS_CA=str(self.ca),
            **PASSPHRASES,
        )

    @staticmethod
    def argv(*args: str) -> list[str]:
        return [PYTHON, "-m", "notar", *args]

    def run(self, *args: str, capture_stdout: bool = False) -> tuple[Sample, str, str]:
        return run_timed(self.argv(*args), env=self.env, cwd=self.home, capture_stdout=capture_stdout)

    def keystore(self) -> FileKeyStore:
        return FileKeyStore(self.trust_dir, EnvPassphrases("notar", environ=PASSPHRASES))


class TimedTrustServer(TrustServer):
    """A TrustServer that adds up the wall time and count of its HTTP exchanges."""

    def __init__(self, url: str, *, verify: Any = True) -> None:
        super().__init__(url, verify=verify)
        self.http_seconds = 0.0
        self.requests = 0
        self.published_bytes = 0

    def _timed(self, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.http_seconds += time.perf_counter() - start
            self.requests += 1

    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        return self._timed(
            lambda: super(TimedTrustServer, self).get(
                gun, role, max_bytes=max_bytes, checksum=checksum, version=version
            )
        )

    def get_key(self, gun: str, role: str, *, rotate: bool = False) -> PublicKey:
        return self._timed(lambda: super(TimedTrustServer, self).get_key(gun, role, rotate=rotate))

    def publish(self, gun: str, files: Mapping[str, bytes]) -> None:
        self.published_bytes += sum(len(v) for v in files.values())
        self._timed(lambda: super(TimedTrustServer, self).publish(gun, files))


def library_repo(gun: str, url: str, ca: Path, trust_dir: Path) -> tuple[Repository, TimedTrustServer]:
    server = TimedTrustServer(url, verify=str(ca))
    keys = FileKeyStore(trust_dir, EnvPassphrases("notar", environ=PASSPHRASES))
    return Repository(gun, server=server, cache=TrustCache(trust_dir), keys=keys), server


def random_targets(count: int, prefix: str) -> dict[str, FileMeta]:
    return {
        f"{prefix}{i}": FileMeta(400 + secrets.randbelow(4000), {"sha256": secrets.token_bytes(32)})
        for i in range(count)
    }


def push_tagged_image(registry: Registry, work: Path, repo_path: str, tags: Sequence[str]) -> tuple[str, int]:
    """Push one image with skopeo as tags[0], then tag it as every other tag (manifest PUT).

    Returns (sha256 hex, manifest size)."""
    image = make_image("hello from client_bench\n")
    layout = write_oci_layout(work / "oci", tags[0], image)
    Skopeo(work).push_layout(layout, tags[0], f"{registry.host}/{repo_path}:{tags[0]}")
    with RegistryClient(registry.host) as client:
        for tag in tags[1:]:
            client.put_manifest(repo_path, tag, image.manifest.data, image.manifest.media_type)
    return image.manifest.digest.split(":", 1)[1], image.manifest.size


# --------------------------------------------------------------------------- part 1


@dataclass(frozen=True)
class Options:
    runs: int
    warmup: int
    phase_runs: int
    lib_repeats: int
    go_repeats: int
    many: int  # tags in part 2
    inspect_tags: int  # tags in part 3
    inspect_runs: int
    inspect_servers: tuple[str, ...]
    hyperfine: str | None
    docker: str | None


@dataclass
class Lab:
    """What part 1 (and the later parts) share: the signer's notar CLI, the image, the Go CLI."""

    work: Path
    registry: Registry
    notary_url: str
    ca: Path
    notar: Notar
    image: str  # REGISTRY/bench/app
    hexdigest: str
    size: int
    sign_tags: list[str]  # tags pushed for part 1's timed `notar sign`
    stub_tags: list[str]
    noca_tags: list[str]
    spare_tags: list[str]  # for the instrumented runs
    go: NotaryCLI
    go_gun: str


def prepare(opts: Options, work: Path, registry: Registry, notary_url: str, ca: Path) -> Lab:
    """Push and tag the image, initialise the notar repository (`notar signer add`) and the notary one."""
    repo_path = "bench/app"
    image = f"{registry.host}/{repo_path}"
    total = opts.warmup + opts.runs
    sign_tags = [f"s{i}" for i in range(total)]
    stub_tags = [f"w{i}" for i in range(total)]
    noca_tags = [f"v{i}" for i in range(total)]
    spare_tags = [f"x{i}" for i in range(opts.phase_runs + 4)]
    tags = ["base", *sign_tags, *stub_tags, *noca_tags, *spare_tags]
    say(f"pushing {image} with skopeo, tagging it {len(tags) - 1} more times")
    hexdigest, size = push_tagged_image(registry, work, repo_path, tags)

    notar = Notar(work / "notar-home", notary_url, ca)
    notar.run("key", "generate", "alice", "--dir", str(notar.home))
    notar.run("signer", "add", "alice", image, "--key", str(notar.home / "alice.pub"))
    notar.run("sign", f"{image}:base")  # the repository has a signed tag before the timed runs

    go = NotaryCLI(notary_url, ca, work / "go-trust", home=work / "go-home")
    go_gun = f"{registry.host}/bench/go-app"
    go.run("init", go_gun, "-p")
    return Lab(
        work,
        registry,
        notary_url,
        ca,
        notar,
        image,
        hexdigest,
        size,
        sign_tags,
        stub_tags,
        noca_tags,
        spare_tags,
        go,
        go_gun,
    )


def part1(res: Results, opts: Options, lab: Lab) -> None:
    """notar sign vs notary addhash + publish, one process per command."""
    notar, image, go, go_gun, work = lab.notar, lab.image, lab.go, lab.go_gun, lab.work
    hexdigest, size = lab.hexdigest, lab.size
    total = opts.warmup + opts.runs
    go_env = go.env()

    def go_run(*args: str) -> Sample:
        return run_timed(go.argv(*args), env=go_env, cwd=go.home)[0]

    # process floors
    floors: list[tuple[str, str, list[str], Mapping[str, str]]] = [
        ("process floor: `python -c pass`", "python", [PYTHON, "-c", "pass"], notar.env),
        (
            "process floor: `python -c 'import notar.cli'` (all notar commands)",
            "notar",
            [PYTHON, "-c", "import notar.cli"],
            notar.env,
        ),
        (
            "process floor: import only what `sign` uses (notar.client, notar.registry, notar.keystore, click)",
            "notar",
            [PYTHON, "-c", "import click, notar.client, notar.registry, notar.keystore, notar.tuf"],
            notar.env,
        ),
        ("process floor: `notar --version`", "notar", Notar.argv("--version"), notar.env),
        ("process floor: `notary version`", "notary (Go)", ["notary", "version"], go_env),
    ]
    say("process floors")
    for what, tool, argv, env in floors:
        samples = [run_timed(argv, env=env, cwd=work)[0] for _ in range(total)][opts.warmup :]
        res.add(Row("1", what, tool, "-", samples))

    say(f"one signature per process: {opts.warmup} warm-up + {opts.runs} runs of each, interleaved")
    sign: list[Sample] = []
    stub: list[Sample] = []
    noca: list[Sample] = []
    add: list[Sample] = []
    pub: list[Sample] = []
    add_pub: list[Sample] = []
    pair: list[Sample] = []
    for i in range(total):
        s1 = notar.run("sign", f"{image}:{lab.sign_tags[i]}")[0]
        s2 = run_timed(
            [PYTHON, LAZY_SUBCOMMANDS, "sign", f"{image}:{lab.stub_tags[i]}"],
            env=notar.env,
            cwd=notar.home,
        )[0]
        s3 = run_timed(
            [PYTHON, LAZY_SUBCOMMANDS, "sign", f"{image}:{lab.noca_tags[i]}"],
            env={**notar.env, "BENCH_NO_CA_FOR_HTTP": "1"},
            cwd=notar.home,
        )[0]
        a = go_run("addhash", go_gun, f"a{i}", str(size), "--sha256", hexdigest)
        p = go_run("publish", go_gun)
        ap = go_run("addhash", go_gun, f"p{i}", str(size), "--sha256", hexdigest, "-p")
        if i >= opts.warmup:
            sign.append(s1)
            stub.append(s2)
            noca.append(s3)
            add.append(a)
            pub.append(p)
            pair.append(Sample(a.wall + p.wall, a.cpu + p.cpu))
            add_pub.append(ap)
    res.add(
        Row(
            "1",
            "`notar sign IMAGE:NEWTAG` (registry HEAD + update + sign releases & alice + publish + verify)",
            "notar",
            "notary-server",
            sign,
            "repo from `notar signer add`; server-managed snapshot",
        )
    )
    res.add(
        Row(
            "1",
            "what-if: same `notar sign` with the other subcommands' modules (server, gateway, ...) stubbed out",
            "notar (patched in the child)",
            "notary-server",
            stub,
            "drivers/lazy_subcommands.py: what lazily imported subcommands would give",
        )
    )
    res.add(
        Row(
            "1",
            "what-if: + registry client without a CA bundle for a plain-HTTP registry",
            "notar (patched in the child)",
            "notary-server",
            noca,
            "drivers/lazy_subcommands.py with BENCH_NO_CA_FOR_HTTP=1 (verify=False for http:// registries)",
        )
    )
    res.add(
        Row(
            "1",
            "`notary addhash` + `notary publish` (2 processes, summed)",
            "notary (Go)",
            "notary-server",
            pair,
            "repo from `notary init -p`; client signs targets + snapshot",
        )
    )
    res.add(Row("1", "  of which `notary addhash` (offline staging)", "notary (Go)", "-", add))
    res.add(Row("1", "  of which `notary publish`", "notary (Go)", "notary-server", pub))
    res.add(Row("1", "`notary addhash ... -p` (1 process)", "notary (Go)", "notary-server", add_pub))

    if opts.hyperfine:
        say("hyperfine cross-check (same tag every run, as BASELINES.md)")
        hf_json = work / "hyperfine.json"
        env = {**go_env, **notar.env}
        cmds = [
            " ".join(Notar.argv("sign", f"{image}:base")),
            " ".join(go.argv("addhash", go_gun, "hf", str(size), "--sha256", hexdigest, "-p")),
        ]
        subprocess.run(
            [
                opts.hyperfine,
                "-N",
                "--warmup",
                str(max(1, opts.warmup)),
                "--runs",
                str(opts.runs),
                "--export-json",
                str(hf_json),
                *cmds,
            ],
            env=env,
            cwd=notar.home,
            check=True,
            capture_output=True,
            timeout=PROC_TIMEOUT,
        )
        data = json.loads(hf_json.read_text())
        labels = [
            ("hyperfine: `notar sign IMAGE:base` (re-sign the same tag)", "notar"),
            ("hyperfine: `notary addhash GUN hf ... -p` (same tag each run)", "notary (Go)"),
        ]
        for (what, tool), result in zip(labels, data["results"], strict=True):
            cpu = float(result["user"]) + float(result["system"])
            samples = [Sample(float(t), cpu) for t in result["times"]]
            res.add(Row("1", what, tool, "notary-server", samples, "hyperfine -N; CPU = mean user+sys"))


# --------------------------------------------------------------------------- part 1b: where the time goes


def phases(res: Results, opts: Options, lab: Lab) -> None:
    work, notar, image, tags = lab.work, lab.notar, lab.image, list(lab.spare_tags)
    say(f"instrumented `notar sign` ({opts.phase_runs} runs), importtime, cProfile")
    out = work / "phases.json"
    env = {**notar.env, "BENCH_PHASES_OUT": str(out)}
    runs: list[tuple[Sample, dict[str, Any]]] = []
    for _ in range(opts.phase_runs):
        sample = run_timed([PYTHON, TIMED_PHASES, "sign", f"{image}:{tags.pop()}"], env=env, cwd=notar.home)[
            0
        ]
        runs.append((sample, json.loads(out.read_text())))
    labels: list[str] = []
    for _, data in runs:
        for label in data["acc"]:
            if label not in labels:
                labels.append(label)

    def med(values: list[float]) -> float:
        return statistics.median(values) * 1e3

    wall = med([s.wall for s, _ in runs])
    imp = med([d["import"] for _, d in runs])
    main = med([d["main"] for _, d in runs])
    startup = med([s.wall - d["import"] - d["main"] for s, d in runs])
    res.phases.append(("whole process (wall)", wall, f"CPU {med([s.cpu for s, _ in runs]):.0f} ms"))
    res.phases.append(("interpreter start-up + exit", startup, "process wall - import - main()"))
    res.phases.append(("`import notar.cli` (every command, incl. the server stack)", imp, ""))
    res.phases.append(("`main(['sign', ...])`", main, "rows below are parts of it"))
    accounted = []
    for label in labels:
        vals = [d["acc"].get(label, 0.0) for _, d in runs]
        counts = {d["counts"].get(label, 0) for _, d in runs}
        accounted.append(vals)
        res.phases.append((f"  {label}", med(vals), f"calls: {'/'.join(str(c) for c in sorted(counts))}"))
    rest = [d["main"] - sum(d["acc"].values()) for _, d in runs]
    res.phases.append(("  rest of main() (TUF build/encode, canonical JSON, click, ...)", med(rest), ""))

    # python -X importtime of one `notar sign`
    _, _, stderr = run_timed(
        [PYTHON, "-X", "importtime", "-m", "notar", "sign", f"{image}:{tags.pop()}"],
        env=notar.env,
        cwd=notar.home,
    )
    total_self = 0.0
    first: dict[str, float] = {}
    by_package: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if not m:
            continue
        self_ms, name = int(m.group(1)) / 1e3, m.group(4)
        total_self += self_ms
        first.setdefault(name, int(m.group(2)) / 1e3)
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] == "notar" else parts[0]
        by_package[package] = by_package.get(package, 0.0) + self_ms
    res.import_total_ms = total_self
    res.import_packages = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:14]
    subcommands = sorted((n for n in first if re.fullmatch(r"notar\.cli\.\w+", n)), key=lambda n: -first[n])
    interesting = ["notar.cli", *subcommands, "notar.client", "notar.registry", "notar.tuf", "notar.crypto"]
    interesting += ["httpx", "cryptography.x509", "click"]
    res.imports = [(name, first[name]) for name in interesting if name in first]

    # cProfile of the command itself (after the imports, which importtime covers)
    prof = work / "sign.prof"
    run_timed(
        [PYTHON, PROFILED_MAIN, "sign", f"{image}:{tags.pop()}"],
        env={**notar.env, "BENCH_PROFILE_OUT": str(prof)},
        cwd=notar.home,
    )
    stats = pstats.Stats(str(prof))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, _, ct, _) in raw.values())
    lazy = max((v[3] for k, v in raw.items() if k[2] == "_find_and_load"), default=0.0)
    lines = [
        f"cProfile of `main(['sign', ...])` after `import notar.cli`: {total * 1e3:.0f} ms under the profiler "
        f"(of which lazy imports {lazy * 1e3:.0f} ms); top functions by cumulative time:"
    ]
    skip = ("click/core.py", "notar/cli/__init__.py", "notar/cli/_common.py", "cProfile", "importlib")
    shown = 0
    for (filename, lineno, func), (_, ncalls, _, ct, _) in sorted(raw.items(), key=lambda kv: -kv[1][3]):
        if any(part in filename for part in skip) or func.startswith("<method 'disable'"):
            continue
        short = filename.split("site-packages/")[-1].split("/src/")[-1].split("lib/python3.11/")[-1]
        where = func if filename == "~" else f"{short}:{lineno}({func})"
        lines.append(f"  {ct * 1e3:7.1f} ms {ncalls:6d} calls  {where}")
        shown += 1
        if shown >= 32:
            break
    res.profile_top = lines


# --------------------------------------------------------------------------- part 2


def part2(res: Results, opts: Options, work: Path, registry: Registry, notary_url: str, ca: Path) -> None:
    n = opts.many
    say(f"library: Repository.sign with {n} tags ({opts.lib_repeats} repeats per kind)")
    trust = work / "lib-trust"
    keystore = FileKeyStore(trust, EnvPassphrases("notar", environ=PASSPHRASES))
    alice = PrivateKey.generate()
    keystore.add(alice, role="alice")
    for kind in ("signer", "targets"):
        samples: list[Sample] = []
        http: list[float] = []
        reqs: set[int] = set()
        sizes: set[int] = set()
        for r in range(opts.lib_repeats):
            gun = f"{registry.host}/bench/lib{n}-{kind}-{r}"
            setup, _ = library_repo(gun, notary_url, ca, trust)
            if kind == "signer":
                setup.add_signer("alice", [alice.public_key])
            else:
                setup.initialize()
            setup.server.close()
            repo, server = library_repo(gun, notary_url, ca, trust)  # fresh connection, as a new process has
            targets = random_targets(n, "tag-")
            sample, result = time_call(functools.partial(repo.sign, targets))
            server.close()
            samples.append(sample)
            http.append(server.http_seconds * 1e3)
            reqs.add(server.requests)
            sizes.add(server.published_bytes)
            assert result.roles, result
        roles = "targets/releases + targets/alice" if kind == "signer" else "targets"
        res.add(
            Row(
                "2",
                f"library `Repository.sign` of {n} new tags in one publish -> {roles}",
                "notar (in-process)",
                "notary-server",
                samples,
                f"fresh repo each run; HTTP {statistics.median(http):.0f} ms in {'/'.join(map(str, sorted(reqs)))} "
                f"requests; POST body {max(sizes) // 1024} KiB",
            )
        )

    say(f"notary: publish of {n} staged addhash ({opts.go_repeats} repeats)")
    go = NotaryCLI(notary_url, ca, work / "go1000-trust", home=work / "go1000-home")
    env = go.env()
    publishes: list[Sample] = []
    staging: list[float] = []
    for r in range(opts.go_repeats):
        gun = f"{registry.host}/bench/go{n}-{r}"
        go.run("init", gun, "-p")
        start = time.perf_counter()
        for i in range(n):
            run_timed(
                go.argv("addhash", gun, f"tag-{i}", "401", "--sha256", secrets.token_hex(32)),
                env=env,
                cwd=go.home,
            )
        staging.append(time.perf_counter() - start)
        publishes.append(run_timed(go.argv("publish", gun), env=env, cwd=go.home)[0])
    res.add(
        Row(
            "2",
            f"`notary publish` of {n} staged targets (publish only)",
            "notary (Go)",
            "notary-server",
            publishes,
            f"staging {n} x `notary addhash` took {statistics.median(staging):.1f} s "
            f"({statistics.median(staging) / n * 1e3:.1f} ms each); targets + snapshot signed by the client",
        )
    )


# --------------------------------------------------------------------------- part 3


@contextlib.contextmanager
def inspect_server(kind: str, pki: LabPKI, work: Path, notary_url: str) -> Iterator[str]:
    if kind == "notary":
        yield notary_url
    else:
        with run_notar_server(pki, work / "notar-server") as server:
            yield server.url


def part3(
    res: Results, opts: Options, work: Path, registry: Registry, pki: LabPKI, notary_url: str, notar: Notar
) -> None:
    n = opts.inspect_tags
    alice_pub = PublicKey.from_pem((notar.home / "alice.pub").read_bytes())
    for kind in opts.inspect_servers:
        server_name = "notary-server" if kind == "notary" else "notar server"
        with inspect_server(kind, pki, work, notary_url) as url:
            cli = Notar(work / f"inspect-{kind}", url, pki.ca)
            # the signer's trust directory (alice's key) so that the CLI's cache is warm after signing
            shutil.copytree(notar.trust_dir / "private", cli.trust_dir / "private")
            gun = f"{registry.host}/bench/inspect{n}-{kind}"
            say(f"{server_name}: signing {n} tags into {gun} (library, one publish)")
            setup, _ = library_repo(gun, url, pki.ca, cli.trust_dir)
            setup.add_signer("alice", [alice_pub])
            setup.server.close()
            repo, server = library_repo(gun, url, pki.ca, cli.trust_dir)
            targets = random_targets(n, "v")
            sample, _ = time_call(functools.partial(repo.sign, targets))
            server.close()
            res.add(
                Row(
                    "3",
                    f"(setup) library `Repository.sign` of {n} new tags in one publish -> releases + alice",
                    "notar (in-process)",
                    server_name,
                    [sample],
                    f"HTTP {server.http_seconds * 1e3:.0f} ms in {server.requests} requests; POST body "
                    f"{server.published_bytes // 1024} KiB",
                )
            )

            say(f"{server_name}: inspect runs")
            _, out, _ = cli.run("inspect", gun, capture_stdout=True)
            notar_json = json.loads(out)
            assert len(notar_json[0]["SignedTags"]) == n, len(notar_json[0]["SignedTags"])
            warm = [cli.run("inspect", gun)[0] for _ in range(opts.inspect_runs)]
            res.add(
                Row(
                    "3",
                    f"`notar inspect REPO` ({n} tags, JSON > /dev/null), warm trust dir",
                    "notar",
                    server_name,
                    warm,
                )
            )
            lazy = [
                run_timed([PYTHON, LAZY_SUBCOMMANDS, "inspect", gun], env=cli.env, cwd=cli.home)[0]
                for _ in range(opts.inspect_runs)
            ]
            res.add(
                Row(
                    "3",
                    "what-if: same, other subcommands' modules stubbed out (lazy subcommands)",
                    "notar (patched in the child)",
                    server_name,
                    lazy,
                )
            )
            cold = []
            for i in range(opts.inspect_runs):
                env = cli.env_for(work / f"cold-{kind}-{i}")
                cold.append(run_timed(Notar.argv("inspect", gun), env=env, cwd=cli.home)[0])
            res.add(
                Row(
                    "3",
                    "`notar inspect REPO`, empty trust dir (TOFU, downloads everything)",
                    "notar",
                    server_name,
                    cold,
                )
            )

            lib_warm: list[Sample] = []
            parts: dict[str, list[float]] = {"refresh": [], "inspect_data": [], "render_json": []}
            for _ in range(opts.inspect_runs):
                r, s = library_repo(gun, url, pki.ca, cli.trust_dir)
                s1, trusted = time_call(r.refresh)
                s2, item = time_call(functools.partial(inspect_data, gun, trusted, None))
                s3, _ = time_call(functools.partial(render_json, [item]))
                s.close()
                lib_warm.append(Sample(s1.wall + s2.wall + s3.wall, s1.cpu + s2.cpu + s3.cpu))
                parts["refresh"].append(s1.wall * 1e3)
                parts["inspect_data"].append(s2.wall * 1e3)
                parts["render_json"].append(s3.wall * 1e3)
            note = ", ".join(f"{k} {statistics.median(v):.0f} ms" for k, v in parts.items())
            if not res.micro:
                micro(res, trusted, item, cli.trust_dir, gun)
            res.add(
                Row(
                    "3",
                    "library `refresh` + `inspect_data` + `render_json`, warm cache",
                    "notar (in-process)",
                    server_name,
                    lib_warm,
                    note,
                )
            )
            lib_cold: list[Sample] = []
            for i in range(opts.inspect_runs):
                r, s = library_repo(gun, url, pki.ca, work / f"lib-cold-{kind}-{i}")
                sample, trusted = time_call(r.refresh)
                s.close()
                lib_cold.append(sample)
            res.add(
                Row(
                    "3",
                    "library `refresh` only, empty cache (TOFU)",
                    "notar (in-process)",
                    server_name,
                    lib_cold,
                )
            )

            if opts.docker:
                docker = opts.docker
                _, out, _ = run_timed(
                    [docker, "trust", "inspect", gun], env=cli.env, cwd=cli.home, capture_stdout=True
                )
                same = json.loads(out) == notar_json
                dwarm = [
                    run_timed([docker, "trust", "inspect", gun], env=cli.env, cwd=cli.home)[0]
                    for _ in range(opts.inspect_runs)
                ]
                res.add(
                    Row(
                        "3",
                        "`docker trust inspect REPO`, warm trust dir (Go reference)",
                        "docker 28 (Go)",
                        server_name,
                        dwarm,
                        f"JSON identical to notar's: {same}",
                    )
                )
                dcold = []
                for i in range(opts.inspect_runs):
                    env = cli.env_for(work / f"dcold-{kind}-{i}")
                    dcold.append(run_timed([docker, "trust", "inspect", gun], env=env, cwd=cli.home)[0])
                res.add(
                    Row(
                        "3",
                        "`docker trust inspect REPO`, empty trust dir",
                        "docker 28 (Go)",
                        server_name,
                        dcold,
                    )
                )


def micro(res: Results, repo: TrustedRepo, item: dict[str, Any], trust_dir: Path, gun: str) -> None:
    """In-process costs of the steps a large repository makes expensive (best of 5)."""
    role = max(repo.targets, key=lambda r: len(repo.targets[r].data))
    data = repo.targets[role].data
    n = len(repo.targets[role].signed.targets)
    where = f"{role}.json, {n} targets, {len(data) // 1024} KiB"
    signed = loads_strict(data)["signed"]
    compact = functools.partial(
        json.dumps, signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    files = {"root": repo.root.data, "timestamp": repo.timestamp.data, "snapshot": repo.snapshot.data}
    files.update({r: e.data for r, e in repo.targets.items()})
    canon = best_ms(lambda: canonical_json(signed))
    dumps = best_ms(compact)
    res.micro += [
        (
            f"`Envelope.from_bytes` ({where})",
            best_ms(lambda: Envelope.from_bytes(data, expect=Targets, role=role)),
            "parse + validate + re-encode for verification",
        ),
        ("  `loads_strict` (json.loads with number checks)", best_ms(lambda: loads_strict(data)), ""),
        (
            "  `Targets.from_dict` (FileMeta.from_dict per target)",
            best_ms(lambda: Targets.from_dict(signed)),
            "",
        ),
        ("  `canonical_json(signed)`", canon, "what signature verification hashes"),
        (
            "    of which `json.dumps(sort_keys, compact)` (C encoder)",
            dumps,
            f"the other {canon - dumps:.0f} ms: the control-escape regex scan of the output",
        ),
        ("`inspect_data` (all tags of every role)", best_ms(lambda: inspect_data(gun, repo, None)), ""),
        (
            "`render_json` (json.dumps indent=4: pure-Python encoder)",
            best_ms(lambda: render_json([item])),
            "",
        ),
        (
            "  same data, `json.dumps` without indent (C encoder)",
            best_ms(lambda: json.dumps([item])),
            "for comparison",
        ),
        (
            "`TrustCache.store` of the unchanged roles (done on every refresh)",
            best_ms(lambda: TrustCache(trust_dir).store(gun, files)),
            f"{len(files)} files, write + fsync + rename each",
        ),
    ]


# --------------------------------------------------------------------------- report


def report(res: Results, opts: Options, header: str) -> str:
    columns = ["part", "measurement", "tool", "server", "n", "median wall ms", "min-max ms", "median CPU ms"]
    rows = [
        (
            row.part,
            row.what,
            row.tool,
            row.server,
            len(row.samples),
            f"**{row.median_wall_ms():.0f}**",
            f"{min(row.walls_ms()):.0f}-{max(row.walls_ms()):.0f}",
            f"{row.median_cpu_ms():.0f}",
            row.note,
        )
        for row in res.rows
    ]
    out = [header, "", markdown_table([*columns, "notes"], rows)]
    if res.phases:
        out += [
            "",
            f"Where one `notar sign` spends its time (instrumented child, median of {opts.phase_runs}):",
            "",
            markdown_table(["phase", "median ms", "notes"], [(p, f"{ms:.1f}", n) for p, ms, n in res.phases]),
        ]
    if res.imports:
        out += [
            "",
            f"`python -X importtime` of one `notar sign`: {res.import_total_ms:.0f} ms of imports in total "
            "(inflated by importtime itself); cumulative ms where each module is first imported:",
            "",
            markdown_table(
                ["module", "cumulative ms"], [(f"`{name}`", f"{ms:.0f}") for name, ms in res.imports]
            ),
            "",
            "Import self time summed by package (top):",
            "",
            markdown_table(
                ["package", "self ms"], [(f"`{name}`", f"{ms:.0f}") for name, ms in res.import_packages]
            ),
        ]
    if res.profile_top:
        out += ["", "```", *res.profile_top, "```"]
    if res.micro:
        out += [
            "",
            "In-process micro-costs with the largest repository of part 3 (best of 5):",
            "",
            markdown_table(["operation", "ms", "notes"], [(w, f"{ms:.1f}", n) for w, ms, n in res.micro]),
        ]
    if res.facts:
        out += ["", *[f"* {f}" for f in res.facts]]
    return "\n".join(out)


def source_state() -> str:
    """The commit the notar under test comes from, and whether src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="measured runs per process benchmark (part 1)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per process benchmark (part 1)")
    parser.add_argument("--phase-runs", type=int, default=5, help="instrumented `notar sign` runs")
    parser.add_argument("--many", type=int, default=1000, help="tags in one publish (part 2)")
    parser.add_argument("--lib-repeats", type=int, default=3, help="library sign repeats per kind (part 2)")
    parser.add_argument("--go-repeats", type=int, default=2, help="notary stage+publish repeats (part 2)")
    parser.add_argument("--inspect-tags", type=int, default=10_000, help="signed tags in part 3")
    parser.add_argument("--inspect-runs", type=int, default=5, help="runs per inspect benchmark (part 3)")
    parser.add_argument(
        "--inspect-server",
        choices=["notary", "notar", "both"],
        default="both",
        help="which trust server(s) part 3 runs against",
    )
    parser.add_argument("--parts", default="1,2,3", help="comma-separated parts to run (1, 2, 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few runs, 100 and 1,000 tags")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, profile)")
    parser.add_argument("--json", type=Path, help="also write the raw samples as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.warmup, args.phase_runs, args.lib_repeats, args.go_repeats = 3, 1, 2, 1, 1
        args.many, args.inspect_tags, args.inspect_runs = 100, 1000, 2
    limits = [
        (1 <= args.runs <= 100, "--runs 1..100"),
        (0 <= args.warmup <= 20, "--warmup 0..20"),
        (1 <= args.phase_runs <= 50, "--phase-runs 1..50"),
        (1 <= args.many <= 20_000, "--many 1..20000"),
        (
            1 <= args.lib_repeats <= 20 and 1 <= args.go_repeats <= 10,
            "--lib-repeats 1..20, --go-repeats 1..10",
        ),
        (1 <= args.inspect_tags <= 100_000 and 1 <= args.inspect_runs <= 50, "--inspect-tags/--inspect-runs"),
    ]
    for ok, what in limits:
        if not ok:
            parser.error(f"out of range: {what}")
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"1", "2", "3"}:
        parser.error("--parts takes 1, 2 and/or 3")

    for binary in ("notary", "notary-server", "docker-registry", "skopeo"):
        ensure_tool(
            binary,
            {"docker-registry": "docker-registry", "skopeo": "skopeo"}.get(binary, "notary"),
            required=True,
        )
    opts = Options(
        runs=args.runs,
        warmup=args.warmup,
        phase_runs=args.phase_runs,
        lib_repeats=args.lib_repeats,
        go_repeats=args.go_repeats,
        many=args.many,
        inspect_tags=args.inspect_tags,
        inspect_runs=args.inspect_runs,
        inspect_servers=("notary", "notar") if args.inspect_server == "both" else (args.inspect_server,),
        hyperfine=ensure_tool("hyperfine", "hyperfine", required=False),
        docker=shutil.which("docker"),
    )
    res = Results()
    load_before = loadavg()
    started = time.monotonic()
    with (
        scratch_dir("notar-client-bench-", keep=args.keep) as work,
        start_peers(work, registry=True, notary=True) as peers,
    ):
        registry, notary, pki = peers.registry, peers.notary, peers.pki
        say(f"registry {registry.url}, notary-server {notary.url}")
        lab = prepare(opts, work, registry, notary.url, pki.ca)
        if "1" in parts:
            part1(res, opts, lab)
            phases(res, opts, lab)
        if "2" in parts:
            part2(res, opts, work, registry, notary.url, pki.ca)
        if "3" in parts:
            part3(res, opts, work, registry, pki, notary.url, lab.notar)
    cpu = os.cpu_count()
    header = (
        f"## notar client benchmark ({cpu} CPUs, Python {sys.version.split()[0]}, everything on 127.0.0.1; "
        f"load average {load_before} before, {loadavg()} after; {time.monotonic() - started:.0f} s)\n\n"
        "Wall = elapsed time of the process (or library call); CPU = user+sys of that process (rusage) or "
        "of this process for in-process library calls. Go tools: notary 0.7 CLI / notary-server from Debian. "
        f"notar source: {source_state()}."
    )
    print(report(res, opts, header))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "part": r.part,
                        "what": r.what,
                        "tool": r.tool,
                        "server": r.server,
                        "wall_s": [s.wall for s in r.samples],
                        "cpu_s": [s.cpu for s in r.samples],
                    }
                    for r in res.rows
                ],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
