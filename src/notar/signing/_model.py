"""What a signing event is made of: formats, subjects (what is signed), outcomes (what happened)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from notar.errors import NotarError
from notar.registry import Descriptor, Reference

__all__ = [
    "RESERVED_ANNOTATION_PREFIX",
    "Format",
    "FormatSigner",
    "Outcome",
    "SigningSetupError",
    "Status",
    "Subject",
    "parse_annotations",
    "parse_duration",
    "parse_formats",
]

#: Notation refuses user metadata keys with this prefix (the Notary Project reserves them).
RESERVED_ANNOTATION_PREFIX: Final = "io.cncf.notary"


class SigningSetupError(NotarError, ValueError):
    """The request cannot be signed as asked: bad format list, duration, annotation, or signer choice."""


class Format(StrEnum):
    """A signature format notar writes."""

    V1 = "v1"  # Notary v1 / Docker Content Trust: the tag in TUF targets metadata on the trust server
    NOTATION = "notation"  # Notary Project: a signature manifest (JWS or COSE) referring to the digest
    COSIGN = "cosign"  # cosign key-based: a layer of the sha256-<hex>.sig image

    @property
    def display(self) -> str:
        """How messages name the format."""
        return {"v1": "Notary v1", "notation": "Notation", "cosign": "cosign"}[self.value]


class Status(StrEnum):
    """What happened to one subject in one format."""

    SIGNED = "signed"
    FAILED = "failed"
    SKIPPED = "skipped"


def parse_formats(values: Iterable[str]) -> tuple[Format, ...]:
    """Formats from option values (each may be a comma-separated list), in order, without repeats."""
    out: list[Format] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                fmt = Format(name)
            except ValueError:
                choices = ", ".join(f.value for f in Format)
                raise SigningSetupError(
                    f"unknown signature format {part.strip()!r} (one of {choices})"
                ) from None
            if fmt not in out:
                out.append(fmt)
    return tuple(out)


_DURATION_PART = re.compile(r"(\d{1,6})([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """A duration like notation's ``--expiry``: ``30m``, ``12h``, ``3h20m``, ``365d`` (units d, h, m, s)."""
    value = text.strip().lower()
    pos, seconds = 0, 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise SigningSetupError(
            f"{text!r} is not a duration: use numbers with d, h, m or s, like 30m, 12h, 3h20m or 365d"
        )
    if seconds <= 0:
        raise SigningSetupError(f"the duration {text!r} must be longer than zero")
    if seconds > 100 * 365 * 86400:
        raise SigningSetupError(f"the duration {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def parse_annotations(values: Iterable[str], *, notation: bool) -> dict[str, str]:
    """``KEY=VALUE`` pairs; with *notation*, keys reserved by the Notary Project are refused."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SigningSetupError(f"annotation {item!r} must be KEY=VALUE")
        if key in out:
            raise SigningSetupError(f"annotation {key!r} is given twice")
        if notation and key.startswith(RESERVED_ANNOTATION_PREFIX):
            raise SigningSetupError(
                f"annotation key {key!r} is reserved by the Notary Project (keys starting with "
                f"{RESERVED_ANNOTATION_PREFIX!r})"
            )
        out[key] = value
    return out


@dataclass(frozen=True)
class Subject:
    """One manifest to sign, as resolved once for the whole event.

    ``reference`` is the ``IMAGE:TAG`` it was resolved from; ``descriptor`` the manifest's media type,
    digest and size, from a digest-verified GET. A child of an index (``--recursive``) carries the
    index's reference and, in ``index``, the index's digest.
    """

    reference: Reference
    descriptor: Descriptor
    index: str | None = None

    @property
    def tag(self) -> str | None:
        return self.reference.tag

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def repository(self) -> str:
        """The fully qualified repository name (the Notary v1 GUN)."""
        return self.reference.name

    def __str__(self) -> str:
        shown = f"{self.repository}:{self.tag}" if self.tag else self.repository
        if self.index is not None:
            return f"{shown} child {self.digest}"
        return f"{shown} ({self.digest})"


@dataclass(frozen=True)
class Outcome:
    """What one format did with one subject: ``signed``, ``skipped`` (and why) or ``failed`` (and why).

    ``detail`` holds what the format wrote (Notary v1: the roles; Notation: the signature manifest's
    digest and envelope type; cosign: the ``.sig`` tag and the payload layer).
    """

    subject: Subject
    format: Format
    status: Status
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED

    def to_json(self) -> dict[str, Any]:
        """``{repository, tag, digest, mediaType, size, index, format, status, error, ...detail}``."""
        out: dict[str, Any] = {
            "repository": self.subject.repository,
            "tag": self.subject.tag,
            "digest": self.subject.digest,
            "mediaType": self.subject.descriptor.media_type,
            "size": self.subject.descriptor.size,
            "index": self.subject.index,
            "format": self.format.value,
            "status": self.status.value,
            "error": self.error,
        }
        out.update(self.detail)
        return out


class FormatSigner(Protocol):
    """One signature format behind the signing-event seam (ADR 0008, seam 1).

    Takes every subject of the event and returns one :class:`Outcome` per subject, in order. It must not
    raise for a subject it could not sign (that is a ``failed`` outcome) and never touches what another
    format wrote.
    """

    @property
    def format(self) -> Format: ...

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]: ...


@dataclass(frozen=True)
class Unavailable:
    """A format that cannot sign at all in this event (no key, no certificate): every subject fails
    with the same reason, and the other formats go ahead."""

    format: Format
    reason: str

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        return [Outcome(s, self.format, Status.FAILED, self.reason) for s in subjects]
