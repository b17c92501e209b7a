"""The format signers behind the signing-event seam: Notary v1 here, Notation and cosign beside it.

Each takes the event's subjects and returns one :class:`~notar.signing.Outcome` per subject; a subject it
could not sign is a ``failed`` outcome with a one-line reason, never an exception. What each writes, and
in which order (so that nothing half-written claims success):

* **Notary v1** (:class:`V1Format`): every tag of the event in one TUF publish through
  :meth:`notar.client.Repository.sign` (all tags or none). A child manifest of an index has no tag of
  its own: ``skipped`` (the index's tag covers it in v1).
* **Notation** (:class:`~notar.signing._notation.NotationFormat`): per digest, the envelope and its signature manifest
  (:func:`notar.notation.sign_artifact`), then :func:`notar.registry.add_referrer`: blobs first, the
  manifest by digest, then (without the referrers API) the ``sha256-<hex>`` index entry, merged and
  re-read. A failure before the index entry leaves at most unreferenced blobs and an unreferenced
  manifest, which no verifier finds.
* **cosign** (:class:`~notar.signing._cosign.CosignFormat`): per digest, the simplesigning payload signed
  (:func:`notar.cosign.sign_image`) and appended as a layer of ``sha256-<hex>.sig``
  (:func:`notar.registry.append_cosign_signature`: payload and config blobs first, then the manifest,
  re-read and merged again when a concurrent writer replaced it).

Subjects with the same digest (two tags of one image, a child listed twice) are signed once per format;
each gets the outcome. The Notation and cosign signers live in their own modules, so that a Notary v1
signing event does not import their formats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from notar.client import Repository
from notar.errors import NotarError
from notar.signing._model import Format, Outcome, Status, Subject
from notar.tuf import FileMeta

__all__ = ["DEFAULT_WORKERS", "V1Format", "per_digest", "reason"]

#: Digests signed at once per format (registry round trips and the tag schema's settle time overlap).
DEFAULT_WORKERS: Final = 8


def reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def per_digest(
    subjects: Sequence[Subject],
    fmt: Format,
    sign_one: Callable[[Subject], Mapping[str, Any]],
    workers: int,
) -> list[Outcome]:
    """Run *sign_one* once per distinct digest (concurrently), and give every subject its outcome."""
    first: dict[str, Subject] = {}
    for subject in subjects:
        first.setdefault(subject.digest, subject)

    def run(subject: Subject) -> tuple[str, Status, str | None, Mapping[str, Any]]:
        try:
            return subject.digest, Status.SIGNED, None, sign_one(subject)
        except NotarError as e:
            return subject.digest, Status.FAILED, reason(e), {}
        except Exception as e:  # a bug must not hide what the other digests and formats did
            return subject.digest, Status.FAILED, f"internal error: {type(e).__name__}: {reason(e)}", {}

    todo = list(first.values())
    if len(todo) <= 1 or workers <= 1:
        done = [run(s) for s in todo]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            done = list(pool.map(run, todo))
    by_digest = {digest: (status, error, detail) for digest, status, error, detail in done}
    out = []
    for subject in subjects:
        status, error, detail = by_digest[subject.digest]
        out.append(Outcome(subject, fmt, status, error, detail))
    return out


class V1Format:
    """Notary v1: the event's tags signed into the repository's trust data in one publish."""

    format: Final = Format.V1

    def __init__(self, repository: Repository, *, initialize: bool = True) -> None:
        self.repository = repository
        self.initialize = initialize

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        targets: dict[str, FileMeta] = {}
        for subject in subjects:
            if subject.index is None and subject.tag is not None:
                algorithm, _, hexdigest = subject.digest.partition(":")
                assert algorithm == "sha256"  # resolve_subjects refuses the others
                targets[subject.tag] = FileMeta(subject.descriptor.size, {"sha256": bytes.fromhex(hexdigest)})
        error: str | None = None
        detail: dict[str, Any] = {}
        if targets:
            try:
                result = self.repository.sign(targets, initialize=self.initialize)
                detail = {"roles": result.roles}
            except NotarError as e:
                error = reason(e)
            except Exception as e:  # a bug must not hide what the other formats did
                error = f"internal error: {type(e).__name__}: {reason(e)}"
        out = []
        for subject in subjects:
            if subject.index is not None or subject.tag is None:
                why = "Notary v1 signs tags; this manifest is covered by its index's tag"
                out.append(Outcome(subject, self.format, Status.SKIPPED, why))
            elif error is not None:
                out.append(Outcome(subject, self.format, Status.FAILED, error))
            else:
                out.append(Outcome(subject, self.format, Status.SIGNED, None, detail))
        return out
