"""Passphrase sources: notary's and docker's environment rules, the prompt, callbacks and chains."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest

from notar.keystore import (
    CallbackPassphrases,
    ChainPassphrases,
    EnvPassphrases,
    PassphraseRetriever,
    PassphraseUnavailableError,
    PromptPassphrases,
    notary_passphrase_env,
)

KID = "a93ed31997139adda5c21d03ee4757c5a5b6b9e3ef5dcc1dff0d7d5621c90df5"

NOTARY_ENV = {
    "NOTARY_ROOT_PASSPHRASE": "n-root",
    "NOTARY_TARGETS_PASSPHRASE": "n-targets",
    "NOTARY_SNAPSHOT_PASSPHRASE": "n-snapshot",
    "NOTARY_DELEGATION_PASSPHRASE": "n-delegation",
}
DOCKER_ENV = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "d-root",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "d-repo",
}


def ask(source: PassphraseRetriever, alias: str, *, attempt: int = 0, create_new: bool = False) -> str | None:
    try:
        return source(KID, alias, create_new=create_new, attempt=attempt)
    except PassphraseUnavailableError:
        return None


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("root", "n-root"),
        ("targets", "n-targets"),
        ("snapshot", "n-snapshot"),
        ("delegation", "n-delegation"),
        ("targets/releases", "n-delegation"),  # any non-base alias falls back to the delegation passphrase
        ("targets/a/b", "n-delegation"),
        ("alice", "n-delegation"),  # even names that are not role names (notary does not check)
        ("encrypted", "n-delegation"),
        ("timestamp", None),  # a base role without a variable: no fallback
    ],
)
def test_notary_rules(alias: str, expected: str | None) -> None:
    source = EnvPassphrases("notary", environ={**NOTARY_ENV, **DOCKER_ENV})
    assert ask(source, alias) == expected


def test_notary_rules_without_delegation_variable() -> None:
    env = {k: v for k, v in NOTARY_ENV.items() if "DELEGATION" not in k}
    source = EnvPassphrases("notary", environ=env)
    assert ask(source, "targets") == "n-targets"
    assert ask(source, "targets/releases") is None
    assert ask(source, "delegation") is None


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("root", "d-root"),
        ("targets", "d-repo"),
        ("snapshot", "d-repo"),
        ("timestamp", "d-repo"),
        ("alice", "d-repo"),  # docker signer keys
        ("targets/releases", "d-repo"),
        ("encrypted", "d-repo"),  # `docker trust key load` of an encrypted file
        ("default", "d-repo"),
    ],
)
def test_docker_rules(alias: str, expected: str) -> None:
    source = EnvPassphrases("docker", environ={**NOTARY_ENV, **DOCKER_ENV})
    assert ask(source, alias) == expected


def test_docker_root_never_falls_back_to_the_repository_passphrase() -> None:
    source = EnvPassphrases("docker", environ={"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "d-repo"})
    assert ask(source, "root") is None
    assert ask(source, "targets") == "d-repo"


@pytest.mark.parametrize(
    ("env", "alias", "expected"),
    [
        ({**NOTARY_ENV, **DOCKER_ENV}, "root", "d-root"),  # docker first
        ({**NOTARY_ENV, **DOCKER_ENV}, "targets/releases", "d-repo"),
        (NOTARY_ENV, "root", "n-root"),  # then notary
        (NOTARY_ENV, "targets", "n-targets"),
        (NOTARY_ENV, "alice", "n-delegation"),
        (NOTARY_ENV, "timestamp", None),
        ({"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "d-repo"}, "root", None),
        ({"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "d-repo", **NOTARY_ENV}, "root", "n-root"),
    ],
)
def test_notar_rules_accept_both(env: dict[str, str], alias: str, expected: str | None) -> None:
    assert ask(EnvPassphrases(environ=env), alias) == expected


def test_empty_variables_count_as_unset() -> None:
    env = {"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "", "NOTARY_TARGETS_PASSPHRASE": "n-targets"}
    assert ask(EnvPassphrases(environ=env), "targets") == "n-targets"
    assert EnvPassphrases(environ=env).variable_for("targets") == "NOTARY_TARGETS_PASSPHRASE"


def test_env_gives_up_after_two_attempts() -> None:
    source = EnvPassphrases("notary", environ=NOTARY_ENV)
    assert ask(source, "targets", attempt=0) == "n-targets"
    assert ask(source, "targets", attempt=1) == "n-targets"
    with pytest.raises(PassphraseUnavailableError) as exc:
        source(KID, "targets", create_new=False, attempt=2)
    assert "NOTARY_TARGETS_PASSPHRASE" in str(exc.value) and "n-targets" not in str(exc.value)


def test_env_messages_name_the_variables_never_the_values() -> None:
    with pytest.raises(PassphraseUnavailableError) as exc:
        EnvPassphrases(environ={})(KID, "alice", create_new=True, attempt=0)
    assert str(exc.value) == (
        "no passphrase for the alice key: set DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or "
        "NOTARY_DELEGATION_PASSPHRASE"
    )
    assert repr(EnvPassphrases(environ=NOTARY_ENV)) == "EnvPassphrases(flavor='notar')"


def test_env_reads_the_live_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    source = EnvPassphrases("docker")
    monkeypatch.delenv("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", raising=False)
    assert ask(source, "root") is None
    monkeypatch.setenv("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "live")
    assert ask(source, "root") == "live"


def test_unknown_flavor() -> None:
    with pytest.raises(ValueError, match="flavor"):
        EnvPassphrases("podman")  # type: ignore[arg-type]
    assert notary_passphrase_env("snapshot") == "NOTARY_SNAPSHOT_PASSPHRASE"
    with pytest.raises(ValueError):
        notary_passphrase_env("timestamp")


# --------------------------------------------------------------------------- prompt


class Terminal:
    """Scripted answers for PromptPassphrases; records prompts."""

    def __init__(self, *answers: str) -> None:
        self.answers: Iterator[str] = iter(answers)
        self.prompts: list[str] = []
        self.out = io.StringIO()

    def read(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self.answers)
        except StopIteration:
            raise EOFError from None

    def prompt(self, **kwargs: object) -> PromptPassphrases:
        return PromptPassphrases(read=self.read, out=self.out, interactive=True, **kwargs)  # type: ignore[arg-type]


def test_prompt_new_repository_key() -> None:
    term = Terminal("short", "long enough 1", "long enough 2", "long enough", "long enough")
    source = term.prompt()
    assert source(KID, "targets", create_new=True, attempt=0) == "long enough"
    assert term.prompts == [
        "Enter passphrase for new repository key with ID a93ed31: ",
        "Enter passphrase for new repository key with ID a93ed31: ",
        "Repeat passphrase for new repository key with ID a93ed31: ",
        "Enter passphrase for new repository key with ID a93ed31: ",
        "Repeat passphrase for new repository key with ID a93ed31: ",
    ]
    out = term.out.getvalue()
    assert "too short" in out and "do not match" in out
    assert "long enough" not in out and "short" not in out.replace("too short", "")
    # cached per alias: snapshot asks again (other alias), targets does not
    assert source(KID, "targets", create_new=False, attempt=0) == "long enough"
    assert len(term.prompts) == 5


def test_prompt_new_root_key_shows_the_warning() -> None:
    term = Terminal("root passphrase", "root passphrase")
    assert term.prompt()(KID, "root", create_new=True, attempt=0) == "root passphrase"
    assert term.prompts[0] == "Enter passphrase for new root key with ID a93ed31: "
    assert "You are about to create a new root signing key passphrase" in term.out.getvalue()


def test_prompt_new_key_gives_up_after_three_bad_entries() -> None:
    term = Terminal("a", "b", "c", "never asked")
    with pytest.raises(PassphraseUnavailableError):
        term.prompt()(KID, "alice", create_new=True, attempt=0)
    assert len(term.prompts) == 3
    assert term.prompts[0] == "Enter passphrase for new alice key with ID a93ed31: "


def test_prompt_existing_key_retries_three_times() -> None:
    term = Terminal("one", "two", "three", "four")
    source = term.prompt(display=None)
    got = [source(KID, "targets/releases", create_new=False, attempt=n) for n in range(3)]
    assert got == ["one", "two", "three"]
    with pytest.raises(PassphraseUnavailableError, match="giving up after 3"):
        source(KID, "targets/releases", create_new=False, attempt=3)
    assert term.prompts == ["Enter passphrase for targets/releases key with ID a93ed31: "] * 3
    assert term.out.getvalue().count("Passphrase incorrect. Please retry.") == 2


def test_prompt_trims_whitespace_and_allows_empty_key_id() -> None:
    term = Terminal("  spaced  ")
    assert term.prompt()("", "encrypted", create_new=False, attempt=0) == "spaced"
    assert term.prompts == ["Enter passphrase for encrypted key: "]


def test_prompt_without_terminal_gives_up() -> None:
    source = PromptPassphrases(read=lambda _p: pytest.fail("must not prompt"), interactive=False)
    with pytest.raises(PassphraseUnavailableError, match="no terminal"):
        source(KID, "root", create_new=False, attempt=0)


def test_prompt_default_terminal_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # stdin that is not a terminal (CI, pipes): the real prompt refuses instead of hanging.
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    with pytest.raises(PassphraseUnavailableError):
        PromptPassphrases()(KID, "root", create_new=False, attempt=0)


# --------------------------------------------------------------------------- callback and chain


def test_callback() -> None:
    seen: list[tuple[str, str]] = []

    def fn(key_id: str, alias: str) -> str | None:
        seen.append((key_id, alias))
        return None if alias == "root" else f"pw-{alias}"

    source = CallbackPassphrases(fn)
    assert ask(source, "targets") == "pw-targets"
    assert ask(source, "root") is None
    assert ask(source, "targets", attempt=2) is None  # gives up like the env sources
    assert seen == [(KID, "targets"), (KID, "root")]
    assert ask(CallbackPassphrases(fn, max_attempts=5), "targets", attempt=4) == "pw-targets"


def test_chain_takes_the_first_available() -> None:
    chain = ChainPassphrases(
        EnvPassphrases("docker", environ={"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "d-root"}),
        EnvPassphrases("notary", environ=NOTARY_ENV),
    )
    assert ask(chain, "root") == "d-root"
    assert ask(chain, "targets") == "n-targets"
    assert ask(chain, "timestamp") is None


def test_chain_moves_on_when_a_source_gives_up_after_wrong_passphrases() -> None:
    term = Terminal("typed-1", "typed-2", "typed-3", "typed-4")
    chain = ChainPassphrases(EnvPassphrases("notary", environ=NOTARY_ENV), term.prompt())
    answers = [ask(chain, "targets", attempt=n) for n in range(6)]
    # two tries from NOTARY_TARGETS_PASSPHRASE, then three from the terminal, then it gives up
    assert answers == ["n-targets", "n-targets", "typed-1", "typed-2", "typed-3", None]
    # a new request starts over with the first source
    assert ask(chain, "targets", attempt=0) == "n-targets"


def test_chain_message_collects_the_reasons() -> None:
    chain = ChainPassphrases(EnvPassphrases("notary", environ={}), PromptPassphrases(interactive=False))
    with pytest.raises(PassphraseUnavailableError) as exc:
        chain(KID, "targets", create_new=False, attempt=0)
    assert "NOTARY_TARGETS_PASSPHRASE" in str(exc.value) and "no terminal" in str(exc.value)
    with pytest.raises(ValueError):
        ChainPassphrases()


def test_sources_satisfy_the_protocol() -> None:
    for source in (
        EnvPassphrases(environ={}),
        PromptPassphrases(interactive=False),
        CallbackPassphrases(lambda _k, _a: None),
        ChainPassphrases(EnvPassphrases(environ={})),
    ):
        assert isinstance(source, PassphraseRetriever)
        assert "pw" not in repr(source)
