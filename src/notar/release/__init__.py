"""``notar release``: sign what a build pushes, without prompts and without leaving the key behind.

* :func:`load_tasks` / :func:`make_task` -- task files (``tasks:`` list) and flag-built tasks, checked
  before anything is fetched (:class:`TaskError` names file and line).
* :func:`release` / :func:`run_tasks` -- fetch the signer's encrypted key and passphrase from AWS Secrets
  Manager, decrypt in memory, push (OCI layout / docker save archive, sign before tag), sign, publish and
  verify; per-phase timings in :attr:`ReleaseResult.phases`.
* :func:`put_signer` -- one-time upload of a signer's key and passphrase.
"""

from __future__ import annotations

from notar.release._run import (
    PHASES,
    ReleaseError,
    ReleaseOptions,
    ReleaseResult,
    check_signer,
    decrypt_key,
    release,
    run_tasks,
)
from notar.release._secrets import SecretBytes, SecretsError, SecretsManager, wipe
from notar.release._setup import SignerSecrets, default_secret_names, put_signer
from notar.release._task import FIELDS, ReleaseTask, TaskError, check_value, load_tasks, make_task

__all__ = [
    "FIELDS",
    "PHASES",
    "ReleaseError",
    "ReleaseOptions",
    "ReleaseResult",
    "ReleaseTask",
    "SecretBytes",
    "SecretsError",
    "SecretsManager",
    "SignerSecrets",
    "TaskError",
    "check_signer",
    "check_value",
    "decrypt_key",
    "default_secret_names",
    "load_tasks",
    "make_task",
    "put_signer",
    "release",
    "run_tasks",
    "wipe",
]
