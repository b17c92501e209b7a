"""Parallel release jobs: N signing processes at once, each a different tag of one repository.

Rows (each on a fresh repository; every process has its own copy of the signer's trust directory, as N CI
jobs would):

* ``notar sign`` against ``notar server`` (TLS, SQLite default), the docker flow: signer ``ci`` added with
  ``notar signer add``, tags signed into targets/releases and targets/ci;
* ``notar sign`` against ``notar server``, a repository without signers: tags signed into ``targets``;
* ``notar sign`` against the Go ``notary-server`` (TLS, memory storage, as tests/lab runs it), docker flow;
* the anchor: the Go ``notary`` CLI, ``notary addhash GUN TAG SIZE --sha256 HEX -p`` (into ``targets``) against
  the Go notary-server, on a repository made with ``notary init -p``.

For each row: how many of the N processes succeeded, the wall time from starting the first to the end of the
last, the publish attempts of all of them (notar's retries after a lost race are counted from its log lines;
the Go CLI does not retry: one attempt each), and how many tags a fresh client then reads with the digest of
their own image (``notar inspect`` / ``notary list``). Images are pushed to the Debian ``docker-registry``
first (`notar sign` reads the digest from the registry).

Everything runs on 127.0.0.1 from one temporary directory and is stopped before the script exits; each row is
bounded by ``--timeout`` (processes still running then are killed and counted as failed).

Run: ``.venv/bin/python bench/parallel_bench.py [--jobs 20] [--skip-go]`` (about a minute). Needs the test extras
(it reuses tests/lab and tests/client/parallel.py) and, unless ``--skip-go``, the Go
``notary`` and ``notary-server`` (scripts/install-peers.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import markdown_table, say, scratch_dir, start_peers

# isort: split
from tests.client.parallel import (
    Job,
    Outcome,
    Pushed,
    notar_env,
    notar_sign_job,
    notary_job,
    push_images,
    run_at_once,
    trust_dir_copy,
)
from tests.lab import LabPKI, NotaryCLI, Registry


@dataclass(frozen=True)
class Server:
    """A running trust server: URL, CA, and a name for the table."""

    name: str
    url: str
    ca: Path


@dataclass(frozen=True)
class Row:
    """One measured row of the table."""

    client: str
    server: str
    roles: str
    jobs: int
    outcomes: list[Outcome]
    wall: float
    readable: int  # tags a fresh client reads with the right digest afterwards

    @property
    def successes(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def attempts(self) -> int:
        return sum(o.attempts for o in self.outcomes)


def notar_cmd(
    home: Path, server: Server, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """One `notar` command as a process (set-up and reading back); fails loudly."""
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=notar_env(home, server.url, server.ca),
        cwd=home,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"parallel_bench: notar {' '.join(args)} failed:\n{result.stderr}")
    return result


def readable_with_notar(server: Server, image: str, pushed: dict[str, Pushed], home: Path) -> int:
    """Tags of *pushed* that `notar inspect` (fresh trust dir) shows with their own image's digest."""
    data = json.loads(notar_cmd(home, server, "inspect", image).stdout)
    signed = {t["SignedTag"]: t["Digest"] for t in data[0]["SignedTags"]}
    return sum(signed.get(tag) == p.hex for tag, p in pushed.items())


def readable_with_notary(cli: NotaryCLI, gun: str, pushed: dict[str, Pushed]) -> int:
    """Tags of *pushed* that `notary list` (fresh trust dir) shows with their own image's digest."""
    listing = cli.run("list", gun).stdout
    rows = {line.split()[0]: line.split()[1] for line in listing.splitlines()[2:] if line.strip()}
    return sum(rows.get(tag) == p.hex for tag, p in pushed.items())


def notar_row(
    server: Server, registry: Registry, work: Path, *, jobs: int, signer: bool, timeout: float
) -> Row:
    """N `notar sign` processes (own trust dirs) on one fresh repository of *server*."""
    repo_path = f"bench/parallel-{uuid.uuid4().hex[:8]}"
    image = f"{registry.host}/{repo_path}"
    tags = [f"1.{i}" for i in range(jobs)]
    pushed = push_images(registry.url, repo_path, [*tags, "base"], label=f"bench {image}")
    admin = work / "admin"
    if signer:
        notar_cmd(admin, server, "key", "generate", "ci", "--dir", str(admin))
        notar_cmd(admin, server, "signer", "add", "ci", image, "--key", str(admin / "ci.pub"))
    else:
        notar_cmd(admin, server, "sign", f"{image}:base")  # creates the repository, no signers
    batch: list[Job] = []
    for i, tag in enumerate(tags):
        home = trust_dir_copy(admin, work / f"job-{i:03d}")
        env = notar_env(home, server.url, server.ca)
        batch.append(notar_sign_job(tag, home, env, f"{image}:{tag}", count_attempts=True))
    outcomes, wall = run_at_once(batch, work / "runs", timeout=timeout)
    readable = readable_with_notar(server, image, {t: pushed[t] for t in tags}, work / "reader")
    roles = "targets/releases + targets/ci" if signer else "targets"
    return Row("notar sign", server.name, roles, jobs, outcomes, wall, readable)


def notary_row(
    server: Server, pki: LabPKI, registry: Registry, work: Path, *, jobs: int, timeout: float
) -> Row:
    """The anchor: N Go `notary addhash -p` processes (own trust dirs) on one fresh repository."""
    gun = f"{registry.host}/bench/go-parallel-{uuid.uuid4().hex[:8]}"
    tags = [f"1.{i}" for i in range(jobs)]
    pushed = push_images(registry.url, gun.split("/", 1)[1], tags, label=f"bench {gun}")
    admin = NotaryCLI(server.url, pki.ca, work / "admin" / "trust", home=work / "admin" / "home")
    admin.run("init", gun, "-p")
    batch: list[Job] = []
    for i, tag in enumerate(tags):
        trust = work / f"job-{i:03d}" / "trust"
        shutil.copytree(admin.trust_dir, trust)
        cli = NotaryCLI(server.url, pki.ca, trust, home=work / f"job-{i:03d}" / "home")
        p = pushed[tag]
        batch.append(notary_job(tag, cli, "addhash", gun, tag, str(p.size), "--sha256", p.hex, "-p"))
    outcomes, wall = run_at_once(batch, work / "runs", timeout=timeout)
    reader = NotaryCLI(server.url, pki.ca, work / "reader" / "trust", home=work / "reader" / "home")
    readable = readable_with_notary(reader, gun, pushed)
    return Row("notary addhash -p (Go)", server.name, "targets", jobs, outcomes, wall, readable)


def report(rows: Sequence[Row]) -> str:
    header = [
        "client",
        "trust server",
        "signs into",
        "successes",
        "wall time",
        "publish attempts (retries)",
        "tags read back",
    ]
    cells = [
        (
            r.client,
            r.server,
            r.roles,
            f"{r.successes}/{r.jobs}",
            f"{r.wall:.1f} s",
            f"{r.attempts} ({r.attempts - r.jobs})",
            f"{r.readable}/{r.jobs}",
        )
        for r in rows
    ]
    lines = [markdown_table(header, cells, right={3, 4, 5, 6})]
    notes = ["", "Failures (last line of stderr, by count):"]
    for r in rows:
        errors: dict[str, int] = {}
        for o in r.outcomes:
            if not o.ok:
                errors[o.last_line()] = errors.get(o.last_line(), 0) + 1
        for line, count in sorted(errors.items(), key=lambda kv: -kv[1]):
            notes.append(f"- {r.client} / {r.server}: {count} x `{line[:200]}`")
    if len(notes) == 2:
        notes.append("- none")
    return "\n".join(lines + notes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20, help="parallel processes per row (default 20)")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds per row before processes are killed"
    )
    parser.add_argument("--skip-go", action="store_true", help="no Go notary-server rows")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, process output)")
    args = parser.parse_args()
    if not 1 <= args.jobs <= 100 or not 10 <= args.timeout <= 900:
        parser.error("--jobs must be 1..100 and --timeout 10..900 s")
    if not args.skip_go and (shutil.which("notary") is None or shutil.which("notary-server") is None):
        parser.error("notary / notary-server not found: run scripts/install-peers.sh, or use --skip-go")

    rows: list[Row] = []
    with (
        scratch_dir("notar-parallel-bench-", keep=args.keep) as workdir,
        start_peers(workdir, registry=True, notar=True, notary=not args.skip_go) as peers,
    ):
        pki, registry = peers.pki, peers.registry
        servers = [Server("notar server (SQLite)", peers.notar.url, peers.notar.ca)]
        if not args.skip_go:
            servers.append(Server("notary-server (Go, memory)", peers.notary.url, peers.notary.ca))
        steps: list[tuple[str, Callable[[Path], Row]]] = [
            (
                "notar-signer",
                lambda w: notar_row(
                    servers[0], registry, w, jobs=args.jobs, signer=True, timeout=args.timeout
                ),
            ),
            (
                "notar-targets",
                lambda w: notar_row(
                    servers[0], registry, w, jobs=args.jobs, signer=False, timeout=args.timeout
                ),
            ),
        ]
        if not args.skip_go:
            steps += [
                (
                    "notar-go-server",
                    lambda w: notar_row(
                        servers[1], registry, w, jobs=args.jobs, signer=True, timeout=args.timeout
                    ),
                ),
                (
                    "notary-go",
                    lambda w: notary_row(servers[1], pki, registry, w, jobs=args.jobs, timeout=args.timeout),
                ),
            ]
        for name, step in steps:
            say(f"{name} ...")
            row = step(workdir / name)
            say(f"{name}: {row.successes}/{row.jobs} in {row.wall:.1f} s")
            rows.append(row)
    print(f"{args.jobs} processes at once, each signing a different tag of one repository (loopback, TLS).\n")
    print(report(rows))
    load = os.getloadavg()[0]
    print(
        f"\nMachine: {os.cpu_count()} cores, load average {load:.1f} at the end (other processes make wall times noisy)."
    )


if __name__ == "__main__":
    main()
