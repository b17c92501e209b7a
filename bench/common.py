"""What the benchmark scripts share: progress lines, timing, statistics, Markdown tables, tools from apt,
work directories, and the lab's peers (tests/lab) started together.

Import it before anything from ``tests``: it puts the repository root on ``sys.path`` (a script run as
``python bench/x.py`` has only bench/ there). In a script, keep it in the first import block, apart from the
others, so that import sorting leaves it there::

    import sys

    import common  # puts the repository root on sys.path for tests.*
    # isort: split
    from tests.registry.images import make_image

    from notar.client import Repository

The lab itself (``start_peers``, and ``tests.lab`` for anything else) is imported only by the scripts that
start processes: it needs psycopg, cryptography and pytest.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tests.lab import LabPKI, MotoServer, NotarServer, NotaryServer, Registry

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # for tests.lab and the tests' helpers (images, TUF builders, ...)

PROC_TIMEOUT = 600.0  # seconds one measured process may take
T = TypeVar("T")


class BenchError(RuntimeError):
    """A step of a benchmark failed (a process exited non-zero, a check did not hold)."""


def say(text: str) -> None:
    """A progress line on stderr, prefixed with the script's name (stdout is for the table)."""
    print(f"{Path(sys.argv[0]).stem}: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + sys (the child's rusage, or this process for library calls)


def children_cpu_seconds() -> float:
    """user + system CPU seconds of this process's waited-for children so far (rusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    capture_stdout: bool = False,
) -> tuple[Sample, str, str]:
    """Run one process to completion; (wall + user/sys CPU of it, stdout, stderr). Fails on rc != 0."""
    before = children_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=PROC_TIMEOUT,
        check=False,
    )
    wall = time.perf_counter() - start
    cpu = children_cpu_seconds() - before
    stdout = proc.stdout.decode(errors="replace") if capture_stdout else ""
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} failed (rc={proc.returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}"
        )
    return Sample(wall, cpu), stdout, stderr


def time_call(fn: Callable[[], T]) -> tuple[Sample, T]:
    """Wall and CPU time (this process) of one call of *fn*, and what it returned."""
    cpu0, start = time.process_time(), time.perf_counter()
    value = fn()
    return Sample(time.perf_counter() - start, time.process_time() - cpu0), value


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of *repeat* calls of *fn*, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def repeat_ms(fn: Callable[[], object], n: int, *, warmup: int = 1) -> list[float]:
    """Wall times of *n* calls of *fn* in milliseconds, after *warmup* untimed calls (caches, connections)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def percentile(values: Sequence[float], pct: int) -> float:
    """The *pct*-th percentile (1..99) of *values*, interpolated (``statistics.quantiles``); one value: itself."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100)[pct - 1]


# --------------------------------------------------------------------------- tables


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, right: Container[int] = ()
) -> str:
    """A Markdown table; the columns whose index is in *right* are right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the machine


def ensure_tool(binary: str, package: str, *, required: bool) -> str | None:
    """Path of *binary*; installs the Debian *package* with apt-get when missing and we are root."""
    found = shutil.which(binary)
    if found or os.geteuid() != 0:
        if not found and required:
            sys.exit(
                f"{binary} is not installed: run scripts/install-peers.sh (or apt-get install {package})"
            )
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    say(f"installing {package}")
    if subprocess.run(install, env=env, check=False, timeout=900, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, timeout=900, capture_output=True)
        subprocess.run(install, env=env, check=False, timeout=900, capture_output=True)
    found = shutil.which(binary)
    if not found and required:
        sys.exit(f"{binary} still missing after apt-get install {package}")
    return found


@contextlib.contextmanager
def scratch_dir(prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """A fresh temporary directory, deleted on exit unless *keep* (then its path is said on stderr)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            say(f"work directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- peers


def _started(peer: T | None, name: str) -> T:
    if peer is None:
        raise BenchError(f"{name} was not started (start_peers(..., {name}=True))")
    return peer


@dataclass(frozen=True)
class Peers:
    """The lab CA and the peers :func:`start_peers` was asked for (using another one is an error)."""

    pki: LabPKI
    _moto: MotoServer | None = None
    _registry: Registry | None = None
    _notar: NotarServer | None = None
    _notary: NotaryServer | None = None

    @property
    def moto(self) -> MotoServer:
        return _started(self._moto, "moto")

    @property
    def registry(self) -> Registry:
        return _started(self._registry, "registry")

    @property
    def notar(self) -> NotarServer:
        return _started(self._notar, "notar")

    @property
    def notary(self) -> NotaryServer:
        return _started(self._notary, "notary")


@contextlib.contextmanager
def start_peers(
    work: Path, *, moto: bool = False, registry: bool = False, notar: bool = False, notary: bool = False
) -> Iterator[Peers]:
    """A lab CA in ``work/pki`` and the chosen peers on 127.0.0.1, started in this order: moto (Secrets
    Manager), ``docker-registry`` (plain HTTP), ``notar server`` (TLS, SQLite), the Go ``notary-server``
    (TLS, memory storage); each in ``work/<its name>``, all stopped on exit."""
    from tests import lab  # here, not at the top: psycopg, cryptography and pytest, for the peers only

    pki = lab.make_lab_pki(work / "pki")
    with contextlib.ExitStack() as stack:
        yield Peers(
            pki,
            _moto=stack.enter_context(lab.run_moto(work / "moto")) if moto else None,
            _registry=stack.enter_context(lab.run_registry(work / "registry")) if registry else None,
            _notar=stack.enter_context(lab.run_notar_server(pki, work / "notar-server")) if notar else None,
            _notary=stack.enter_context(lab.run_notary_server(pki, work / "notary-server"))
            if notary
            else None,
        )
