"""Many signing processes at once on one repository: real `notar sign` / Go `notary addhash -p` processes.

Shared by tests/client/test_parallel_sign.py and bench/parallel_bench.py. Everything runs on 127.0.0.1;
every process started here is waited for, and killed (by its own PID, with its process group) if it
outlives the deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from notar.registry import RegistryClient
from tests.lab import NotaryCLI, child_env, require_loopback
from tests.registry.images import make_image

__all__ = [
    "ATTEMPT_LOGGING",
    "PASSPHRASES",
    "Job",
    "Outcome",
    "Pushed",
    "notar_env",
    "notary_job",
    "notar_sign_job",
    "push_images",
    "run_at_once",
    "trust_dir_copy",
]

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "test-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "test-repo-passphrase",
}

#: ``python -c`` program: the notar CLI (notar.cli.main, as ``python -m notar`` runs it) with the client's
#: INFO log lines on stderr, so that the retries of a publish can be counted (``notar-log: ...`` lines).
ATTEMPT_LOGGING = (
    "import logging, sys\n"
    "handler = logging.StreamHandler(sys.stderr)\n"
    "handler.setFormatter(logging.Formatter('notar-log: %(message)s'))\n"
    "log = logging.getLogger('notar.client')\n"
    "log.addHandler(handler)\n"
    "log.setLevel(logging.INFO)\n"
    "from notar.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
_RETRY_LINE = re.compile(r"^notar-log: .*version conflict", re.MULTILINE)


@dataclass(frozen=True)
class Pushed:
    """One image in the registry: the tag it was pushed under, its manifest digest and size."""

    tag: str
    digest: str
    size: int

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


def push_images(registry_url: str, repo_path: str, tags: Sequence[str], *, label: str) -> dict[str, Pushed]:
    """Push one small distinct image per tag to *repo_path* with notar's registry client."""
    out: dict[str, Pushed] = {}
    with RegistryClient(require_loopback(registry_url)) as registry:
        for tag in tags:
            image = make_image(f"{label} {tag}\n")
            for blob in image.blobs:
                registry.push_blob(repo_path, blob.digest, blob.data, blob.size)
            registry.put_manifest(repo_path, tag, image.manifest.data, image.manifest.media_type)
            out[tag] = Pushed(tag, image.manifest.digest, image.manifest.size)
    return out


def notar_env(home: Path, server: str, ca: Path) -> dict[str, str]:
    """The environment of a `notar` process whose trust directory is ``home/.docker/trust``."""
    return child_env(
        home=home,
        DOCKER_CONFIG=str(home / ".docker"),
        DOCKER_CONTENT_TRUST_SERVER=require_loopback(server),
        NOTAR_TLS_CA=str(ca),
        **PASSPHRASES,
    )


def trust_dir_copy(source_home: Path, home: Path) -> Path:
    """A copy of *source_home*'s docker config (keys and trust cache): one CI job's own trust directory."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source_home / ".docker", home / ".docker", dirs_exist_ok=True)
    return home


@dataclass(frozen=True)
class Job:
    """One process to start: what it is called in reports, its argv, environment and working directory."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def notar_sign_job(
    label: str, home: Path, env: Mapping[str, str], image: str, *, count_attempts: bool
) -> Job:
    """``python -m notar sign IMAGE`` (or the same CLI with its retry log lines, to count attempts)."""
    prefix = ["-c", ATTEMPT_LOGGING] if count_attempts else ["-m", "notar"]
    return Job(label, [sys.executable, *prefix, "sign", image], dict(env), home)


def notary_job(label: str, cli: NotaryCLI, *args: str) -> Job:
    """The Go ``notary`` CLI with *cli*'s trust directory, server, CA and passphrases."""
    return Job(label, cli.argv(*args), cli.env(), cli.home)


@dataclass(frozen=True)
class Outcome:
    """How one process ended."""

    label: str
    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def attempts(self) -> int:
        """Publish attempts, from the retry log lines of :data:`ATTEMPT_LOGGING` (1 without them)."""
        return 1 + len(_RETRY_LINE.findall(self.stderr))

    def last_line(self) -> str:
        """The last line of stderr (of stdout if stderr is empty: the Go CLI prints errors there)."""
        lines = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return lines[-1] if lines else f"(rc={self.returncode}, no output)"


def run_at_once(jobs: Sequence[Job], workdir: Path, *, timeout: float) -> tuple[list[Outcome], float]:
    """Start every job at once, wait for all of them (at most *timeout* s in total): outcomes, wall time."""
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[tuple[Job, subprocess.Popen[bytes], Path, Path, float]] = []
    begin = time.monotonic()
    try:
        for i, job in enumerate(jobs):
            out, err = workdir / f"{i:03d}.out", workdir / f"{i:03d}.err"
            with out.open("wb") as o, err.open("wb") as e:
                proc = subprocess.Popen(
                    job.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=o,
                    stderr=e,
                    env=job.env,
                    cwd=job.cwd,
                    start_new_session=True,
                )
            started.append((job, proc, out, err, time.monotonic()))
        outcomes: list[Outcome] = []
        ends: list[float] = []
        for job, proc, out, err, t0 in started:
            try:
                rc: int | None = proc.wait(max(0.1, begin + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(proc)
                rc = None
            end = time.monotonic()
            ends.append(end)
            outcomes.append(
                Outcome(
                    job.label,
                    rc,
                    out.read_text(errors="replace"),
                    err.read_text(errors="replace"),
                    end - t0,
                )
            )
        return outcomes, (max(ends) if ends else begin) - begin
    finally:
        for _job, proc, *_ in started:
            if proc.poll() is None:
                _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a child that is not reaped yet (so the ID is still ours), then reap."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
