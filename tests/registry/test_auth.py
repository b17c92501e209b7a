"""WWW-Authenticate parsing, scope merging and the token cache (no network)."""

from __future__ import annotations

import pytest

from notar.registry import Challenge, parse_www_authenticate
from notar.registry.auth import TokenCache, merge_scopes


def test_docker_hub_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    [c] = parse_www_authenticate(header)
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.docker.io/token"
    assert c.service == "registry.docker.io"
    assert c.scopes == ["repository:samalba/my-app:pull,push"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        ("basic", [Challenge("basic", {})]),
        ("Basic dXNlcjpwYXNz==", [Challenge("basic", {})]),  # token68 form
        (
            'BEARER Realm = "https://a/t" , Service=reg, error="insufficient_scope"',
            [Challenge("bearer", {"realm": "https://a/t", "service": "reg", "error": "insufficient_scope"})],
        ),
        (
            r'Bearer realm="https://a/t?x=1,2",scope="repository:a:pull repository:b:pull",x="q\"uote\\d"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://a/t?x=1,2",
                        "scope": "repository:a:pull repository:b:pull",
                        "x": 'q"uote\\d',
                    },
                )
            ],
        ),
        (
            'Basic realm="r", Bearer realm="https://a/t",service="s"',
            [
                Challenge("basic", {"realm": "r"}),
                Challenge("bearer", {"realm": "https://a/t", "service": "s"}),
            ],
        ),
        (
            "Bearer realm=https://a/t,service=s",
            [Challenge("bearer", {"realm": "https://a/t", "service": "s"})],
        ),
        ("", []),
    ],
)
def test_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_several_headers_and_scopes() -> None:
    challenges = parse_www_authenticate(['Basic realm="r"', 'Bearer realm="x",scope="a:b:pull c:d:push"'])
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[1].scopes == ["a:b:pull", "c:d:push"]


@pytest.mark.parametrize("header", ['Bearer realm="unterminated', "realm=x", "Bearer @"])
def test_malformed_challenges(header: str) -> None:
    with pytest.raises(ValueError):
        parse_www_authenticate(header)


def test_merge_scopes() -> None:
    assert merge_scopes(["repository:a/b:pull", "repository:a/b:push", "repository:c:pull"]) == [
        "repository:a/b:pull,push",
        "repository:c:pull",
    ]
    assert merge_scopes(["repository:a:push,pull", "repository:a:pull"]) == ["repository:a:pull,push"]
    assert merge_scopes(["registry:catalog:*"]) == ["registry:catalog:*"]
    assert merge_scopes(["odd"]) == ["odd"]
    assert merge_scopes([]) == []


def test_token_cache_expiry() -> None:
    now = [100.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put("s", "tok", 30)
    now[0] += 29.9
    assert cache.get("s") == "tok"
    now[0] += 0.1
    assert cache.get("s") is None
    cache.put("s", "tok2", None)  # the token spec's default: 60 s
    now[0] += 59
    assert cache.get("s") == "tok2"
    now[0] += 1
    assert cache.get("s") is None
    cache.put("s", "secret-token-value", 10)
    assert "secret-token-value" not in repr(cache)
