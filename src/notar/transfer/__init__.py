"""Moving images between disk and a registry, with Docker Content Trust in the loop.

* :func:`open_source` -- an OCI image layout (directory or tar) or a ``docker save`` archive, validated;
  one image (or multi-platform index) selected by tag (:mod:`.sources`, over the file trees of
  :mod:`.trees`); :func:`collect_image` -- its content checked (:mod:`.layout`: the content model, manifests
  parsed, layouts written).
* :func:`push_image` -- upload blobs and manifests by digest, sign the tag, then set the tag.
* :func:`pull_image` -- resolve the tag through verified trust data, fetch by digest into a new OCI
  layout, atomically.
* :class:`Progress` and its renderers; :class:`SourceError` (bad input) and :class:`TransferError`
  (the operation failed) branches of :class:`~notar.errors.NotarError`.

Layering: uses :mod:`notar.registry` and :mod:`notar.client`; the CLI (``notar push``/``pull``) and the
release pipeline sit on top.
"""

from __future__ import annotations

from notar.transfer.errors import (
    BlobCorruptError,
    BlobMissingError,
    DestinationError,
    LayoutError,
    PartialPushError,
    SigningError,
    SourceError,
    SourceTagError,
    TransferError,
    UnsafeArchiveError,
)
from notar.transfer.layout import (
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    ImageContent,
    ManifestBlob,
)
from notar.transfer.progress import LineProgress, NullProgress, Progress, RichProgress, progress_for
from notar.transfer.pull import PullResult, check_destination, pull_image, resolve_signed
from notar.transfer.push import PushResult, push_image, upload_content
from notar.transfer.sources import (
    DockerArchiveSource,
    ImageSource,
    OCILayoutSource,
    collect_image,
    open_source,
)

__all__ = [
    "ANNOTATION_REF_NAME",
    "MEDIA_TYPE_DOCKER_CONFIG",
    "MEDIA_TYPE_DOCKER_LAYER",
    "MEDIA_TYPE_DOCKER_LAYER_GZIP",
    "BlobCorruptError",
    "BlobMissingError",
    "DestinationError",
    "DockerArchiveSource",
    "ImageContent",
    "ImageSource",
    "LayoutError",
    "LineProgress",
    "ManifestBlob",
    "NullProgress",
    "OCILayoutSource",
    "PartialPushError",
    "Progress",
    "PullResult",
    "PushResult",
    "RichProgress",
    "SigningError",
    "SourceError",
    "SourceTagError",
    "TransferError",
    "UnsafeArchiveError",
    "check_destination",
    "collect_image",
    "open_source",
    "progress_for",
    "pull_image",
    "push_image",
    "resolve_signed",
    "upload_content",
]
