"""The root of notar's exception tree.

Every error that notar raises on purpose derives from :class:`NotarError`, so callers (and the CLI) can
catch one class and print a one-line message. Each package adds its own branches next to its code.
"""

from __future__ import annotations

__all__ = ["NotarError"]


class NotarError(Exception):
    """Base class of every error notar raises deliberately."""
