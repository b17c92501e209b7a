"""Fixtures for the KMS tests: the lab KMS (moto server with an AWS-faithful Sign, tests/lab/kms.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notar.kms import _client
from tests.lab.kms import KmsLab, run_kms


@pytest.fixture(scope="session")
def kms_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsLab]:
    """One lab KMS for the session; each test makes its own keys (unique aliases)."""
    with run_kms(tmp_path_factory.mktemp("kms")) as lab:
        yield lab


@pytest.fixture
def kms(kms_lab: KmsLab, monkeypatch: pytest.MonkeyPatch) -> Iterator[KmsLab]:
    """The lab KMS as this process's AWS (environment), with its call log and faults reset."""
    for name, value in kms_lab.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _client._clients.clear()  # boto3 clients are cached per (endpoint, region): not across environments
    kms_lab.reset()
    yield kms_lab
    _client._clients.clear()
