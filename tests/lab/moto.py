"""moto in server mode (``python -m moto.server``): real AWS endpoints (Secrets Manager, IAM) on loopback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.lab.process import LOOPBACK, Process, child_env, free_port, loopback_get


@dataclass(frozen=True)
class MotoServer:
    url: str  # http://127.0.0.1:PORT: the AWS_ENDPOINT_URL for every service
    process: Process


@contextlib.contextmanager
def run_moto(workdir: Path, **env: str) -> Iterator[MotoServer]:
    """Start moto's server on a free loopback port (*env*: extra variables, e.g. moto's own knobs) and
    stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    proc = Process(
        "moto-server",
        argv,
        log=workdir / "moto.log",
        port=port,
        env=child_env(home=workdir, **env),
        cwd=workdir,
    )
    with proc:
        url = f"http://{LOOPBACK}:{port}"
        status, _ = loopback_get(f"{url}/moto-api/")
        if status != 200:
            raise proc.failure(f"moto answered {status}")
        yield MotoServer(url, proc)
