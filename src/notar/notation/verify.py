"""Notation signature verification: the spec's steps, the policy's levels, one verdict per artifact.

For one artifact (its descriptor, the *subject*, and its repository) the caller passes the signature
envelopes found for it, the parsed trust policy, the trust store and the clock; nothing here reads the
network, the registry or the clock itself.

:func:`verify_artifact` picks the trust policy statement for the repository and runs
:func:`verify_signature` on each envelope; the artifact is verified when **one** signature passes, as
``notation verify`` decides. Each signature goes through five steps, in order:

1. **integrity** -- the envelope parses under its media type's rules, its ``alg`` fits the leaf key,
   the signature verifies with the leaf key, and the payload's ``targetArtifact`` has the subject's
   digest, size and media type.
2. **authenticity** -- the ``x5c`` chain meets the certificate rules
   (:func:`~notar.notation.certs.signing_chain_problems`); some certificate of it is byte-identical to
   a certificate of the statement's trust stores of the scheme's type (``ca`` for ``notary.x509``,
   ``signingAuthority`` for ``notary.x509.signingAuthority``); the leaf's subject is a trusted identity.
3. **expiry** -- "now" is not after ``io.cncf.notary.expiry``.
4. **authenticTimestamp** -- ``signingAuthority``: every chain certificate was valid at the authentic
   signing time. ``notary.x509``: with an RFC 3161 token, the token verifies against the statement's
   ``tsa`` stores and the chain was valid over its time range; without one, the chain is valid "now".
   (``verifyTimestamp: afterCertExpiry`` passes without the token while the chain is still valid.)
5. **revocation** -- no OCSP/CRL fetching here: a chain naming no OCSP responder or CRL is not
   revocable and passes; otherwise the caller's :class:`RevocationChecker` decides, and without one
   the status is unknown, which fails the step (logged or skipped as the policy says).

Each step's action comes from the statement (level + override): a failure of an ``enforce`` step
fails the signature and the later steps are not run; a ``log`` failure is recorded as ``logged``; a
``skip`` step is not run. Level ``skip`` verifies nothing and the artifact counts as verified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from notar.notation.certs import ChainProblem, signing_chain_problems, subject_text, validity_problems
from notar.notation.descriptor import Descriptor
from notar.notation.envelope import Envelope, SigningScheme, parse_envelope
from notar.notation.errors import EnvelopeError, TimestampError, TrustStoreError
from notar.notation.policy import (
    Action,
    Level,
    Step,
    StoreType,
    TrustPolicyDocument,
    TrustPolicyStatement,
    VerifyTimestamp,
)
from notar.notation.timestamp import Timestamp, verify_timestamp_token
from notar.notation.truststore import TrustStore

__all__ = [
    "MAX_SIGNATURES",
    "RevocationChecker",
    "SignatureBlob",
    "SignatureResult",
    "Status",
    "StepResult",
    "Verdict",
    "verify_artifact",
    "verify_signature",
]

#: At most this many signatures are evaluated per artifact (notation's ``--max-signatures`` default).
MAX_SIGNATURES = 100
_DER = Encoding.DER


class Status(StrEnum):
    """Outcome of one step: passed; failed (enforced); logged (failed, action ``log``); skipped."""

    PASSED = "passed"
    FAILED = "failed"
    LOGGED = "logged"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """One step of one signature: its action under the policy, its status and why (one line)."""

    step: Step
    action: Action
    status: Status
    reason: str

    def __str__(self) -> str:
        return f"{self.step}: {self.status} ({self.reason})"


@dataclass(frozen=True)
class SignatureBlob:
    """A signature envelope as found in the registry: its media type, bytes, and a label for reports."""

    media_type: str
    data: bytes
    label: str = ""


@dataclass(frozen=True)
class SignatureResult:
    """All five steps of one signature; ``envelope`` is set once it parsed."""

    label: str
    media_type: str
    steps: tuple[StepResult, ...]
    envelope: Envelope | None = None
    timestamp: Timestamp | None = None

    @property
    def verified(self) -> bool:
        """No step failed (logged and skipped steps do not count against the signature)."""
        return all(s.status is not Status.FAILED for s in self.steps)

    @property
    def failure(self) -> StepResult | None:
        """The step that failed the signature, if any."""
        return next((s for s in self.steps if s.status is Status.FAILED), None)

    def step(self, step: Step) -> StepResult:
        """The result of *step*."""
        return next(s for s in self.steps if s.step is step)


@dataclass(frozen=True)
class Verdict:
    """The decision for one artifact: verified when one signature passed (or the level is ``skip``)."""

    verified: bool
    reason: str
    subject: Descriptor
    repository: str
    statement: TrustPolicyStatement
    results: tuple[SignatureResult, ...]

    @property
    def accepted(self) -> SignatureResult | None:
        """The first signature that passed."""
        return next((r for r in self.results if r.verified), None)


class RevocationChecker(Protocol):
    """Decides revocation for a chain that names OCSP responders or CRLs (an online component).

    Returns ``None`` when no certificate is revoked, else why the chain is revoked or its status
    unknown (one line).
    """

    def __call__(self, chain: Sequence[x509.Certificate], at: datetime) -> str | None: ...


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    reason: str
    timestamp: Timestamp | None = None


def _problems_text(problems: Sequence[ChainProblem], limit: int = 3) -> str:
    text = "; ".join(str(p) for p in problems[:limit])
    if len(problems) > limit:
        text += f"; and {len(problems) - limit} more"
    return text


def _integrity(blob: SignatureBlob, subject: Descriptor) -> tuple[_Outcome, Envelope | None]:
    try:
        env = parse_envelope(blob.media_type, blob.data)
        env.verify()
    except EnvelopeError as e:
        return _Outcome(False, str(e)), None
    target = env.target_artifact
    for name, got, want in (
        ("digest", target.digest, subject.digest),
        ("size", target.size, subject.size),
        ("media type", target.media_type, subject.media_type),
    ):
        if got != want:
            return _Outcome(False, f"the payload names {name} {got!r}, the subject has {want!r}"), env
    return _Outcome(
        True, f"{env.algorithm} signature verifies with the leaf key; payload names the subject"
    ), env


def _authenticity(env: Envelope, statement: TrustPolicyStatement, store: TrustStore) -> _Outcome:
    problems = signing_chain_problems(env.certificate_chain)
    if problems:
        return _Outcome(False, f"certificate chain: {_problems_text(problems)}")
    scheme = env.attributes.signing_scheme
    store_type = StoreType.CA if scheme is SigningScheme.X509 else StoreType.SIGNING_AUTHORITY
    refs = statement.stores_of(store_type)
    if not refs:
        return _Outcome(
            False, f"statement {statement.name!r} has no {store_type} trust store for signing scheme {scheme}"
        )
    chain_ders = {c.public_bytes(_DER) for c in env.certificate_chain}
    anchor = None
    for ref in refs:
        try:
            certs = store.certificates(ref)
        except TrustStoreError as e:
            return _Outcome(False, str(e))
        if anchor is None:
            anchor = next(((ref, c) for c in certs if c.public_bytes(_DER) in chain_ders), None)
    if anchor is None:
        names = ", ".join(str(r) for r in refs)
        return _Outcome(False, f"no certificate of the signature's chain is in trust store(s) {names}")
    identity = next((i for i in statement.trusted_identities if i.matches(env.leaf.subject)), None)
    if identity is None:
        return _Outcome(
            False,
            f"signing certificate subject {subject_text(env.leaf)!r} matches no trusted identity of statement {statement.name!r}",
        )
    ref, cert = anchor
    return _Outcome(
        True, f"chain anchored by {subject_text(cert)!r} in {ref}; trusted identity {identity.text!r}"
    )


def _expiry(env: Envelope, now: datetime) -> _Outcome:
    expiry = env.attributes.expiry
    if expiry is None:
        return _Outcome(True, "the signature has no expiry")
    if now > expiry:
        return _Outcome(False, f"the signature expired at {expiry.isoformat()}")
    return _Outcome(True, f"the signature is valid until {expiry.isoformat()}")


def _authentic_timestamp(
    env: Envelope, statement: TrustPolicyStatement, store: TrustStore, now: datetime
) -> _Outcome:
    chain = env.certificate_chain
    attrs = env.attributes
    if attrs.signing_scheme is SigningScheme.X509_SIGNING_AUTHORITY:
        assert attrs.authentic_signing_time is not None
        at = attrs.authentic_signing_time
        bad = validity_problems(chain, at)
        if bad:
            return _Outcome(False, f"at the authentic signing time {at.isoformat()}: {_problems_text(bad)}")
        return _Outcome(True, f"the chain was valid at the authentic signing time {at.isoformat()}")
    problems_now = validity_problems(chain, now)
    if statement.verify_timestamp is VerifyTimestamp.AFTER_CERT_EXPIRY and not problems_now:
        return _Outcome(
            True, "the chain is valid now; the timestamp is only checked after it expires (afterCertExpiry)"
        )
    if env.timestamp_token is None:
        if problems_now:
            return _Outcome(False, f"no timestamp, and not valid now: {_problems_text(problems_now)}")
        return _Outcome(True, "no timestamp; the chain is valid now")
    refs = statement.stores_of(StoreType.TSA)
    if not refs:
        return _Outcome(
            False, f"the signature is timestamped but statement {statement.name!r} names no tsa trust store"
        )
    trusted: list[x509.Certificate] = []
    for ref in refs:
        try:
            trusted.extend(store.certificates(ref))
        except TrustStoreError as e:
            return _Outcome(False, str(e))
    try:
        stamp = verify_timestamp_token(env.timestamp_token, env.signature, trusted)
    except TimestampError as e:
        return _Outcome(False, str(e))
    bad = validity_problems(chain, stamp.earliest) + validity_problems(chain, stamp.latest)
    if bad:
        return _Outcome(False, f"at the timestamp {stamp.gen_time.isoformat()}: {_problems_text(bad)}", stamp)
    return _Outcome(
        True, f"timestamped at {stamp.gen_time.isoformat()} by {subject_text(stamp.tsa_chain[0])!r}", stamp
    )


def _revocation_locations(chain: Iterable[x509.Certificate]) -> int:
    count = 0
    for cert in chain:
        try:
            aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
            count += sum(1 for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)
        except x509.ExtensionNotFound:
            pass
        with contextlib.suppress(x509.ExtensionNotFound):
            count += len(cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value)
    return count


def _revocation(env: Envelope, now: datetime, checker: RevocationChecker | None) -> _Outcome:
    if _revocation_locations(env.certificate_chain) == 0:
        return _Outcome(True, "no certificate names an OCSP responder or a CRL: not revocable")
    if checker is None:
        return _Outcome(
            False,
            "revocation status unknown: the chain names OCSP/CRL locations and no checker is configured",
        )
    reason = checker(env.certificate_chain, now)
    if reason is not None:
        return _Outcome(False, reason)
    return _Outcome(True, "no certificate of the chain is revoked")


class _Recorder:
    """Collects step results and applies the statement's actions."""

    def __init__(self, statement: TrustPolicyStatement) -> None:
        self.statement = statement
        self.results: list[StepResult] = []
        self.stopped_by: Step | None = None

    def record(self, step: Step, outcome: _Outcome) -> None:
        action = self.statement.action(step)
        if outcome.ok:
            status = Status.PASSED
        elif action is Action.ENFORCE:
            status = Status.FAILED
            self.stopped_by = step
        else:
            status = Status.LOGGED
        self.results.append(StepResult(step, action, status, outcome.reason))

    def skip(self, step: Step, reason: str) -> None:
        self.results.append(StepResult(step, self.statement.action(step), Status.SKIPPED, reason))


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the clock must be a timezone-aware datetime")
    return now.astimezone(UTC)


def verify_signature(
    blob: SignatureBlob,
    *,
    subject: Descriptor,
    statement: TrustPolicyStatement,
    trust_store: TrustStore,
    now: datetime,
    revocation: RevocationChecker | None = None,
) -> SignatureResult:
    """Run the five steps on one envelope under *statement* (see the module docstring)."""
    now = _utc(now)
    rec = _Recorder(statement)
    if statement.level is Level.SKIP:
        for step in Step:
            rec.skip(step, "the trust policy level is skip")
        return SignatureResult(blob.label, blob.media_type, tuple(rec.results))
    integrity, env = _integrity(blob, subject)
    rec.record(Step.INTEGRITY, integrity)
    stamp: Timestamp | None = None
    for step in (Step.AUTHENTICITY, Step.EXPIRY, Step.AUTHENTIC_TIMESTAMP, Step.REVOCATION):
        if rec.stopped_by is not None or env is None:
            rec.skip(step, f"not evaluated: {rec.stopped_by or Step.INTEGRITY} failed")
            continue
        if statement.action(step) is Action.SKIP:
            rec.skip(step, "skipped by the trust policy")
            continue
        if step is Step.AUTHENTICITY:
            outcome = _authenticity(env, statement, trust_store)
        elif step is Step.EXPIRY:
            outcome = _expiry(env, now)
        elif step is Step.AUTHENTIC_TIMESTAMP:
            outcome = _authentic_timestamp(env, statement, trust_store, now)
            stamp = outcome.timestamp
        else:
            outcome = _revocation(env, now, revocation)
        rec.record(step, outcome)
    return SignatureResult(blob.label, blob.media_type, tuple(rec.results), env, stamp)


def verify_artifact(
    signatures: Iterable[SignatureBlob],
    *,
    subject: Descriptor,
    repository: str,
    policy: TrustPolicyDocument,
    trust_store: TrustStore,
    now: datetime,
    revocation: RevocationChecker | None = None,
    max_signatures: int = MAX_SIGNATURES,
) -> Verdict:
    """Verify the signatures of one artifact; it is verified when one of them passes.

    *repository* is the fully qualified repository (``registry.example.com/team/app``) that selects the
    trust policy statement; :class:`~notar.notation.errors.NoApplicablePolicyError` if none applies.
    Every signature (up to *max_signatures*) is evaluated and reported.
    """
    now = _utc(now)
    statement = policy.statement_for(repository)
    if statement.level is Level.SKIP:
        return Verdict(
            True, f"statement {statement.name!r} skips verification", subject, repository, statement, ()
        )
    results: list[SignatureResult] = []
    more = False
    for i, blob in enumerate(signatures):
        if i >= max_signatures:
            more = True
            break
        results.append(
            verify_signature(
                blob,
                subject=subject,
                statement=statement,
                trust_store=trust_store,
                now=now,
                revocation=revocation,
            )
        )
    accepted = next((r for r in results if r.verified), None)
    if accepted is not None:
        label = f" {accepted.label}" if accepted.label else ""
        reason = f"signature{label} satisfies statement {statement.name!r} ({statement.level})"
        return Verdict(True, reason, subject, repository, statement, tuple(results))
    if not results:
        reason = f"no signature is associated with {subject.digest}"
    else:
        last = results[-1].failure
        reason = f"none of {len(results)} signature(s) satisfies statement {statement.name!r}"
        if last is not None:
            reason += f" (last: {last.step}: {last.reason})"
        if more:
            reason += f"; more than {max_signatures} signatures, the rest were not evaluated"
    return Verdict(False, reason, subject, repository, statement, tuple(results))
