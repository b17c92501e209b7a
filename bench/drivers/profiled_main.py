"""`notar` under cProfile, after its imports: where the command itself spends its time.

Run as ``python bench/drivers/profiled_main.py ARGS...``, like ``notar ARGS...``, with ``BENCH_PROFILE_OUT``
naming the file for the stats (``pstats.Stats`` reads it).
"""

from __future__ import annotations

import cProfile
import os
import sys

import notar.cli


def main() -> int:
    profile = cProfile.Profile()
    rc: int = profile.runcall(notar.cli.main, sys.argv[1:])
    profile.dump_stats(os.environ["BENCH_PROFILE_OUT"])
    return rc


if __name__ == "__main__":
    sys.exit(main())
