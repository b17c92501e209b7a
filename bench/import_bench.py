"""Issue 16's bench row: `notar import` of a repository with 10,000 targets and 10 delegations (time, memory).

Everything runs on 127.0.0.1 from one temporary directory (stopped before exit), as deployed: the source is
the Go ``notary-server`` with ``notary-signer`` (gRPC mutual TLS), the destination a ``notar server`` (TLS,
SQLite, one worker).

1. **The repository** is built on the Go server with notar's library, not with 10,000 ``notary addhash``:
   a :class:`notar.client.Repository` on the owner's trust directory creates it and signs ``--targets / 10``
   tags into ``targets``; ``Repository.add_signer`` adds ``--delegations - 1`` signers (``targets/signerN``,
   each with its own key, all of them in ``targets/releases``: docker's layout, so ``--delegations``
   delegation roles in all); each signer then signs its share with only its own key
   (``Repository(signing_keys=...)``), which docker's rule puts into ``targets/signerN`` and
   ``targets/releases``. The server holds the snapshot and timestamp keys (the signer makes them).
2. **The anchor**: ``notary list GUN`` by the Go client with a fresh trust directory: trust on first use, a
   full fetch and verification of the same repository.
3. ``notar import GUN --dry-run``: the whole history downloaded and verified, nothing written.
4. ``notar import GUN``: into a fresh ``notar server`` each run (so its peak RSS, ``VmHWM``, is this import's:
   read before and after). The owner's trust directory is copied fresh for each run (its root key signs
   the root version that moves the server keys).
5. After the last import, ``notary list GUN`` against notar with a fresh trust directory (the same listing
   as from the old server: checked), and ``notar export GUN`` onto a fresh Go notary-server + signer each
   run (the replay through the update API), checked with ``notary list`` there.

Every command is a whole process: wall time, user + system CPU and peak RSS of that one process (GNU
``time``), median over ``--runs``. Run: ``.venv/bin/python bench/import_bench.py [--runs 3] [--targets N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import PROC_TIMEOUT, BenchError, ensure_tool, markdown_table, say, scratch_dir

# isort: split
from tests.lab import (
    LabPKI,
    NotaryCLI,
    NotaryServer,
    child_env,
    loopback_get,
    make_lab_pki,
    run_notar_server,
    run_notary_server,
)

from notar.client import MemoryKeys, Repository, TrustCache, TrustServer
from notar.crypto import PrivateKey
from notar.keystore import EnvPassphrases, FileKeyStore
from notar.tuf import FileMeta

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "bench-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "bench-repo-passphrase",
}
GUN = "registry.example.com/bench/import"
WARM_GUN = "registry.example.com/bench/warm-up"
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIME = "/usr/bin/time"  # GNU time (Debian package time)


# --------------------------------------------------------------------------- measuring one process


@dataclass(frozen=True)
class Measured:
    wall: float  # seconds
    cpu: float  # seconds, user + system of the process (and its waited-for children)
    max_rss_kib: int  # peak resident set size of the process
    stdout: str


def run_measured(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Measured:
    """Run one process to completion under GNU time: its wall time, and its CPU and peak RSS as time reports
    them. (Not this process's ``wait4`` rusage: there every child showed at least this process's own
    high-water RSS, 67 MiB for every command, as if carried over from the fork to the exec.)"""
    cwd.mkdir(parents=True, exist_ok=True)
    out_path, err_path, usage_path = cwd / "bench.stdout", cwd / "bench.stderr", cwd / "bench.time"
    timed = [TIME, "-f", "%M %U %S", "-o", str(usage_path), *argv]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.run(
            timed,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=PROC_TIMEOUT,
        )
        wall = time.perf_counter() - start
    stdout = out_path.read_text(errors="replace")
    if proc.returncode != 0:
        stderr = err_path.read_text(errors="replace")
        raise BenchError(
            f"{' '.join(argv)} failed (rc={proc.returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}"
        )
    max_rss, user, system = usage_path.read_text().split()[-3:]
    return Measured(wall, float(user) + float(system), int(max_rss), stdout)


def proc_status_kib(pid: int, field_name: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (VmHWM: peak RSS so far, VmRSS: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise BenchError(f"no {field_name} in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> bool:
    """Set the peak RSS (VmHWM) of our own child *pid* back to its current RSS (``clear_refs`` 5, Linux 4.0+)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a running process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    what: str
    tool: str
    where: str
    runs: list[Measured] = field(default_factory=list)
    server_peak_mib: list[tuple[float, float]] = field(default_factory=list)  # (before, after) per run
    server_cpu: list[float] = field(default_factory=list)  # seconds per run
    note: str = ""

    def cells(self) -> list[str]:
        walls = [m.wall for m in self.runs]
        spread = f"{min(walls):.2f}-{max(walls):.2f}" if len(walls) > 1 else "-"
        server = "-"
        if self.server_peak_mib:
            before = statistics.median(b for b, _ in self.server_peak_mib)
            after = statistics.median(a for _, a in self.server_peak_mib)
            cpu = statistics.median(self.server_cpu)
            server = f"{before:.0f} → {after:.0f} MiB, {cpu:.2f} s CPU"
        return [
            self.what,
            self.tool,
            self.where,
            f"{statistics.median(walls):.2f}",
            spread,
            f"{statistics.median(m.cpu for m in self.runs):.2f}",
            f"{statistics.median(m.max_rss_kib for m in self.runs) / 1024:.0f}",
            server,
            self.note,
        ]


HEADER = [
    "what",
    "tool",
    "server(s)",
    "median wall s",
    "min-max s",
    "CPU s",
    "peak RSS MiB",
    "server peak RSS (VmHWM before → after), server CPU",
    "note",
]


# --------------------------------------------------------------------------- the repository


@dataclass(frozen=True)
class Built:
    tags: int  # distinct signed tags
    per_role: dict[str, int]  # role -> targets in its file
    file_kib: dict[str, int]  # role -> size of its file as served
    publishes: int
    seconds: float


def random_targets(names: Sequence[str]) -> dict[str, FileMeta]:
    return {
        name: FileMeta(400 + secrets.randbelow(4000), {"sha256": secrets.token_bytes(32)}) for name in names
    }


def library_repo(url: str, ca: Path, trust_dir: Path, signing: MemoryKeys | None = None) -> Repository:
    keys = FileKeyStore(trust_dir, EnvPassphrases("notar", environ=PASSPHRASES))
    server = TrustServer(url, verify=str(ca))
    return Repository(GUN, server=server, cache=TrustCache(trust_dir), keys=keys, signing_keys=signing)


def build_repository(url: str, ca: Path, trust_dir: Path, *, targets: int, delegations: int) -> Built:
    """The repository of step 1 (module doc) on *url*, owned by *trust_dir*; checked by reading it back."""
    start = time.perf_counter()
    names = [f"v{i}" for i in range(targets)]
    signers = delegations - 1  # + targets/releases
    top, rest = names[: targets // delegations], names[targets // delegations :]
    shares = [rest[i::signers] for i in range(signers)]
    owner = library_repo(url, ca, trust_dir)
    publishes = 0
    say(f"signing {len(top)} tags into targets (creates {GUN})")
    owner.sign(random_targets(top))
    publishes += 2  # the creation, then the tags
    keys = [PrivateKey.generate() for _ in range(signers)]
    for i, key in enumerate(keys, start=1):
        owner.add_signer(f"signer{i}", [key.public_key])
        publishes += 1
    owner.server.close()
    for i, (key, share) in enumerate(zip(keys, shares, strict=True), start=1):
        say(f"signer{i} signs {len(share)} tags (targets/signer{i} + targets/releases)")
        repo = library_repo(url, ca, trust_dir, MemoryKeys([(key, f"targets/signer{i}")]))
        result = repo.sign(random_targets(share), initialize=False)
        repo.server.close()
        if result.roles != ["targets/releases", f"targets/signer{i}"]:
            raise BenchError(f"signer{i}'s tags went into {result.roles}")
        publishes += 1
    seconds = time.perf_counter() - start
    reader = library_repo(url, ca, trust_dir)
    trusted = reader.refresh()
    reader.server.close()
    tags = len(trusted.signed_tags())
    if tags != targets:
        raise BenchError(f"the repository has {tags} signed tags, not {targets}")
    per_role = {role: len(env.signed.targets) for role, env in trusted.targets.items()}
    if len(per_role) != delegations + 1:
        raise BenchError(f"the repository has the roles {sorted(per_role)}, not {delegations} delegations")
    file_kib = {role: len(env.data) // 1024 for role, env in trusted.targets.items()}
    return Built(tags, per_role, file_kib, publishes, seconds)


# --------------------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Lab:
    work: Path
    pki: LabPKI
    source: NotaryServer
    owner_trust: Path  # holds the root key and the cache of the repository from the source

    def fresh_trust(self, name: str) -> Path:
        """A copy of the owner's trust directory (its keys and cache), as a user moving it would have."""
        path = self.work / name / "trust"
        shutil.copytree(self.owner_trust, path)
        return path

    def notar(self, home_name: str, trust: Path, *args: str) -> Measured:
        home = self.work / home_name
        env = child_env(home=home, **PASSPHRASES)
        argv = [
            PYTHON,
            "-m",
            "notar",
            *args,
            "--trust-dir",
            str(trust),
            "--tls-ca",
            str(self.pki.ca),
            "-o",
            "json",
        ]
        return run_measured(argv, env=env, cwd=home)

    def notary_list(self, url: str, name: str) -> Measured:
        cli = NotaryCLI(url, self.pki.ca, self.work / name / "trust", home=self.work / name / "home")
        return run_measured(cli.argv("list", GUN), env=cli.env(), cwd=cli.home)


def listed_tags(out: str) -> set[str]:
    """The tag names of a ``notary list`` table (after its two header lines)."""
    return {line.split()[0] for line in out.splitlines()[2:] if line.strip()}


def check_report(out: str, *, targets: int, delegations: int, dry_run: bool) -> dict[str, Any]:
    [report] = json.loads(out)
    if not isinstance(report, dict):
        raise BenchError(f"unexpected report {out[:500]}")
    delegated = report.get("delegations")
    if (
        report.get("signedTags") != targets
        or not isinstance(delegated, list)
        or len(delegated) != delegations
    ):
        raise BenchError(
            f"the report does not show {targets} tags in {delegations} delegations: {out[:2000]}"
        )
    if report.get("dryRun") is not dry_run:
        raise BenchError(f"dryRun is not {dry_run}: {out[:2000]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (median)")
    parser.add_argument("--targets", type=int, default=10_000, help="distinct signed tags")
    parser.add_argument("--delegations", type=int, default=10, help="delegation roles (releases + signers)")
    parser.add_argument("--skip-export", action="store_true", help="no `notar export` rows")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.delegations < 2 or args.targets < args.delegations:
        parser.error("--delegations >= 2 (targets/releases and one signer) and --targets >= --delegations")
    n, d = args.targets, args.delegations
    ensure_tool(TIME, "time", required=True)
    rows: list[Row] = []
    facts: list[str] = []
    peaks_reset = True
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(scratch_dir("notar-import-bench-", keep=args.keep))
        pki = make_lab_pki(work / "pki")
        source = stack.enter_context(run_notary_server(pki, work / "go-source", signer=True))
        lab = Lab(work, pki, source, work / "owner" / "trust")
        say(f"building {GUN} on notary-server + notary-signer: {n} tags, {d} delegations")
        built = build_repository(source.url, pki.ca, lab.owner_trust, targets=n, delegations=d)
        roles_text = ", ".join(
            f"{r} {c}" for r, c in sorted(built.per_role.items()) if not r.startswith("targets/signer")
        )
        signer_counts = sorted({c for r, c in built.per_role.items() if r.startswith("targets/signer")})
        facts.append(
            f"Repository: {built.tags} signed tags in {len(built.per_role)} targets files ({roles_text}, "
            f"{d - 1} x targets/signerN with {'/'.join(map(str, signer_counts))}); files as served: "
            + ", ".join(
                f"{r} {k} KiB"
                for r, k in sorted(built.file_kib.items())
                if not r.startswith("targets/signer")
            )
            + f", each signer's ~{max(k for r, k in built.file_kib.items() if r.startswith('targets/signer'))} KiB. "
            f"Built with notar's library in {built.publishes} publishes, {built.seconds:.1f} s."
        )

        say("anchor: notary list (Go client, fresh trust dir) against the source")
        anchor = Row(
            f"`notary list GUN`, fresh trust dir ({n} tags: TOFU, full fetch + verify)",
            "notary (Go)",
            "notary-server + signer",
            note="the anchor: the fetch + verify every import starts with",
        )
        for i in range(args.runs):
            m = lab.notary_list(source.url, f"go-list-{i}")
            if len(listed_tags(m.stdout)) != n:
                raise BenchError(f"notary list shows {len(listed_tags(m.stdout))} tags, not {n}")
            anchor.runs.append(m)
        rows.append(anchor)
        floor = Row("`notar --version` (the Python process floor)", "notar", "-")
        for i in range(args.runs):
            home = work / f"floor-{i}"
            floor.runs.append(
                run_measured([PYTHON, "-m", "notar", "--version"], env=child_env(home=home), cwd=home)
            )
        expected = sorted(lab.notary_list(source.url, "go-list-expected").stdout.splitlines()[2:])

        dry = Row(
            "`notar import GUN --dry-run` (fetch + verify the whole history, write nothing)",
            "notar",
            "notary-server + signer → notar server",
            note="root chain from version 1, timestamp, snapshot, every targets file",
        )
        full = Row(
            "`notar import GUN` (fetch, verify, store, move the server keys, read back)",
            "notar",
            "notary-server + signer → notar server (fresh each run)",
            note="the dry run, + one POST the server verifies again and stores in one transaction, "
            "+ a read-back from notar as a client that cached the source",
        )
        after = Row(
            f"`notary list GUN` against notar after the import, fresh trust dir ({n} tags)",
            "notary (Go)",
            "notar server",
        )
        export = Row(
            "`notar export GUN` onto a fresh Go server (replay through the update API)",
            "notar",
            "notar server → notary-server + signer (fresh each run)",
            note="fetch + verify from notar, root versions replayed, targets files as they are, "
            "timestamp/snapshot brought past notar's, read-back",
        )
        export_check = ""
        for i in range(args.runs):
            with run_notar_server(pki, work / f"notar-{i}") as notar:
                say(
                    f"run {i + 1}/{args.runs}: notar import --dry-run, then notar import into a fresh notar server"
                )
                trust = lab.fresh_trust(f"dry-{i}")
                importing = (
                    "import",
                    GUN,
                    "--from",
                    source.url,
                    "--from-tls-ca",
                    str(pki.ca),
                    "--server",
                    notar.url,
                )
                m = lab.notar(f"dry-{i}", trust, *importing, "--dry-run")
                check_report(m.stdout, targets=n, delegations=d, dry_run=True)
                dry.runs.append(m)

                # the server's first key (any GUN) derives its encryption key with scrypt (32 MiB, once per
                # process): made before, so that the peak below is the import's, not scrypt's
                status, _ = loopback_get(f"{notar.url}/v2/{WARM_GUN}/_trust/tuf/timestamp.key", ca=pki.ca)
                if status != 200:
                    raise BenchError(f"notar server answered {status} for a timestamp key")
                peaks_reset = reset_peak_rss(notar.pid) and peaks_reset
                trust = lab.fresh_trust(f"import-{i}")
                hwm0, cpu0 = proc_status_kib(notar.pid, "VmHWM"), proc_cpu_seconds(notar.pid)
                m = lab.notar(f"import-{i}", trust, *importing)
                hwm1, cpu1 = proc_status_kib(notar.pid, "VmHWM"), proc_cpu_seconds(notar.pid)
                report = check_report(m.stdout, targets=n, delegations=d, dry_run=False)
                full.runs.append(m)
                full.server_peak_mib.append((hwm0 / 1024, hwm1 / 1024))
                full.server_cpu.append(cpu1 - cpu0)
                if i == 0:
                    facts.append(
                        f"Import report (run 1): mode {report.get('mode')}, root versions {report.get('rootVersions')} "
                        f"-> {report.get('newRootVersion')}, rotated {sorted(report.get('rotatedKeys') or {})}, "
                        f"stored {report.get('stored')}."
                    )

                m = lab.notary_list(notar.url, f"notar-list-{i}")
                if sorted(m.stdout.splitlines()[2:]) != expected:
                    raise BenchError("notary list against notar differs from notary list against the source")
                after.runs.append(m)

                if not args.skip_export:
                    with run_notary_server(pki, work / f"go-dest-{i}", signer=True) as dest:
                        say(f"run {i + 1}/{args.runs}: notar export onto a fresh notary-server + signer")
                        try:
                            m = lab.notar(
                                f"export-{i}",
                                trust,
                                "export",
                                GUN,
                                "--to",
                                dest.url,
                                "--to-tls-ca",
                                str(pki.ca),
                                "--server",
                                notar.url,
                            )
                        except BenchError as e:
                            export_check = f"notar export failed: {e}"
                            say(export_check)
                            args.skip_export = True
                        else:
                            exported = check_report(m.stdout, targets=n, delegations=d, dry_run=False)
                            export.runs.append(m)
                            if i == 0:
                                facts.append(
                                    f"Export report (run 1): mode {exported.get('mode')}, new root version "
                                    f"{exported.get('newRootVersion')}, skipped {exported.get('skipped')}, "
                                    f"stored {exported.get('stored')}."
                                )
                            listing = lab.notary_list(dest.url, f"dest-list-{i}")
                            if sorted(listing.stdout.splitlines()[2:]) != expected:
                                raise BenchError(
                                    "notary list against the export destination differs from the source's"
                                )
                            export_check = "`notary list` on each destination (fresh trust dir) shows the source's listing"
        rows += [dry, full, after]
        if export.runs:
            rows.append(export)
        rows.append(floor)
    print(f"### `notar import`: {n} targets, {d} delegations (median of {args.runs})\n")
    print(markdown_table(HEADER, [r.cells() for r in rows], right={3, 4, 5, 6}))
    print()
    for fact in facts:
        print(f"- {fact}")
    print("- `notary list` against notar after each import shows exactly the source's listing (checked).")
    if export_check:
        print(f"- Export: {export_check}")
    how = (
        "reset to its current RSS (`/proc/PID/clear_refs` 5) after the server made its first key (scrypt's 32 "
        "MiB, once per process, for any GUN)"
        if peaks_reset
        else "not reset (clear_refs refused): it includes the server's first key, scrypt's 32 MiB"
    )
    print(
        f"- Client peak RSS: the process's own (GNU `time` `%M`). Server: `VmHWM` of a fresh `notar server` "
        f"(one worker, SQLite), {how}, read before and after the import; server CPU from `/proc/PID/stat`."
    )
    print(
        f"- Machine: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; load average (1 min) "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other processes disturb the times)."
    )


if __name__ == "__main__":
    main()
