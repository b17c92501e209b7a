"""Errors of :mod:`notar.cosign`: one-line messages under :class:`CosignError`.

Verification *outcomes* are not errors: a layer whose signature does not verify is a
:class:`notar.cosign.verify.LayerResult`. Errors are raised for inputs that cannot be used at all.
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = ["CosignError", "CosignManifestError", "CosignSigningError"]


class CosignError(NotarError):
    """Base class of every error raised by :mod:`notar.cosign`."""


class CosignSigningError(CosignError, ValueError):
    """A cosign signature cannot be made (key type, reference, digest, annotations)."""


class CosignManifestError(CosignError, ValueError):
    """A ``.sig`` manifest or its config blob is not usable (shape, size, digest mismatch, public key)."""
