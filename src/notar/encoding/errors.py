"""Errors of the encoding layer."""

from __future__ import annotations

from notar.errors import NotarError

__all__ = ["EncodingError"]


class EncodingError(NotarError, ValueError):
    """A value cannot be encoded or decoded (bad JSON, bad base64, bad time string, ...)."""
