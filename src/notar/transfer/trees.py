"""Files of a directory or a tar archive, read by relative POSIX path: what an image source stands on.

:class:`DirTree` reads a directory, :class:`TarTree` the members of a tar file (never extracted; gzip, bzip2
and xz are opened transparently). Every name is checked first (:func:`clean_name`): absolute paths, ``..``
escapes, and links that lead out of the layout or archive are refused as
:class:`~notar.transfer.errors.UnsafeArchiveError`, checked for every member when an archive is opened, used
or not. Read errors of a damaged archive become :class:`~notar.transfer.errors.LayoutError` naming the file.
"""

from __future__ import annotations

import lzma
import posixpath
import stat
import tarfile
import zlib
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self, cast

from notar.transfer.errors import LayoutError, UnsafeArchiveError

__all__ = ["READ_ERRORS", "Closing", "DirTree", "TarTree", "Tree", "clean_name", "one_line"]

_MAX_LINK_HOPS: Final = 16
# What reading a (compressed) tar member or a file can raise: I/O errors, a truncated or corrupted gzip,
# bzip2 or xz stream (EOFError, zlib.error, gzip.BadGzipFile -- an OSError --, lzma.LZMAError), a
# damaged tar header.
READ_ERRORS: Final = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (tarfile's can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


class Closing(ABC):
    """``with`` for what has a :meth:`close` (the streams and sources of this package): ``__enter__`` gives
    the object itself, ``__exit__`` closes it."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def clean_name(name: str, where: str) -> str:
    """A member name as a normalised relative POSIX path; absolute paths and ``..`` escapes refused."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"{where}: empty or NUL-containing path {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(f"{where}: absolute or non-POSIX path {name!r} is not allowed")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise UnsafeArchiveError(f"{where}: path {name!r} escapes the archive")
    return normal


class Tree(ABC):
    """Read access to the files of a directory or a tar archive, by relative POSIX path."""

    name: str

    @abstractmethod
    def size(self, path: str) -> int | None:
        """The size of regular file ``path``, or None if there is none."""

    @abstractmethod
    def open(self, path: str) -> IO[bytes]: ...

    def read(self, path: str, limit: int) -> bytes:
        size = self.size(path)
        if size is None:
            raise LayoutError(f"{self.name}: {path} is missing")
        if size > limit:
            raise LayoutError(f"{self.name}: {path} is {size} bytes, more than the limit of {limit}")
        with self.open(path) as f:
            return f.read(limit + 1)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class DirTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._real = root.resolve()
        self.name = str(root)

    def _path(self, path: str) -> Path:
        full = self.root / clean_name(path, self.name)
        real = full.resolve()
        if not real.is_relative_to(self._real):
            raise UnsafeArchiveError(f"{self.name}: {path} is a link that leads out of the layout")
        return full

    def size(self, path: str) -> int | None:
        try:
            st = self._path(path).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LayoutError(f"{self.name}: cannot read {path}: {e}") from e
        if not stat.S_ISREG(st.st_mode):
            raise LayoutError(f"{self.name}: {path} is not a regular file")
        return st.st_size

    def open(self, path: str) -> IO[bytes]:
        try:
            return self._path(path).open("rb")
        except OSError as e:
            raise LayoutError(f"{self.name}: cannot read {path}: {e}") from e


class _GuardedStream(Closing):
    """A tar member's stream whose read errors (truncated or corrupted compression) become
    :class:`LayoutError` naming the archive and member."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self._raw = raw
        self._where = where

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._raw.read(-1 if size is None else size)
        except READ_ERRORS as e:
            raise LayoutError(f"{self._where}: cannot be read (damaged archive?): {one_line(e)}") from e

    def close(self) -> None:
        self._raw.close()


class TarTree(Tree):
    """A tar file's members (never extracted). Every member name is checked, links resolved inside."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except tarfile.ReadError as e:
            detail = "" if "could not be opened successfully" in str(e) else f": {one_line(e)}"
            raise LayoutError(
                f"{path}: not an OCI image layout directory, OCI layout tar or docker save archive "
                f"(not a readable tar file{detail})"
            ) from e
        except READ_ERRORS as e:
            raise LayoutError(f"{path}: not a readable tar archive: {one_line(e)}") from e
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for member in self._tar.getmembers():
                name = clean_name(member.name, self.name)
                if member.issym():  # checked now, used or not: an archive with escaping links is hostile
                    clean_name(
                        posixpath.join(posixpath.dirname(name), member.linkname), f"{self.name}: link {name}"
                    )
                elif member.islnk():
                    clean_name(member.linkname, f"{self.name}: link {name}")
                self._members[name] = member
        except READ_ERRORS as e:
            self._tar.close()
            raise LayoutError(f"{path}: corrupted or truncated tar archive: {one_line(e)}") from e
        except BaseException:
            self._tar.close()
            raise

    def _resolve(self, path: str) -> tarfile.TarInfo | None:
        name = clean_name(path, self.name)
        for _ in range(_MAX_LINK_HOPS):
            member = self._members.get(name)
            if member is None:
                return None
            if member.issym():
                name = clean_name(posixpath.join(posixpath.dirname(name), member.linkname), self.name)
            elif member.islnk():
                name = clean_name(member.linkname, self.name)
            elif member.isfile():
                return member
            else:
                raise LayoutError(f"{self.name}: {path} is not a regular file")
        raise UnsafeArchiveError(f"{self.name}: {path}: too many links (a loop?)")

    def size(self, path: str) -> int | None:
        member = self._resolve(path)
        return None if member is None else member.size

    def open(self, path: str) -> IO[bytes]:
        member = self._resolve(path)
        try:
            stream = self._tar.extractfile(member) if member is not None else None
        except READ_ERRORS as e:
            raise LayoutError(f"{self.name}: {path} cannot be read: {one_line(e)}") from e
        if stream is None:
            raise LayoutError(f"{self.name}: {path} is missing")
        return cast(IO[bytes], _GuardedStream(stream, f"{self.name}: {path}"))

    def has(self, path: str) -> bool:
        return clean_name(path, self.name) in self._members

    def close(self) -> None:
        self._tar.close()
