"""Resolving tags once: each ``IMAGE:TAG`` to the descriptor of the manifest every format then signs."""

from __future__ import annotations

from collections.abc import Sequence

from notar.registry import Descriptor, Manifest, Reference, RegistryClient, RegistryProtocolError
from notar.registry.manifest import MAX_INDEX_DEPTH
from notar.signing._model import Subject

__all__ = ["resolve_subjects"]


def _sha256(ref: Reference, manifest: Manifest) -> None:
    if not manifest.digest.startswith("sha256:"):
        raise RegistryProtocolError(f"{ref}: only sha256 manifests can be signed, got {manifest.digest}")


def _children(
    client: RegistryClient, ref: Reference, index: Manifest, depth: int, seen: set[str]
) -> list[Subject]:
    """The manifests an index lists (and, for nested indexes, theirs), each fetched by digest (verified)."""
    out: list[Subject] = []
    for entry in index.references():
        if entry.digest in seen:
            continue
        seen.add(entry.digest)
        child = client.get_manifest(ref.path, entry.digest)
        _sha256(ref, child)
        if (child.media_type, child.size) != (entry.media_type, entry.size):
            raise RegistryProtocolError(
                f"{ref}: index {index.digest} lists {entry.digest} as {entry.media_type} of {entry.size} "
                f"bytes, but the registry serves {child.media_type} of {child.size} bytes"
            )
        out.append(Subject(ref, child.descriptor, index=index.digest))
        if child.is_index:
            if depth >= MAX_INDEX_DEPTH:
                raise RegistryProtocolError(f"{ref}: indexes nested deeper than {MAX_INDEX_DEPTH} levels")
            out += _children(client, ref, child, depth + 1, seen)
    return out


def resolve_subjects(
    client: RegistryClient, refs: Sequence[Reference], *, recursive: bool = False
) -> list[Subject]:
    """One subject per reference (by digest when it has one, else by tag), from a digest-verified GET.

    With *recursive*, an index is followed by every manifest it lists (nested indexes too, at most
    :data:`~notar.registry.MAX_INDEX_DEPTH` levels), each fetched by digest and checked against the
    index entry. Raises :class:`~notar.registry.RegistryError` for the first reference that cannot be
    resolved: nothing is signed unless every tag resolved.
    """
    subjects: list[Subject] = []
    for ref in refs:
        wanted = ref.digest or ref.tag
        if wanted is None:
            raise ValueError(f"{ref}: a tag or digest is needed")
        # GET, not HEAD: the digest signed is computed from the bytes received, not a header's claim
        manifest = client.get_manifest(ref.path, wanted)
        _sha256(ref, manifest)
        subjects.append(Subject(ref, Descriptor(manifest.media_type, manifest.digest, manifest.size)))
        if recursive and manifest.is_index:
            subjects += _children(client, ref, manifest, 1, {manifest.digest})
    return subjects
