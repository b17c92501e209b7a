"""Running one signing event: the same subjects through every requested format, each independently."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from notar.signing._model import FormatSigner, Outcome, Status, Subject

__all__ = ["sign_event"]


def _run(signer: FormatSigner, subjects: Sequence[Subject]) -> list[Outcome]:
    try:
        outcomes = signer.sign(subjects)
        if [o.subject for o in outcomes] != list(subjects):
            raise RuntimeError("the format signer did not answer once per subject, in order")
    except Exception as e:
        why = f"internal error: {type(e).__name__}: {e}"
        outcomes = [Outcome(s, signer.format, Status.FAILED, why) for s in subjects]
    return outcomes


def sign_event(
    subjects: Sequence[Subject], signers: Sequence[FormatSigner], *, concurrent: bool = True
) -> list[Outcome]:
    """Every subject in every format; one outcome per pair, format by format in the order given.

    The formats run at the same time (*concurrent*, one thread each): they write to different places
    (the trust server; a referrer; the ``.sig`` tag) and most of their time is waiting on the network,
    notably the settle time before the confirming read of a shared tag. A format that fails (for one
    subject or all) does not stop, undo or hide the others: its outcomes say ``failed`` and why. A
    format signer that breaks its contract (raises, or answers for other subjects) is reported as
    failed for every subject, too.
    """
    if not concurrent or len(signers) <= 1:
        return [o for signer in signers for o in _run(signer, subjects)]
    with ThreadPoolExecutor(max_workers=len(signers), thread_name_prefix="notar-format") as pool:
        results = list(pool.map(lambda signer: _run(signer, subjects), signers))
    return [o for outcomes in results for o in outcomes]
