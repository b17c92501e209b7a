"""Key references: cosign's awskms:// forms, endpoints, regions, and one-line refusals."""

from __future__ import annotations

import pytest

from notar.kms import KeyURIError, is_key_uri, parse_key_uri

UUID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("text", "form", "region", "endpoint_url"),
    [
        (f"awskms:///{UUID}", "key ID", None, None),
        ("awskms:///mrk-1234abcd12ab34cd56ef1234567890ab", "key ID", None, None),
        ("awskms:///alias/release-signer", "alias", None, None),
        ("awskms:///alias/team/ci_signer-2", "alias", None, None),
        (f"awskms:///arn:aws:kms:us-east-2:111122223333:key/{UUID}", "key ARN", "us-east-2", None),
        (
            "awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/x",
            "alias ARN",
            "us-gov-west-1",
            None,
        ),
        (
            "awskms://kms.eu-west-1.amazonaws.com/alias/x",
            "alias",
            None,
            "https://kms.eu-west-1.amazonaws.com",
        ),
        ("awskms://kms.example.com:8443/alias/x", "alias", None, "https://kms.example.com:8443"),
        ("awskms://127.0.0.1:4566/alias/x", "alias", None, "http://127.0.0.1:4566"),
        ("awskms://localhost:4566/alias/x", "alias", None, "http://localhost:4566"),
        ("awskms://[::1]:4566/alias/x", "alias", None, "http://[::1]:4566"),
    ],
)
def test_forms(text: str, form: str, region: str | None, endpoint_url: str | None) -> None:
    uri = parse_key_uri(text)
    assert (uri.form, uri.region, uri.endpoint_url) == (form, region, endpoint_url)
    assert str(uri) == text
    assert is_key_uri(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("alias/x", "is not a KMS key reference"),
        ("gcpkms://projects/x", "is not a KMS key reference"),
        ("awskms://", "names no key"),
        ("awskms:///", "names no key"),
        ("awskms:///not-a-key", "is not a key ID, key ARN, alias/NAME or alias ARN"),
        ("awskms:///alias/", "is not a key ID"),
        ("awskms:///alias/has space", "is not a key ID"),
        (f"awskms:///arn:aws:kms:us-east-2:1111:key/{UUID}", "is not a key ID"),  # short account
        ("awskms:///arn:aws:s3:::bucket", "is not a key ID"),
        ("awskms://user@host/alias/x", "is not a HOST[:PORT] endpoint"),
        ("awskms://host:port/alias/x", "is not a HOST[:PORT] endpoint"),
    ],
)
def test_refusals_are_one_line(text: str, why: str) -> None:
    with pytest.raises(KeyURIError) as e:
        parse_key_uri(text)
    assert why in str(e.value) and "\n" not in str(e.value)
