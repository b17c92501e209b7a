"""docker config.json credentials and docker-credential-* helpers (a fake helper script on PATH)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from notar.registry import (
    Credentials,
    CredentialsError,
    DockerConfigCredentials,
    StaticCredentials,
    docker_config_path,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, config: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


HELPER = """#!/bin/sh
[ "$1" = "get" ] || exit 2
server=$(cat)
printf '%s\\n' "$server" >> "{log}"
case "$server" in
  reg.example:5000)
    printf '{{"ServerURL":"%s","Username":"bob","Secret":"helper-secret"}}' "$server" ;;
  https://index.docker.io/v1/)
    printf '{{"ServerURL":"%s","Username":"<token>","Secret":"refresh-123"}}' "$server" ;;
  slow.example)
    exec sleep 30 ;;
  broken.example)
    echo "boom: keychain locked"; exit 3 ;;
  garbage.example)
    echo "not json" ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with a dir holding ``docker-credential-test``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-test"
    script.write_text(HELPER.format(log=tmp_path / "helper.log"))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "HOME": str(tmp_path / "home"),
    }


def helper_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "helper.log").read_text().splitlines()


# ---------------------------------------------------------------------------- config.json auths


def test_auth_entry(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {"reg.example:5000": {"auth": b64("alice:pa:ss")}}})
    provider = DockerConfigCredentials(path)
    assert provider.get_credentials("reg.example:5000") == Credentials("alice", "pa:ss")
    assert provider.get_credentials("other.example") is None


@pytest.mark.parametrize("registry", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_key(tmp_path: Path, registry: str) -> None:
    path = write_config(
        tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")}}}
    )
    assert DockerConfigCredentials(path).get_credentials(registry) == Credentials("hubuser", "hubpass")


@pytest.mark.parametrize(
    "key", ["https://reg.example:5000/v2/", "http://reg.example:5000", "REG.example:5000"]
)
def test_keys_match_after_dropping_scheme_and_path(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, {"auths": {key: {"auth": b64("u:p")}}})
    assert DockerConfigCredentials(path).get_credentials("reg.example:5000") == Credentials("u", "p")


def test_identity_token_and_plain_fields(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "auths": {
                "a.example": {"auth": b64("bob:"), "identitytoken": "refresh-abc"},
                "b.example": {"username": "carol", "password": "pw"},
                "c.example": {},
            }
        },
    )
    provider = DockerConfigCredentials(path)
    assert provider.get_credentials("a.example") == Credentials("bob", "", "refresh-abc")
    assert provider.get_credentials("b.example") == Credentials("carol", "pw")
    assert provider.get_credentials("c.example") is None


def test_missing_or_empty_config_means_no_credentials(tmp_path: Path) -> None:
    assert DockerConfigCredentials(tmp_path / "nope.json").get_credentials("x.example") is None
    (tmp_path / "empty.json").write_text("")
    assert DockerConfigCredentials(tmp_path / "empty.json").get_credentials("x.example") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"auths": {"x.example": {"auth": "c2VjcmV0LXB3"', "not valid JSON"),
        ('["auths"]', "must hold a JSON object"),
        ('{"auths": []}', "'auths' must be a JSON object"),
        ('{"auths": {"x.example": {"auth": "!!not base64 sekrit!!"}}}', "not base64"),
        ('{"auths": {"x.example": {"auth": "' + b64("no-colon-sekrit") + '"}}}', "user:password"),
        ('{"auths": {"x.example": {"auth": 5}}}', "non-string"),
        ('{"credsStore": "../evil"}', "invalid credential helper name"),
    ],
)
def test_broken_config(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(CredentialsError) as info:
        DockerConfigCredentials(path).get_credentials("x.example")
    text = str(info.value)
    assert message in text
    assert str(path) in text
    assert "sekrit" not in text and "c2VjcmV0LXB3" not in text


def test_default_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert docker_config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")
    assert docker_config_path({"HOME": "/h", "DOCKER_CONFIG": "/d"}) == Path("/d/config.json")
    write_config(tmp_path / "dc", {"auths": {"x.example": {"auth": b64("u:p")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert DockerConfigCredentials().get_credentials("x.example") == Credentials("u", "p")
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_config(tmp_path / "home" / ".docker", {"auths": {"y.example": {"auth": b64("v:q")}}})
    assert DockerConfigCredentials().get_credentials("y.example") == Credentials("v", "q")


# ---------------------------------------------------------------------------- credential helpers


def test_cred_helpers_per_registry(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = write_config(
        tmp_path,
        {
            "auths": {"reg.example:5000": {}, "other.example": {"auth": b64("file:user")}},
            "credHelpers": {"reg.example:5000": "test"},
        },
    )
    provider = DockerConfigCredentials(path, env=helper_env)
    assert provider.get_credentials("reg.example:5000") == Credentials("bob", "helper-secret")
    assert provider.get_credentials("other.example") == Credentials("file", "user")  # no helper for it
    assert helper_log(tmp_path) == ["reg.example:5000"]  # the server URL came on stdin


def test_creds_store_for_every_registry(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "test"})
    provider = DockerConfigCredentials(path, env=helper_env)
    hub = provider.get_credentials("docker.io")
    assert hub == Credentials(identity_token="refresh-123")  # Username "<token>": an identity token
    assert provider.get_credentials("unknown.example") is None  # "credentials not found": anonymous
    assert helper_log(tmp_path) == ["https://index.docker.io/v1/", "unknown.example"]


def test_helper_found_through_process_path(
    tmp_path: Path, helper_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", helper_env["PATH"])
    path = write_config(tmp_path, {"credsStore": "test"})
    assert DockerConfigCredentials(path).get_credentials("reg.example:5000") == Credentials(
        "bob", "helper-secret"
    )


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        (
            "broken.example",
            "docker-credential-test failed for broken.example (exit 3): boom: keychain locked",
        ),
        ("garbage.example", "not JSON"),
    ],
)
def test_failing_helper(tmp_path: Path, helper_env: dict[str, str], registry: str, message: str) -> None:
    path = write_config(tmp_path, {"credsStore": "test"})
    with pytest.raises(CredentialsError) as info:
        DockerConfigCredentials(path, env=helper_env).get_credentials(registry)
    assert message in str(info.value)


def test_helper_timeout(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = write_config(tmp_path, {"credsStore": "test"})
    provider = DockerConfigCredentials(path, env=helper_env, helper_timeout=0.5)
    with pytest.raises(
        CredentialsError, match=r"docker-credential-test did not answer for slow.example within 0.5 s"
    ):
        provider.get_credentials("slow.example")


def test_missing_helper(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"credHelpers": {"x.example": "nonexistent"}})
    provider = DockerConfigCredentials(path, env={"PATH": str(tmp_path)})
    with pytest.raises(CredentialsError, match="docker-credential-nonexistent .* not found on PATH"):
        provider.get_credentials("x.example")


def test_secrets_never_in_repr() -> None:
    c = Credentials("alice", "pw-secret-1", "tok-secret-2")
    assert "pw-secret-1" not in repr(c) and "tok-secret-2" not in repr(c)
    assert "pw-secret-1" not in repr(StaticCredentials("alice", "pw-secret-1"))
    assert c.secrets() == ("pw-secret-1", "tok-secret-2")
