"""The ``formats`` key of the gateway's policy file and the signature material behind it: parsed, checked,
refused in one line (exit 2 from `notar gateway`) before anything is served."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import notar.cli.gateway as cli
from notar.gateway import ConfigError, GatewayConfig
from notar.gateway.formats import Format, Mode, Requirements
from notar.gateway.policy import TrustPolicy
from notar.gateway.runtime import build_app, signature_material
from notar.signing.verification import load_cosign_keys, load_notation_trust
from tests.gateway.signing import CosignSigner, NotationSigner

UPSTREAM = "http://127.0.0.1:5000"
TRUST = "http://127.0.0.1:4443"


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[GatewayConfig]:
    """Never start uvicorn; and an empty XDG_CONFIG_HOME, so no notation configuration is found by default."""
    served: list[GatewayConfig] = []

    def fake_serve(config: GatewayConfig) -> None:
        app = build_app(config)
        asyncio.run(app.aclose())
        served.append(config)

    monkeypatch.setattr(cli, "serve", fake_serve)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in (
        "NOTAR_GATEWAY_CONFIG",
        "NOTAR_GATEWAY_NOTATION_CONFIG",
        "NOTAR_GATEWAY_TRUST_POLICY",
        "NOTAR_GATEWAY_TRUST_STORE",
        "NOTAR_GATEWAY_COSIGN_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    return served


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.gateway, [*args, "--upstream", UPSTREAM, "--trust-server", TRUST])


def error_line(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    return errors[0]


def policy(text: str, tmp_path: Path) -> TrustPolicy:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return TrustPolicy.from_file(path)


# -- the formats key ----------------------------------------------------------------------------------


def test_every_spelling_of_a_rule(tmp_path: Path) -> None:
    p = policy(
        'formats:\n  "prod/*": [notation, v1, v1]\n  "team/*": any\n  "oss/*": cosign\n'
        '  "ml/*": {any: [cosign, notation], cosign_keys: [keys/ml.pub]}\n  "x/*": {all: [v1]}\n',
        tmp_path,
    )
    prod, team, oss, ml, x = p.formats
    assert (prod.mode, prod.formats) == (Mode.ALL, (Format.V1, Format.NOTATION))  # canonical order, once
    assert team.expand_any and team.mode is Mode.ANY
    assert oss.formats == (Format.COSIGN,) and oss.cosign_keys is None
    assert ml.mode is Mode.ANY and ml.cosign_keys == (
        str(tmp_path / "keys" / "ml.pub"),
    )  # relative: the file's
    assert x.formats == (Format.V1,)
    assert p.rule_for("prod/app") is prod and p.rule_for("ml/a/b") is ml and p.rule_for("dev/app") is None


def test_first_matching_pattern_wins(tmp_path: Path) -> None:
    p = policy('formats:\n  "prod/legacy": v1\n  "prod/*": notation\n', tmp_path)
    assert p.rule_for("prod/legacy").formats == (Format.V1,)  # type: ignore[union-attr]
    assert p.rule_for("prod/new").formats == (Format.NOTATION,)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('formats:\n  "a/*": notary\n', "unknown format 'notary' (known: v1, notation, cosign, or any)"),
        ('formats:\n  "a/*": [v1, any]\n', "'any' stands alone"),
        ('formats:\n  "a/*": []\n', "non-empty list of formats"),
        ('formats:\n  "a/*": {all: [v1], any: [notation]}\n', "exactly one of all: [...] or any: [...]"),
        ('formats:\n  "a/*": {require: [v1]}\n', "unknown keys ['require']"),
        ('formats:\n  "a/*": {all: [v1], cosign_keys: [k.pub]}\n', "cosign is not one of the formats"),
        ('formats:\n  "a/*": {any: [cosign], cosign_keys: []}\n', "cosign_keys must be a list"),
        ('formats:\n  "a/*": 3\n', "expected a format, a list of formats, any, or an object"),
        ('formats:\n  "host:5000/a": v1\n', "invalid pattern 'host:5000/a'"),
        ("formats: [v1]\n", "formats must be a mapping of repository patterns"),
    ],
)
def test_bad_rules_are_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        policy(text, tmp_path)
    assert expected in str(e.value) and "\n" not in str(e.value)
    line = error_line(run("--config", str(tmp_path / "gateway.yaml")))
    assert expected in line


# -- what each rule can be checked with ---------------------------------------------------------------


def test_any_keeps_the_formats_the_gateway_can_check(tmp_path: Path) -> None:
    p = policy('formats:\n  "team/*": any\n', tmp_path)
    assert Requirements(p.formats).for_rule(p.formats[0]).formats == (Format.V1,)
    key = load_cosign_keys([CosignSigner().pub(tmp_path / "c.pub")])
    full = Requirements(p.formats, notation=True, default_keys=key).for_rule(p.formats[0])
    assert full.mode is Mode.ANY and full.formats == (Format.V1, Format.NOTATION, Format.COSIGN)
    assert full.keys == key


def test_a_named_format_without_its_material_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text('formats:\n  "prod/*": [v1, notation]\n')
    line = error_line(run("--config", str(config)))
    assert "requires notation signatures" in line or "trustpolicy.json: no such file" in line
    config.write_text('formats:\n  "oss/*": cosign\n')
    assert "give --cosign-key FILE or cosign_keys in the rule" in error_line(run("--config", str(config)))


def test_notation_material_from_a_configuration_directory(
    tmp_path: Path, no_serving: list[GatewayConfig]
) -> None:
    signer = NotationSigner()
    notation = signer.config_dir(tmp_path / "notation")
    config = tmp_path / "gateway.yaml"
    config.write_text('formats:\n  "prod/*": [v1, notation]\n')
    result = run("--config", str(config), "--notation-config", str(notation))
    assert result.exit_code == 0, result.output
    trust = load_notation_trust(config_dir=notation)
    assert trust is not None and trust.source == str(notation / "trustpolicy.json")
    # the parts, given separately
    assert load_notation_trust(
        trust_policy=notation / "trustpolicy.json", trust_store=notation / "truststore"
    )
    result = run(
        "--config",
        str(config),
        "--trust-policy",
        str(notation / "trustpolicy.json"),
        "--trust-store",
        str(notation / "truststore"),
    )
    assert result.exit_code == 0, result.output
    # the default directory ($XDG_CONFIG_HOME/notation) as notar verify reads it
    signer.config_dir(tmp_path / "xdg" / "notation")
    assert run("--config", str(config)).exit_code == 0


def test_broken_notation_material_is_one_line(tmp_path: Path) -> None:
    signer = NotationSigner()
    notation = signer.config_dir(tmp_path / "notation")
    config = tmp_path / "gateway.yaml"
    config.write_text('formats:\n  "prod/*": notation\n')
    (notation / "trustpolicy.json").write_text("{not json")
    assert "trustpolicy.json" in error_line(run("--config", str(config), "--notation-config", str(notation)))
    signer.config_dir(notation)
    for file in (notation / "truststore" / "x509" / "ca" / signer.name).iterdir():
        file.unlink()
    line = error_line(run("--config", str(config), "--notation-config", str(notation)))
    assert f"ca:{signer.name}" in line and "named by trust policy statement" in line
    store = tmp_path / "empty-store"
    store.mkdir()
    line = error_line(
        run(
            "--config",
            str(config),
            "--trust-policy",
            str(notation / "trustpolicy.json"),
            "--trust-store",
            str(store),
        )
    )
    assert "no x509/ directory" in line


def test_bad_cosign_keys_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text('formats:\n  "oss/*": cosign\n')
    (tmp_path / "bad.pub").write_text("not a key")
    line = error_line(run("--config", str(config), "--cosign-key", str(tmp_path / "bad.pub")))
    assert "cosign public key" in line and "bad.pub" in line
    config.write_text('formats:\n  "oss/*": {all: [cosign], cosign_keys: [missing.pub]}\n')
    line = error_line(run("--config", str(config)))
    assert "missing.pub" in line


def test_rule_keys_replace_the_default_keys(tmp_path: Path) -> None:
    default, own = CosignSigner().pub(tmp_path / "default.pub"), CosignSigner().pub(tmp_path / "own.pub")
    config = tmp_path / "gateway.yaml"
    config.write_text('formats:\n  "oss/*": cosign\n  "ml/*": {all: [cosign], cosign_keys: [own.pub]}\n')
    p = TrustPolicy.from_file(config)
    gc = GatewayConfig(upstream=UPSTREAM, trust_server=TRUST, cosign_keys=(str(default),))
    _, requirements = signature_material(gc, p)
    oss, ml = (requirements.for_rule(r) for r in p.formats)
    assert [k.name for k in oss.keys] == [str(default)] and [k.name for k in ml.keys] == [str(own)]


def test_help_teaches_the_formats() -> None:
    text = CliRunner().invoke(cli.gateway, ["--help"]).output
    for needed in (
        '"prod/*": [v1, notation]',
        "any",
        "--notation-config",
        "--cosign-key",
        "sha256-<hex>.sig",
    ):
        assert needed in text, needed
