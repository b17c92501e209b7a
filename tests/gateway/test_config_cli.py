"""``notar gateway`` rejects bad configuration before serving: exit 2, one ``Error:`` line, no traceback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import notar.cli.gateway as cli
from notar.gateway import ConfigError, GatewayConfig
from notar.gateway.policy import TrustPolicy
from notar.gateway.runtime import build_app

UPSTREAM = "http://127.0.0.1:5000"
TRUST = "http://127.0.0.1:4443"
HINT = "without the registry host"


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[GatewayConfig]:
    """Never start uvicorn: a configuration that passes every check is recorded instead of served."""
    served: list[GatewayConfig] = []

    def fake_serve(config: GatewayConfig) -> None:
        app = build_app(config)  # the checks serve() runs before uvicorn
        asyncio.run(app.aclose())
        served.append(config)

    monkeypatch.setattr(cli, "serve", fake_serve)
    for name in (
        "NOTAR_GATEWAY_UPSTREAM",
        "NOTAR_GATEWAY_TRUST_SERVER",
        "DOCKER_CONTENT_TRUST_SERVER",
        "NOTAR_GATEWAY_CONFIG",
        "NOTAR_GATEWAY_CACHE_TTL",
        "NOTAR_GATEWAY_TRUST_TIMEOUT",
        "NOTAR_GATEWAY_LISTEN",
        "NOTAR_TLS_CA",
    ):
        monkeypatch.delenv(name, raising=False)
    return served


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    full = list(args)
    if "--upstream" not in full:
        full += ["--upstream", UPSTREAM]
    if "--trust-server" not in full:
        full += ["--trust-server", TRUST]
    return CliRunner().invoke(cli.gateway, full, env=env)


def error_line(result: Result) -> str:
    """The single ``Error:`` line of a usage error (exit 2, no exception escaped)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == errors[0], result.output  # the message is one line: nothing after it
    return errors[0]


def config(tmp_path: Path, content: str | bytes, name: str = "gateway.yaml") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


# -- 1. unreadable files ---------------------------------------------------------------------------


def test_invalid_utf8(tmp_path: Path) -> None:
    line = error_line(run("--config", config(tmp_path, b"\xff\xfe")))
    assert "not valid UTF-8" in line and "gateway.yaml" in line
    line = error_line(run("--config", config(tmp_path, b'{"repositories": ["\xe9"]}', "p.json")))
    assert "not valid UTF-8" in line


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_deeply_nested(tmp_path: Path, name: str) -> None:
    line = error_line(run("--config", config(tmp_path, "[" * 100_000, name)))
    assert "nested too deeply" in line


def test_utf8_with_bom_is_fine(tmp_path: Path, no_serving: list[GatewayConfig]) -> None:
    result = run("--config", config(tmp_path, "\ufeffrepositories: [prod/*]\n".encode()))
    assert result.exit_code == 0, result.output
    assert len(no_serving) == 1


def test_oversized_file(tmp_path: Path) -> None:
    line = error_line(run("--config", config(tmp_path, "# padding\n" * 200_000)))
    assert "larger than" in line


# -- 2. parse errors in one line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repositories: [a\nexclude: b\n", "line 2, column"),
        ("repositories: ['a'\n", "line 2, column"),
        ("[: bad", "line 1, column"),
        ("a: b\n\x07", "unacceptable character #x0007"),
        ("key: 'unterminated\n", "line 2, column"),
        ("- a\nb: c\n", "line 2, column"),
    ],
)
def test_malformed_yaml_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    line = error_line(run("--config", config(tmp_path, text)))
    assert "is not valid YAML" in line and expected in line
    assert "^" not in line


def test_malformed_json_is_one_line(tmp_path: Path) -> None:
    line = error_line(run("--config", config(tmp_path, '{"repositories": [', "p.json")))
    assert "is not valid JSON" in line and "line 1 column" in line


def test_from_file_messages_are_single_lines(tmp_path: Path) -> None:
    for text in ("a: [\n\n\n", "{a: 1\n", "x: *undefined\n", "!!python/object:os.system x\n"):
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as e:
            TrustPolicy.from_file(path)
        assert "\n" not in str(e.value) and "line" in str(e.value), str(e.value)


# -- 3. URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://", "no host"),
        ("https://", "no host"),
        ("http:///v2", "no host"),
        ("127.0.0.1:5000", "must be http(s)://"),
        ("ftp://127.0.0.1:5000", "must be http(s)://"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://127.0.0.1:0", "invalid port"),
        ("http://127.0.0.1:", "invalid port"),
        ("http://127.0.0.1:abc", "Port"),
        ("http://[::1", "Invalid IPv6"),
        ("http://[127.0.0.1]:5000", "must be http(s)://"),
        ("http://user:secret@127.0.0.1:5000", "credentials"),
        ("http://127.0.0.1:5000/v2", "no path"),
        ("http://127.0.0.1:5000/?x=1", "no query"),
        ("http://127.0.0.1:5000#top", "no query or fragment"),
        ("http://127.0.0.1:5000\n", "whitespace"),
        ("http://127.0.0.1 :5000", "whitespace"),
    ],
)
def test_bad_upstream(url: str, expected: str) -> None:
    line = error_line(run("--upstream", url))
    assert "--upstream" in line and expected in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://", "no host"),
        ("http://127.0.0.1:70000", "out of range"),
        ("https://user@127.0.0.1:4443", "credentials"),
        ("https://127.0.0.1:4443/?a", "no query"),
        ("127.0.0.1:4443", "must be http(s)://"),
    ],
)
def test_bad_trust_server(url: str, expected: str) -> None:
    line = error_line(run("--trust-server", url))
    assert "--trust-server" in line and expected in line


@pytest.mark.parametrize(
    ("upstream", "trust"),
    [
        ("http://127.0.0.1:5000/", "https://127.0.0.1:4443/"),
        ("https://127.0.0.1", "http://127.0.0.1:4443"),
        ("http://[::1]:5000", "http://[::1]:4443"),
        ("http://localhost:5000", "https://127.0.0.1:4443/notary"),  # a trust server under a path prefix
    ],
)
def test_good_urls(upstream: str, trust: str, no_serving: list[GatewayConfig]) -> None:
    result = run("--upstream", upstream, "--trust-server", trust)
    assert result.exit_code == 0, result.output
    assert no_serving[0].upstream == upstream


def test_build_app_wraps_value_errors() -> None:
    with pytest.raises(ConfigError, match="no host"):
        build_app(GatewayConfig(upstream="http://", trust_server=TRUST))
    with pytest.raises(ConfigError, match="GUN prefix"):
        build_app(GatewayConfig(upstream=UPSTREAM, trust_server=TRUST, gun_prefix="/"))


def test_subprocess_bad_upstream() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "notar", "gateway", "--upstream", "http://", "--trust-server", TRUST],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert (
        r.stderr.strip().splitlines()[-1]
        == "Error: --upstream must be http(s)://HOST[:PORT], got 'http://': no host"
    )


# -- 4. --cache-ttl --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "3601", "1e309", "abc"])
def test_bad_cache_ttl(value: str) -> None:
    assert "--cache-ttl" in error_line(run("--cache-ttl", value))


def test_bad_cache_ttl_from_env() -> None:
    assert "--cache-ttl" in error_line(run(env={"NOTAR_GATEWAY_CACHE_TTL": "nan"}))


@pytest.mark.parametrize("value", ["0", "0.5", "3600"])
def test_good_cache_ttl(value: str, no_serving: list[GatewayConfig]) -> None:
    result = run("--cache-ttl", value)
    assert result.exit_code == 0, result.output
    assert no_serving[0].cache_ttl == float(value)


def test_build_app_checks_cache_ttl() -> None:
    for ttl in (float("nan"), float("inf"), -1.0, 1e6):
        with pytest.raises(ConfigError, match="--cache-ttl"):
            build_app(GatewayConfig(upstream=UPSTREAM, trust_server=TRUST, cache_ttl=ttl))


# -- 5. policy patterns that can never match -------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "127.0.0.1:5000/prod/*",
        "localhost:5001/*",
        "prod/app:latest",
        "Prod/*",
        "/prod/*",
        "prod/",
        "prod/*/",
        "[a-",
        "prod/[!",
        "[z-a]",
        "prod app",
        "prod/app@sha256",
        "",
    ],
)
@pytest.mark.parametrize("key", ["repositories", "exclude"])
def test_patterns_that_never_match(tmp_path: Path, pattern: str, key: str) -> None:
    line = error_line(run("--config", config(tmp_path, json.dumps({key: [pattern]}), "p.json")))
    assert "invalid pattern" in line and key in line
    with pytest.raises(ConfigError):
        TrustPolicy.from_data({key: [pattern]})
    with pytest.raises(ConfigError):
        TrustPolicy(**{key: (pattern,)})  # type: ignore[arg-type]


def test_pattern_hint(tmp_path: Path) -> None:
    line = error_line(run("--config", config(tmp_path, "repositories: ['127.0.0.1:5000/prod/*']\n")))
    assert HINT in line and "team/app" in line
    assert "malformed glob" in error_line(run("--config", config(tmp_path, "repositories: ['[a-']\n")))


@pytest.mark.parametrize("text", ["repositories: []\n", "[]\n", '{"repositories": []}'])
def test_empty_repositories(tmp_path: Path, text: str) -> None:
    line = error_line(run("--config", config(tmp_path, text)))
    assert "repositories is empty" in line and "omit the key" in line and "exclude" in line


@pytest.mark.parametrize(
    "data",
    [
        {"repositories": "prod/*"},
        {"repositories": None},
        {"repositories": [1]},
        {"repositories": [["a"]]},
        {"exclude": {"a": 1}},
        {1: "a", "b": 2},
        {"allow_index_children": "yes"},
        "prod/*",
        42,
    ],
)
def test_other_bad_policies_are_config_errors(tmp_path: Path, data: Any) -> None:
    with pytest.raises(ConfigError):
        TrustPolicy.from_data(data)
    error_line(run("--config", config(tmp_path, json.dumps(data), "p.json")))


def test_valid_policies_still_work(tmp_path: Path, no_serving: list[GatewayConfig]) -> None:
    p = TrustPolicy.from_data(
        {
            "repositories": ["prod/*", "team/app", "a/[ab]pp", "x?z", "lib/**", "my-org/my_repo.v2"],
            "exclude": ["prod/tmp-*", "[!p]*/scratch"],
            "allow_index_children": False,
        }
    )
    assert p.enabled("prod/app") and p.enabled("team/app") and p.enabled("a/bpp") and p.enabled("xyz")
    assert p.enabled("my-org/my_repo.v2")
    assert not p.enabled("prod/tmp-1") and not p.enabled("dev/scratch") and not p.enabled("other")
    assert TrustPolicy.from_data({"exclude": []}).enabled("any/thing")
    assert TrustPolicy.from_data(None).enabled("any/thing")
    assert TrustPolicy.from_data(["*"]).enabled("a/b/c")
    for text in ("", "# nothing\n", "exclude: [open/*]\n", "- prod/*\n- team/app\n"):
        result = run("--config", config(tmp_path, text))
        assert result.exit_code == 0, (text, result.output)
    assert len(no_serving) == 4


# -- 6. --trust-timeout ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "601", "abc"])
def test_bad_trust_timeout(value: str) -> None:
    assert "--trust-timeout" in error_line(run("--trust-timeout", value))


def test_bad_trust_timeout_from_env() -> None:
    assert "--trust-timeout" in error_line(run(env={"NOTAR_GATEWAY_TRUST_TIMEOUT": "0"}))


def test_trust_timeout_default_and_env(no_serving: list[GatewayConfig]) -> None:
    assert run().exit_code == 0
    assert run(env={"NOTAR_GATEWAY_TRUST_TIMEOUT": "2.5"}).exit_code == 0
    assert run("--trust-timeout", "7").exit_code == 0
    assert [c.trust_timeout for c in no_serving] == [10.0, 2.5, 7.0]


def test_trust_timeout_reaches_the_trust_server() -> None:
    app = build_app(GatewayConfig(upstream=UPSTREAM, trust_server=TRUST, trust_timeout=2.5))
    try:
        timeout = app.verifier.server._http.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2.5, 2.5, 2.5, 2.5)
        assert app.verifier.timeout == 2.5  # and the deadline of each trust check
    finally:
        asyncio.run(app.aclose())
    with pytest.raises(ConfigError, match="--trust-timeout"):
        build_app(GatewayConfig(upstream=UPSTREAM, trust_server=TRUST, trust_timeout=float("nan")))
