"""Running one signing event: the same subjects through every requested format, each independently."""

from __future__ import annotations

from collections.abc import Sequence

from notar.signing._model import FormatSigner, Outcome, Status, Subject

__all__ = ["sign_event"]


def sign_event(subjects: Sequence[Subject], signers: Sequence[FormatSigner]) -> list[Outcome]:
    """Every subject in every format, format by format in the order given; one outcome per pair.

    A format that fails (for one subject or all) does not stop, undo or hide the others: its outcomes
    say ``failed`` and why. A format signer that breaks its contract (raises, or answers for other
    subjects) is reported as failed for every subject, too.
    """
    out: list[Outcome] = []
    for signer in signers:
        try:
            outcomes = signer.sign(subjects)
            if [o.subject for o in outcomes] != list(subjects):
                raise RuntimeError("the format signer did not answer once per subject, in order")
        except Exception as e:
            why = f"internal error: {type(e).__name__}: {e}"
            outcomes = [Outcome(s, signer.format, Status.FAILED, why) for s in subjects]
        out.extend(outcomes)
    return out
