"""notar: container image signing for release pipelines (Notary v1 / Docker Content Trust)."""

from __future__ import annotations

from notar.errors import NotarError

__all__ = ["NotarError", "__version__"]
__version__ = "0.1.0"
