"""Progress reporting for pushes and pulls, kept out of the transfer logic.

:class:`Progress` is what :func:`~notar.transfer.push_image` and :func:`~notar.transfer.pull_image` call;
:class:`NullProgress` ignores it, :class:`LineProgress` writes one plain line per blob (logs, CI) and
:class:`RichProgress` draws bars (a terminal). :func:`progress_for` picks one for a stream.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["LineProgress", "NullProgress", "Progress", "RichProgress", "format_size", "progress_for"]


class Progress(Protocol):
    """Callbacks for one transfer. ``key`` is a blob or manifest digest."""

    def start(self, key: str, size: int, label: str) -> None: ...

    def advance(self, key: str, n: int) -> None: ...

    def finish(self, key: str, status: str) -> None:
        """``status`` is ``uploaded``, ``exists`` (the registry had it) or ``downloaded``."""

    def note(self, text: str) -> None: ...


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def _short(key: str) -> str:
    algorithm, _, encoded = key.partition(":")
    return f"{algorithm}:{encoded[:12]}"


class NullProgress:
    def start(self, key: str, size: int, label: str) -> None:
        pass

    def advance(self, key: str, n: int) -> None:
        pass

    def finish(self, key: str, status: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class LineProgress:
    """One line per finished blob, e.g. ``sha256:0123456789ab  layer  1.2 MB  uploaded``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started: dict[str, tuple[int, str]] = {}

    def start(self, key: str, size: int, label: str) -> None:
        self._started[key] = (size, label)

    def advance(self, key: str, n: int) -> None:
        pass

    def finish(self, key: str, status: str) -> None:
        size, label = self._started.pop(key, (0, "blob"))
        print(f"{_short(key)}  {label:<8} {format_size(size):>9}  {status}", file=self._stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self._stream, flush=True)


class RichProgress:
    """A bar per blob on a terminal (rich); use it as a context manager."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        self._console = Console(file=stream)
        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._tasks: dict[str, tuple[TaskID, str, int]] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bars.stop()

    def start(self, key: str, size: int, label: str) -> None:
        description = f"{_short(key)} {label:<8}"
        self._tasks[key] = (self._bars.add_task(description, total=size or 1), description, size or 1)

    def advance(self, key: str, n: int) -> None:
        if key in self._tasks:
            self._bars.advance(self._tasks[key][0], n)

    def finish(self, key: str, status: str) -> None:
        if key in self._tasks:
            task, description, total = self._tasks.pop(key)
            self._bars.update(task, completed=total, description=f"{description} {status}")

    def note(self, text: str) -> None:
        self._console.print(text, highlight=False, markup=False)


def progress_for(
    stream: TextIO | None = None, *, quiet: bool = False
) -> NullProgress | LineProgress | RichProgress:
    """Bars on a terminal, plain lines otherwise, nothing when ``quiet``."""
    out = stream if stream is not None else sys.stderr
    if quiet:
        return NullProgress()
    if out.isatty():
        return RichProgress(out)
    return LineProgress(out)
