"""How the key and trust-directory commands fail and warn: unusable paths and bad input files are one-line
errors with the exit code that ``notar --help`` promises, no private key is left orphaned, FIFOs never hang,
insecure stored keys and wrong passphrases are named once; and the CLI's conventions they rely on (library
warnings as ``notar: warning:``, Ctrl-C exits 130)."""

from __future__ import annotations

import datetime
import errno
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notar.cli import cli
from notar.crypto import PrivateKey
from notar.keystore import (
    ChainPassphrases,
    EnvPassphrases,
    FileKeyStore,
    KeyStorageError,
    WrongPassphraseError,
    encode_private_key,
)

PASS = "repository-pass-1"
SECRET_VAR = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"


def notar_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTAR_", "DOCKER_", "NOTARY_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        DOCKER_CONFIG=str(tmp_path / "home" / ".docker"),
        DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=PASS,
    )
    env.update(extra)
    return env


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=env or notar_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notar: error: "), result.stderr
    return lines[0]


def private_keys(trust_dir: Path) -> list[str]:
    private = trust_dir / "private"
    return sorted(p.name for p in private.iterdir()) if private.is_dir() else []


# ------------------------------------------------------------------------ unusable paths


def test_generate_into_an_unusable_pub_dir_is_a_bad_argument(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    trust = tmp_path / "trust"
    for bad in ("afile/sub", "/proc/notar-nonexistent"):
        if bad.startswith("/proc") and not Path("/proc/self").exists():
            continue
        result = run(tmp_path, "key", "generate", "t4", "--dir", bad, "--trust-dir", str(trust))
        line = one_line_error(result, 2)
        assert bad in line, line
        assert private_keys(trust) == []  # and no orphaned private key


@pytest.mark.parametrize("layout", ["private-is-a-file", "trust-dir-below-a-file"])
def test_unusable_trust_dir_for_keys(tmp_path: Path, layout: str) -> None:
    (tmp_path / "afile").write_text("")
    if layout == "private-is-a-file":
        trust = tmp_path / "d"
        trust.mkdir()
        (trust / "private").write_text("")
        expected = f"{trust / 'private'}: not a directory"
    else:
        trust = tmp_path / "afile" / "sub"
        expected = str(trust)
    result = run(tmp_path, "key", "generate", "t5", "--trust-dir", str(trust), "--dir", str(tmp_path / "pub"))
    assert expected in one_line_error(result, 1)
    assert not (tmp_path / "pub" / "t5.pub").exists()  # the claimed .pub file was removed again


@pytest.mark.parametrize("layout", ["tuf-is-a-file", "trust-dir-below-a-file"])
def test_unusable_trust_dir_for_the_cache(tmp_path: Path, layout: str) -> None:
    (tmp_path / "afile").write_text("")
    if layout == "tuf-is-a-file":
        trust = tmp_path / "d"
        trust.mkdir()
        (trust / "tuf").write_text("")
        blocker = trust / "tuf"
    else:
        trust = tmp_path / "afile" / "sub"
        blocker = tmp_path / "afile"
    result = run(
        tmp_path,
        "resolve",
        "--trust-dir",
        str(trust),
        "--server",
        "https://127.0.0.1:9",
        "127.0.0.1:9/rt/app:v1",
    )
    line = one_line_error(result, 1)
    assert f"{blocker}: not a directory" in line, line


def test_key_storage_errors_are_keystore_and_os_errors(tmp_path: Path) -> None:
    (tmp_path / "private").write_text("")
    store = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={})))
    with pytest.raises(KeyStorageError, match="not a directory") as info:
        store._ensure_private_dir()
    assert isinstance(info.value, OSError)


# ------------------------------------------------------------------------ orphaned keys


def test_generate_removes_the_private_key_when_the_pub_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("notar.cli.keys.encode_public_key", full_disk)
    monkeypatch.setenv("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", PASS)
    trust, pub = tmp_path / "trust", tmp_path / "pub"
    result = CliRunner().invoke(cli, ["key", "generate", "t6", "--trust-dir", str(trust), "--dir", str(pub)])
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output
    assert private_keys(trust) == []
    assert not (pub / "t6.pub").exists()


def test_generate_refuses_an_existing_pub_before_storing_a_key(tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "t7.pub").symlink_to(tmp_path / "dangling")
    trust = tmp_path / "trust"
    result = run(tmp_path, "key", "generate", "t7", "--trust-dir", str(trust), "--dir", str(pub))
    assert result.returncode == 2 and "already exists" in result.stderr, result.stderr
    assert private_keys(trust) == []


# ------------------------------------------------------------------------ input files


def test_key_load_of_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run(tmp_path, "key", "load", str(fifo), "--trust-dir", str(tmp_path / "trust"))
    assert "not a regular file" in one_line_error(result, 2)


def _self_signed_cert() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rt")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("kind", ["truncated", "certificate", "too-large", "group-readable"])
def test_key_load_of_a_bad_input_file_exits_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "input.pem"
    if kind == "truncated":
        data = encode_private_key(PrivateKey.generate("ecdsa"), "source-pass-1", role="x")
        path.write_bytes(data[: len(data) // 2])
    elif kind == "certificate":
        path.write_bytes(_self_signed_cert())
    elif kind == "too-large":
        path.write_bytes(b"A" * (2 * 1024 * 1024))
    else:
        path.write_bytes(b"whatever")
    path.chmod(0o644 if kind == "group-readable" else 0o600)
    result = run(tmp_path, "key", "load", str(path), "--trust-dir", str(tmp_path / "trust"))
    assert str(path) in one_line_error(result, 2)
    assert private_keys(tmp_path / "trust") == []


# ------------------------------------------------------------------------ insecure stored keys


def test_group_readable_stored_key_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = PrivateKey.generate("ecdsa")
    store = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: PASS})))
    path = store.add(key, role="alice")
    path.chmod(0o640)
    fresh = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: PASS})))
    with caplog.at_level(logging.WARNING, logger="notar.keystore"):
        fresh.get(key.key_id)
        fresh.list()
        FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={}))).list()
    warnings = [r.getMessage() for r in caplog.records if "chmod 600" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and "0640" in warnings[0]


def test_secure_stored_key_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = PrivateKey.generate("ecdsa")
    store = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: PASS})))
    store.add(key, role="alice")
    with caplog.at_level(logging.WARNING, logger="notar.keystore"):
        FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: PASS}))).get(key.key_id)
    assert not caplog.records


def test_insecure_key_warning_is_one_prefixed_line_in_the_cli(tmp_path: Path) -> None:
    trust = tmp_path / "trust"
    assert (
        run(
            tmp_path, "key", "generate", "alice", "--trust-dir", str(trust), "--dir", str(tmp_path)
        ).returncode
        == 0
    )
    (key_file,) = (trust / "private").iterdir()
    key_file.chmod(0o644)
    result = run(tmp_path, "key", "list", "--trust-dir", str(trust))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notar: warning: private key file "), lines
    assert str(key_file) in lines[0] and "chmod 600" in lines[0]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o644  # only warned, never changed


# ------------------------------------------------------------------------ wording


def test_wrong_passphrase_names_the_key_once(tmp_path: Path) -> None:
    key = PrivateKey.generate("ecdsa")
    FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: PASS}))).add(
        key, role="alice"
    )
    wrong = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: "not-it-123"})))
    with pytest.raises(WrongPassphraseError) as info:
        wrong.get(key.key_id)
    message = str(info.value)
    assert message.count(key.key_id[:7]) == 1, message
    assert message.count("alice") == 1, message
    assert SECRET_VAR in message and "not-it-123" not in message


def test_wrong_import_passphrase_has_no_empty_key_id(tmp_path: Path) -> None:
    key = PrivateKey.generate("ecdsa")
    encrypted = encode_private_key(key, "source-pass-1", role="alice")
    store = FileKeyStore(tmp_path, ChainPassphrases(EnvPassphrases(environ={SECRET_VAR: "not-it-123"})))
    with pytest.raises(WrongPassphraseError) as info:
        store.import_key(encrypted, role="alice")
    message = str(info.value)
    assert not message.endswith((" )", " ")) and "key )" not in message, message
    assert message.count("the encrypted key") == 1, message


def test_key_list_names_an_unreadable_file_once(tmp_path: Path) -> None:
    trust = tmp_path / "trust"
    (trust / "private").mkdir(parents=True, mode=0o700)
    bad = trust / "private" / f"{'a' * 64}.key"
    bad.write_bytes(b"garbage\n")
    bad.chmod(0o600)
    result = run(tmp_path, "key", "list", "--trust-dir", str(trust))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    warning = next(line for line in lines if "skipping unreadable key file" in line)
    assert warning.startswith("notar: warning: "), warning
    assert warning.count(str(bad)) == 1, warning


def test_library_warnings_get_the_notar_prefix(tmp_path: Path) -> None:
    """What the updater logs (``ignoring delegation ...``) comes out as ``notar: warning: ...``."""
    script = (
        "import logging, sys\n"
        "from notar.cli import main\n"
        "import notar.cli.keys as keys\n"
        "real = keys.key.commands['list'].callback\n"
        "def noisy(*a, **k):\n"
        "    logging.getLogger('notar.client.updater').warning('ignoring delegation %s of %s: %s',\n"
        "        'targets/releases', 'rt/app', 'bad signature')\n"
        "    return real(*a, **k)\n"
        "keys.key.commands['list'].callback = noisy\n"
        "sys.exit(main(['key', 'list', '--trust-dir', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "trust")],
        capture_output=True,
        text=True,
        env=notar_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "notar: warning: ignoring delegation targets/releases of rt/app: bad signature"
        in result.stderr.splitlines()
    ), result.stderr


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from notar.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("notar.cli.keys.FileKeyStore", interrupted, raising=False)
    monkeypatch.setattr("notar.keystore.FileKeyStore", interrupted)  # Context.keystore imports it from there
    assert main(["key", "list", "--trust-dir", "/nonexistent-trust-dir"]) == 130
    err = capsys.readouterr().err
    assert "notar: error: interrupted" in err and "Aborted" not in err
