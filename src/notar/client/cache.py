"""Caches of verified metadata: the protocol the updater needs, on disk and in memory.

:class:`TrustCache` is the local trust cache in the layout notary and docker use
(``tuf/<gun>/metadata/<role>.json``): only the latest verified bytes of each role are kept, writes are
atomic (temp file + ``os.replace``) and each repository has a lock file so that two notar processes do not
interleave an update. :class:`MemoryCache` lives as long as one object (the UI's views: nothing is trusted
on first use across requests). Both satisfy :class:`MetadataCache`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from notar.client.errors import ClientError
from notar.tuf import roles

__all__ = ["MemoryCache", "MetadataCache", "TrustCache"]


class MetadataCache(Protocol):
    """What :class:`notar.client.Updater` needs from a cache of verified metadata."""

    def load(self, gun: str, role: str) -> bytes | None:
        """The last verified bytes of *role*, or None."""
        ...

    def store(self, gun: str, files: Mapping[str, bytes]) -> None:
        """Keep these verified bytes (role -> bytes) as the latest."""
        ...

    def lock(self, gun: str) -> AbstractContextManager[None]:
        """Exclusive access to *gun*'s entries for one update."""
        ...


def _mkdir(directory: Path) -> None:
    """``mkdir -p`` (mode 0700); a path through a file or an unwritable directory is a one-line error."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        blocker = next(
            (p for p in reversed((directory, *directory.parents)) if p.exists() and not p.is_dir()), None
        )
        if blocker is not None:
            raise ClientError(f"cannot use the trust cache: {blocker}: not a directory") from None
        raise ClientError(
            f"cannot use the trust cache: {e.filename or directory}: {e.strerror or e}"
        ) from None


class TrustCache:
    """Cached metadata below ``<trust_dir>/tuf``."""

    def __init__(self, trust_dir: Path) -> None:
        self.trust_dir = Path(trust_dir)

    def _dir(self, gun: str) -> Path:
        parts = gun.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in gun or "\0" in gun:
            raise ClientError(f"invalid repository name {gun!r}")
        return self.trust_dir.joinpath("tuf", *parts, "metadata")

    def _path(self, gun: str, role: str) -> Path:
        if not roles.is_valid_role(role):
            raise ClientError(f"invalid role {role!r}")
        return self._dir(gun).joinpath(*role.split("/")).with_suffix(".json")

    def load(self, gun: str, role: str) -> bytes | None:
        try:
            return self._path(gun, role).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ClientError(f"cannot read cached {role} of {gun}: {e.strerror}") from e

    def store(self, gun: str, files: Mapping[str, bytes]) -> None:
        """Write several roles, each atomically."""
        import tempfile  # here, not at the top: a read that finds its files cached writes nothing

        for role, data in files.items():
            path = self._path(gun, role)
            _mkdir(path.parent)
            try:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            except OSError as e:
                raise ClientError(f"cannot write the trust cache: {path.parent}: {e.strerror or e}") from None
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException as e:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                if isinstance(e, OSError):
                    raise ClientError(f"cannot write the trust cache: {path}: {e.strerror or e}") from None
                raise

    def remove(self, gun: str, role: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(gun, role).unlink()

    def clear(self, gun: str) -> None:
        """Forget everything cached for *gun* (after a remote delete)."""
        directory = self._dir(gun)
        if directory.is_dir():
            for path in sorted(directory.rglob("*.json"), reverse=True):
                path.unlink()

    def forget_if_empty(self, gun: str) -> None:
        """Remove *gun*'s directory (its lock file) when nothing is cached for it, and empty parents."""
        directory = self._dir(gun).parent
        root = self.trust_dir / "tuf"
        if not directory.is_dir() or any(directory.rglob("*.json")):
            return
        with contextlib.suppress(OSError):
            (directory / ".lock").unlink(missing_ok=True)
            for path in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
                path.rmdir()
            while directory != root and directory.is_relative_to(root):
                directory.rmdir()  # stops at the first directory that is not empty (OSError)
                directory = directory.parent

    @contextlib.contextmanager
    def lock(self, gun: str) -> Iterator[None]:
        """An exclusive per-repository lock (held across an update or publish)."""
        directory = self._dir(gun).parent
        _mkdir(directory)
        try:
            f = open(directory / ".lock", "a+b")  # noqa: SIM115 - closed below
        except OSError as e:
            raise ClientError(
                f"cannot use the trust cache: {directory / '.lock'}: {e.strerror or e}"
            ) from None
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class MemoryCache:
    """Verified metadata kept in memory for as long as this object lives (thread-safe)."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def load(self, gun: str, role: str) -> bytes | None:
        return self._files.get((gun, role))

    def store(self, gun: str, files: Mapping[str, bytes]) -> None:
        for role, data in files.items():
            self._files[(gun, role)] = data

    @contextlib.contextmanager
    def lock(self, gun: str) -> Iterator[None]:
        with self._lock:
            yield
