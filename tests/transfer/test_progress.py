"""Progress renderers: plain lines for logs, bars for terminals, nothing when quiet."""

from __future__ import annotations

import io

from notar.transfer import LineProgress, NullProgress, RichProgress, progress_for
from notar.transfer.progress import format_size

DIGEST = "sha256:" + "ab" * 32


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_progress_prints_one_line_per_blob() -> None:
    out = io.StringIO()
    progress = LineProgress(out)
    progress.start(DIGEST, 1_234_567, "layer")
    progress.advance(DIGEST, 1000)
    progress.finish(DIGEST, "uploaded")
    progress.note("Signing x")
    assert out.getvalue() == f"sha256:{'ab' * 6}  layer       1.2 MB  uploaded\nSigning x\n"


def test_progress_for_picks_by_stream() -> None:
    assert isinstance(progress_for(io.StringIO()), LineProgress)
    assert isinstance(progress_for(Tty()), RichProgress)
    assert isinstance(progress_for(Tty(), quiet=True), NullProgress)


def test_rich_progress_draws_bars() -> None:
    out = Tty()
    with RichProgress(out) as progress:
        progress.start(DIGEST, 100, "config")
        progress.advance(DIGEST, 60)
        progress.advance(DIGEST, 40)
        progress.finish(DIGEST, "exists")
        progress.advance("sha256:unknown", 5)  # ignored
        progress.note("done")
    assert "exists" in out.getvalue() and "done" in out.getvalue()


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 5_500_000, 7 * 10**12)] == [
        "0 B",
        "999 B",
        "1.0 KB",
        "5.5 MB",
        "7000.0 GB",
    ]
