"""CLI start-up (issue 15): the daily notar commands as whole processes beside the Go notary CLI, in one run,
and what each notar command imports.

Pairs (notar / its Go anchor, against the same trust server, same repository state, warm trust directories):

* ``notar resolve IMAGE:TAG``  /  ``notary lookup GUN TAG``                         goal: <= 5x
* ``notar sign IMAGE:TAG`` (one tag, v1, re-signed each run)  /  ``notary addhash GUN TAG SIZE --sha256 HEX -p``
                                                                                 goal: <= 3x
* ``notar inspect IMAGE``  /  ``notary list GUN``
* ``notar --help``  /  ``notary --help``

notar is this environment's ``notar`` console script (what users run). The commands of a round run in an
order that turns from round to round, after warm-up rounds; the table has the median wall time of each, the
median of the per-round ratios notar / Go, the goal and the median CPU time (user + sys of the child, from
rusage), and two floors timed in the same rounds: the interpreter, and the libraries ``notar resolve`` cannot
do without. Against the Go ``notary-server`` (TLS, memory storage) by default; ``--servers notary,notar`` adds
the same pairs against ``notar server``. ``--before SRC`` adds a column for the notar of another source tree
(``git archive COMMIT src | tar -x -C /tmp/before`` -> ``--before /tmp/before/src``), timed in the same rounds.

Then ``python -X importtime`` of each notar command (``--importtime-runs`` runs; per package the median of
the summed self times): the total import time (the top-level imports' cumulative times added up), the
largest packages, which of the heavy packages (:data:`HEAVY`) the command loaded, and a budget line per
command (:data:`IMPORT_BUDGET_MS`, reported, not enforced). importtime inflates import times by ~10-20 %.
No test times anything: this script is the check; ``tests/cli/test_startup.py`` checks the import graph.

Run: ``.venv/bin/python bench/startup_bench.py`` (about a minute; ``--runs 5`` for a quick one). Needs notary,
notary-server, docker-registry and skopeo (scripts/install-peers.sh). ``--hold`` sets everything up, prints
the commands as shell lines (for hyperfine or ``-X importtime`` by hand) and keeps the peers up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import Sample, ensure_tool, markdown_table, run_timed, say, scratch_dir, start_peers

# isort: split
from tests.lab import NotaryCLI, Registry

from client_bench import Notar, loadavg, push_tagged_image, source_state

PYTHON = sys.executable
#: Process floors, timed in every round: the interpreter, and the libraries `notar resolve` cannot do without
#: (click for the command line, cryptography's x509 for root certificates, TLS and HTTP from the stdlib).
FLOORS = {
    "`python -c pass`": "pass",
    "`python -c 'import click, cryptography.x509, ssl, http.client'`": "import click, cryptography.x509, ssl, http.client",
}
#: What users run: the console script of this environment (``python -m notar`` adds runpy's imports).
NOTAR_SCRIPT = Path(PYTHON).with_name("notar")


def notar_argv(*args: str) -> list[str]:
    return [str(NOTAR_SCRIPT), *args] if NOTAR_SCRIPT.is_file() else [PYTHON, "-m", "notar", *args]


#: Goal per command (issue 15): notar's wall time at most this many times its Go anchor's.
GOALS = {"resolve": 5.0, "sign": 3.0}

#: Import budget per command, in ms of ``python -X importtime`` (the top-level imports' cumulative times added up,
#: median of the runs): today's figures on the project's 2-core machine with ~15 % margin, so that a heavy
#: import creeping back (httpx is ~60 ms, the registry client ~15 ms) shows as OVER. Reported, not enforced.
IMPORT_BUDGET_MS = {"resolve": 165.0, "sign": 250.0, "inspect": 165.0, "--help": 60.0}

#: Packages a daily command should not need; the report says which ones each command imported anyway.
HEAVY = (
    "rich",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "idna",
    "certifi",
    "urllib3",
    "cryptography.x509",
    "asn1crypto",
    "cbor2",
    "notar.notation",
    "notar.cosign",
    "notar.kms",
    "notar.transfer",
    "notar.signing",
    "notar.registry.client",
    "notar.keystore._store",
    "sqlalchemy",
    "boto3",
    "uvicorn",
    "starlette",
    "jinja2",
    "yaml",
)


LABELS = {
    "resolve": ("`notar resolve IMAGE:TAG`", "`notary lookup GUN TAG`"),
    "sign": ("`notar sign IMAGE:TAG` (one tag, v1)", "`notary addhash GUN TAG SIZE --sha256 HEX -p`"),
    "inspect": ("`notar inspect IMAGE`", "`notary list GUN`"),
    "--help": ("`notar --help`", "`notary --help`"),
}


@dataclass
class Pair:
    name: str  # the notar command: resolve, sign, inspect, --help
    server: str  # which trust server both talk to ("-" for --help)
    notar: list[str]
    notar_env: dict[str, str]
    notar_cwd: Path
    go: list[str]
    go_env: dict[str, str]
    go_cwd: Path
    notar_runs: list[Sample] = field(default_factory=list)
    go_runs: list[Sample] = field(default_factory=list)
    before_runs: list[Sample] = field(default_factory=list)  # with --before: the other source tree's notar
    ratios: list[float] = field(default_factory=list)
    before_ratios: list[float] = field(default_factory=list)


@dataclass
class Imports:
    total_ms: float
    packages: list[tuple[str, float]]  # (package, self ms summed), largest first
    heavy: list[str]


def median_ms(samples: Sequence[Sample], attr: str = "wall") -> float:
    return statistics.median(getattr(s, attr) for s in samples) * 1e3


# --------------------------------------------------------------------------- set-up


@dataclass
class Side:
    """One trust server with a notar repository and a Go repository on it, ready for the pairs."""

    server: str  # "notary" or "notar"
    notar: Notar
    image: str  # REGISTRY/startup/app-<server>, tags base (signed) and sign
    go: NotaryCLI
    go_gun: str
    hexdigest: str
    size: int


def prepare(work: Path, kind: str, url: str, ca: Path, registry: Registry) -> Side:
    """Push an image tagged base and sign; a notar repository (signer alice, base signed) and a Go one
    (``notary init -p``, base added), both on the server at *url*, and both trust directories warm."""
    repo_path = f"startup/app-{kind}"
    image = f"{registry.host}/{repo_path}"
    hexdigest, size = push_tagged_image(registry, work / f"image-{kind}", repo_path, ["base", "sign"])
    notar = Notar(work / f"notar-{kind}", url, ca)
    notar.run("key", "generate", "alice", "--dir", str(notar.home))
    notar.run("signer", "add", "alice", image, "--key", str(notar.home / "alice.pub"))
    notar.run("sign", f"{image}:base")
    notar.run("resolve", f"{image}:base")  # the trust directory is warm from here on
    go = NotaryCLI(url, ca, work / f"go-{kind}" / "trust", home=work / f"go-{kind}" / "home")
    go_gun = f"{registry.host}/startup/go-{kind}"
    go.run("init", go_gun, "-p")
    go.run("addhash", go_gun, "base", str(size), "--sha256", hexdigest, "-p")
    go.run("lookup", go_gun, "base")
    return Side(kind, notar, image, go, go_gun, hexdigest, size)


def pairs_for(side: Side) -> list[Pair]:
    n, go = side.notar, side.go
    go_env = go.env()

    def pair(name: str, notar_args: list[str], go_args: list[str]) -> Pair:
        return Pair(
            name, side.server, notar_argv(*notar_args), n.env, n.home, go.argv(*go_args), go_env, go.home
        )

    return [
        pair("resolve", ["resolve", f"{side.image}:base"], ["lookup", side.go_gun, "base"]),
        pair(
            "sign",
            ["sign", f"{side.image}:sign"],
            ["addhash", side.go_gun, "sign", str(side.size), "--sha256", side.hexdigest, "-p"],
        ),
        pair("inspect", ["inspect", side.image], ["list", side.go_gun]),
    ]


def help_pair(side: Side) -> Pair:
    return Pair(
        "--help",
        "-",
        notar_argv("--help"),
        side.notar.env,
        side.notar.home,
        ["notary", "--help"],
        side.go.env(),
        side.go.home,
    )


# --------------------------------------------------------------------------- measuring


def run_pairs(pairs: list[Pair], *, runs: int, warmup: int, before: str | None) -> dict[str, list[Sample]]:
    """Rounds over every pair: notar, Go (and the --before notar), in an order that turns each round; then
    the :data:`FLOORS`. Returns the floors' samples."""
    floors: dict[str, list[Sample]] = {label: [] for label in FLOORS}
    env0, cwd0 = pairs[0].notar_env, pairs[0].notar_cwd
    kinds = ["notar", "go", "before"] if before else ["notar", "go"]
    for i in range(warmup + runs):
        for p in pairs:
            order = kinds[i % len(kinds) :] + kinds[: i % len(kinds)]
            got: dict[str, Sample] = {}
            for kind in order:
                if kind == "go":
                    got[kind] = run_timed(p.go, env=p.go_env, cwd=p.go_cwd)[0]
                else:
                    env = p.notar_env if kind == "notar" else {**p.notar_env, "PYTHONPATH": str(before)}
                    got[kind] = run_timed(p.notar, env=env, cwd=p.notar_cwd)[0]
            if i >= warmup:
                p.notar_runs.append(got["notar"])
                p.go_runs.append(got["go"])
                p.ratios.append(got["notar"].wall / got["go"].wall)
                if before:
                    p.before_runs.append(got["before"])
                    p.before_ratios.append(got["before"].wall / got["go"].wall)
        for label, code in FLOORS.items():
            f = run_timed([PYTHON, "-c", code], env=env0, cwd=cwd0)[0]
            if i >= warmup:
                floors[label].append(f)
        if i == warmup - 1 or (i >= warmup and (i - warmup + 1) % 5 == 0):
            say(f"round {i + 1}/{warmup + runs}")
    return floors


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def parse_importtime(stderr: str) -> tuple[float, dict[str, float], dict[str, float]]:
    """(total ms = sum of the top-level imports' cumulative times, self ms by module, cumulative ms by module)."""
    total = 0.0
    self_ms: dict[str, float] = {}
    cumulative: dict[str, float] = {}
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        own, cum, indent, name = int(m.group(1)) / 1e3, int(m.group(2)) / 1e3, len(m.group(3)), m.group(4)
        if indent == 0:  # a top-level import (the interpreter's own, or the program's)
            total += cum
        self_ms[name] = self_ms.get(name, 0.0) + own
        cumulative.setdefault(name, cum)
    return total, self_ms, cumulative


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "notar" and len(parts) > 1:
        return ".".join(parts[:2])
    if parts[0] == "cryptography" and len(parts) > 1 and parts[1] in ("x509", "hazmat"):
        return ".".join(parts[:2])
    return parts[0]


def measure_imports(p: Pair, runs: int, *, pythonpath: str | None = None) -> Imports:
    """``python -X importtime`` of the pair's notar command, *runs* times (with *pythonpath*: another tree)."""
    env = p.notar_env if pythonpath is None else {**p.notar_env, "PYTHONPATH": pythonpath}
    totals: list[float] = []
    per_package: dict[str, list[float]] = {}
    seen: set[str] = set()
    for _ in range(runs):
        argv = [PYTHON, "-X", "importtime", *(p.notar if p.notar[0] != PYTHON else p.notar[1:])]
        _, _, stderr = run_timed(argv, env=env, cwd=p.notar_cwd)
        total, self_ms, _ = parse_importtime(stderr)
        totals.append(total)
        seen |= set(self_ms)
        sums: dict[str, float] = {}
        for module, ms in self_ms.items():
            sums[package_of(module)] = sums.get(package_of(module), 0.0) + ms
        for package, ms in sums.items():
            per_package.setdefault(package, []).append(ms)
    packages = sorted(
        ((name, statistics.median(v + [0.0] * (runs - len(v)))) for name, v in per_package.items()),
        key=lambda kv: -kv[1],
    )
    heavy = [h for h in HEAVY if h in seen]
    return Imports(statistics.median(totals), packages, heavy)


# --------------------------------------------------------------------------- report


def _range(samples: Sequence[Sample]) -> str:
    return f"{min(x.wall for x in samples) * 1e3:.0f}-{max(x.wall for x in samples) * 1e3:.0f}"


def report(
    pairs: list[Pair],
    floors: dict[str, list[Sample]],
    imports: dict[str, Imports],
    before_imports: dict[str, Imports],
    top: int,
    header: str,
) -> str:
    with_before = any(p.before_runs for p in pairs)
    rows = []
    for p in pairs:
        goal = GOALS.get(p.name)
        ratio = statistics.median(p.ratios)
        verdict = "" if goal is None else f"<= {goal:g}x: {'met' if ratio <= goal else 'not met'}"
        notar_label, go_label = LABELS[p.name]
        row = [notar_label, p.server]
        if with_before:
            row += [f"{median_ms(p.before_runs):.0f}", f"{statistics.median(p.before_ratios):.2f}"]
        row += [
            f"**{median_ms(p.notar_runs):.0f}**",
            _range(p.notar_runs),
            f"{median_ms(p.notar_runs, 'cpu'):.0f}",
            go_label,
            f"**{median_ms(p.go_runs):.0f}**",
            f"{median_ms(p.go_runs, 'cpu'):.0f}",
            f"**{ratio:.2f}**",
            verdict,
        ]
        rows.append(row)
    for label, floor in floors.items():
        row = [f"{label} (floor)", "-", *(["", ""] if with_before else [])]
        row += [
            f"{median_ms(floor):.0f}",
            _range(floor),
            f"{median_ms(floor, 'cpu'):.0f}",
            "",
            "",
            "",
            "",
            "",
        ]
        rows.append(row)
    columns = ["notar command", "server", *(["before ms", "before / Go"] if with_before else [])]
    columns += ["notar ms", "min-max", "CPU ms", "Go anchor", "Go ms", "Go CPU ms", "notar / Go", "goal"]
    right = {i for i, c in enumerate(columns) if c.endswith(("ms", "/ Go"))}
    out = [header, "", markdown_table(columns, rows, right=right)]
    out += ["", "`python -X importtime` per command (median of the runs; self time summed by package):", ""]
    irows = []
    for name, imp in imports.items():
        budget = IMPORT_BUDGET_MS.get(name)
        line = "" if budget is None else f"{'within' if imp.total_ms <= budget else 'OVER'} {budget:.0f}"
        largest = ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in imp.packages[:top] if ms >= 0.5)
        row = [f"`notar {name}`"]
        if before_imports:
            row.append(f"{before_imports[name].total_ms:.0f}" if name in before_imports else "")
        row += [f"**{imp.total_ms:.0f}**", line, largest, " ".join(imp.heavy) or "-"]
        irows.append(row)
    icolumns = ["command", *(["before: imports ms"] if before_imports else []), "imports ms", "budget ms"]
    icolumns += ["largest (ms)", "heavy packages imported"]
    out.append(markdown_table(icolumns, irows, right={1, 2} if before_imports else {1}))
    budgets = ", ".join(
        f"{name} {imports[name].total_ms:.0f}/{b:.0f}"
        for name, b in IMPORT_BUDGET_MS.items()
        if name in imports
    )
    over = [name for name, b in IMPORT_BUDGET_MS.items() if name in imports and imports[name].total_ms > b]
    verdict = "OVER for " + ", ".join(over) if over else "all within"
    out += ["", f"Import budget (`-X importtime` ms, measured/budget): {budgets}: {verdict}"]
    return "\n".join(out)


def hold(pairs: list[Pair]) -> None:
    """Print each command as a shell line and wait for Ctrl-C (the peers stay up meanwhile)."""

    def line(argv: list[str], env: Mapping[str, str], cwd: Path) -> str:
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
        return f"(cd {shlex.quote(str(cwd))} && env -i {envs} {shlex.join(argv)})"

    for p in pairs:
        print(
            f"# {p.name} ({p.server})\n{line(p.notar, p.notar_env, p.notar_cwd)}\n{line(p.go, p.go_env, p.go_cwd)}"
        )
    sys.stdout.flush()
    say(f"peers up; Ctrl-C or kill {os.getpid()} to stop them")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # also when started in the background (SIGINT ignored there): the peers are stopped on the way out
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="measured rounds (each pair once per round)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds not counted, first")
    parser.add_argument("--importtime-runs", type=int, default=5, help="`-X importtime` runs per command")
    parser.add_argument("--top", type=int, default=8, help="packages shown per command in the import table")
    parser.add_argument(
        "--servers",
        default="notary",
        help="trust servers, comma-separated: notary (Go), notar (notar server)",
    )
    parser.add_argument(
        "--hold", action="store_true", help="set up, print the commands, keep peers until Ctrl-C"
    )
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also time the notar of another source tree (its src/ directory, put first on PYTHONPATH), e.g. "
        "`git archive COMMIT src | tar -x -C /tmp/before` -> --before /tmp/before/src",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not servers or not set(servers) <= {"notary", "notar"}:
        parser.error("--servers takes notary and/or notar")
    if not (1 <= args.runs <= 100 and 0 <= args.warmup <= 10 and 1 <= args.importtime_runs <= 50):
        parser.error("out of range: --runs 1..100, --warmup 0..10, --importtime-runs 1..50")
    for binary, package in (
        ("notary", "notary"),
        ("notary-server", "notary"),
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
    ):
        ensure_tool(binary, package, required=True)

    load_before = loadavg()
    started = time.monotonic()
    with (
        scratch_dir("notar-startup-bench-", keep=args.keep) as work,
        start_peers(work, registry=True, notary="notary" in servers, notar="notar" in servers) as peers,
    ):
        sides = []
        for kind in servers:
            url = peers.notary.url if kind == "notary" else peers.notar.url
            say(f"setting up repositories on {kind} ({url})")
            sides.append(prepare(work / "clients", kind, url, peers.pki.ca, peers.registry))
        pairs = [p for side in sides for p in pairs_for(side)] + [help_pair(sides[0])]
        if args.hold:
            hold(pairs)
            return
        say(f"{args.warmup} warm-up + {args.runs} rounds over {len(pairs)} pairs")
        floors = run_pairs(pairs, runs=args.runs, warmup=args.warmup, before=args.before)
        say(f"python -X importtime, {args.importtime_runs} runs per command")
        first = [p for p in pairs if p.server in ("-", servers[0])]
        imports = {p.name: measure_imports(p, args.importtime_runs) for p in first}
        before_imports = (
            {p.name: measure_imports(p, args.importtime_runs, pythonpath=args.before) for p in first}
            if args.before
            else {}
        )
    header = (
        f"## notar CLI start-up ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, everything on "
        f"127.0.0.1; notar {source_state()}; load average {load_before} before, {loadavg()} after; "
        f"{time.monotonic() - started:.0f} s)\n\n"
        f"Whole processes, median of {args.runs} rounds after {args.warmup} warm-up rounds, each pair in turn; "
        "ratio = median of the per-round ratios notar / Go (wall). Go: Debian `notary` CLI, same server."
        + (f" Before: notar from {args.before}." if args.before else "")
    )
    print(report(pairs, floors, imports, before_imports, args.top, header))


if __name__ == "__main__":
    main()
