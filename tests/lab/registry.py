"""The distribution registry from Debian (``docker-registry``): plain HTTP, filesystem storage."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.lab.process import LOG_LEVEL, LOOPBACK, Process, child_env, free_port


@dataclass(frozen=True)
class Registry:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT, the registry part of image references / GUNs
    pid: int
    data_dir: Path  # filesystem storage root
    log: Path
    config: Path
    process: Process


@contextlib.contextmanager
def run_registry(workdir: Path, *, log_level: str = LOG_LEVEL) -> Iterator[Registry]:
    """Start ``docker-registry`` (distribution v2) on plain HTTP with filesystem storage."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    port = free_port()
    host = f"{LOOPBACK}:{port}"
    # JSON is valid YAML, so the config needs no YAML quoting rules.
    config = {
        "version": "0.1",
        "log": {"level": log_level, "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(data)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {
            "addr": host,
            "secret": "notar-tests-only",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }
    conf = workdir / "config.yml"
    conf.write_text(json.dumps(config, indent=2))
    proc = Process(
        "docker-registry",
        ["docker-registry", "serve", str(conf)],
        log=workdir / "registry.log",
        port=port,
        env=child_env(home=workdir),
        cwd=workdir,
    )
    with proc:
        yield Registry(
            url=f"http://{host}",
            host=host,
            pid=proc.pid,
            data_dir=data,
            log=proc.log,
            config=conf,
            process=proc,
        )
