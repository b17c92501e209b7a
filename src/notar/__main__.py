"""``python -m notar``."""

from __future__ import annotations

import sys

from notar.cli import main

sys.exit(main())
