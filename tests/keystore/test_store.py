"""FileKeyStore: the trust directory's private/ folder, shared with notary and docker."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from notar.crypto import PrivateKey, pem_blocks
from notar.keystore import (
    EnvPassphrases,
    FileKeyStore,
    InsecureKeyFileError,
    KeyExistsError,
    KeyFileError,
    KeyInfo,
    KeyNotFoundError,
    KeystoreError,
    PassphraseUnavailableError,
    WrongPassphraseError,
    decode_private_key,
    encode_private_key,
    encode_public_key,
)
from tests.keystore.conftest import constant

GUN = "127.0.0.1:5000/lab/app"
PASS = "store passphrase"


@dataclass
class Recorder:
    """A retriever that records its calls and answers from a script (None = unavailable)."""

    answers: list[str | None] = field(default_factory=list)
    default: str | None = PASS
    calls: list[tuple[str, str, bool, int]] = field(default_factory=list)

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
        self.calls.append((key_id, alias, create_new, attempt))
        answer = self.answers.pop(0) if self.answers else self.default
        if answer is None:
            raise PassphraseUnavailableError("no passphrase (test)")
        return answer


def forbid(key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
    raise AssertionError("the retriever must not be called")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def headers(path: Path) -> dict[str, str]:
    return pem_blocks(path.read_bytes())[0][1]


# --------------------------------------------------------------------------- add / get


@pytest.mark.parametrize("keytype", ["ecdsa", "rsa", "ed25519"])
def test_add_then_get(tmp_path: Path, keys: dict[str, PrivateKey], keytype: str) -> None:
    key = keys[keytype]
    rec = Recorder()
    trust = tmp_path / "trust"
    path = FileKeyStore(trust, rec).add(key, role="targets", gun=GUN)
    assert path == trust / "private" / f"{key.key_id}.key"
    assert rec.calls == [(key.key_id, "targets", True, 0)]
    assert mode(path) == 0o600
    assert mode(trust / "private") == 0o700
    assert mode(trust) == 0o700
    assert headers(path) == {"gun": GUN, "role": "targets"}
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")

    rec2 = Recorder()
    loaded, role = FileKeyStore(trust, rec2).get(key.key_id)  # a new store: nothing cached
    assert (loaded.key_id, role) == (key.key_id, "targets")
    assert rec2.calls == [(key.key_id, "targets", False, 0)]


@pytest.mark.parametrize(
    ("role", "gun", "expected_gun"),
    [
        ("root", GUN, None),
        ("targets", GUN, GUN),
        ("snapshot", GUN, GUN),
        ("timestamp", GUN, GUN),
        ("targets/releases", GUN, None),  # notary's delegation key
        ("alice", GUN, None),  # docker's signer key
        ("alice", None, None),
    ],
)
def test_gun_only_for_targets_snapshot_timestamp(
    tmp_path: Path, keys: dict[str, PrivateKey], role: str, gun: str | None, expected_gun: str | None
) -> None:
    path = FileKeyStore(tmp_path, constant(PASS)).add(keys["ed25519"], role=role, gun=gun)
    expected = {"role": role} if expected_gun is None else {"role": role, "gun": expected_gun}
    assert headers(path) == expected


@pytest.mark.parametrize("role", ["targets", "snapshot", "timestamp"])
def test_repository_keys_need_a_gun(tmp_path: Path, keys: dict[str, PrivateKey], role: str) -> None:
    with pytest.raises(KeystoreError, match="GUN"):
        FileKeyStore(tmp_path, constant(PASS)).add(keys["ed25519"], role=role)
    assert not (tmp_path / "private").exists() or not any((tmp_path / "private").iterdir())


@pytest.mark.parametrize("role", ["", "a\nb", " root"])
def test_invalid_roles_are_refused(tmp_path: Path, keys: dict[str, PrivateKey], role: str) -> None:
    with pytest.raises(KeystoreError, match="invalid role"):
        FileKeyStore(tmp_path, constant(PASS)).add(keys["ed25519"], role=role)


def test_existing_private_dir_and_umask(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    old = os.umask(0)
    try:
        path = FileKeyStore(tmp_path / "t", constant(PASS)).add(keys["ed25519"], role="root")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_get_is_cached_per_store(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    FileKeyStore(tmp_path, constant(PASS)).add(keys["ecdsa"], role="root")
    rec = Recorder()
    store = FileKeyStore(tmp_path, rec)
    first = store.get(keys["ecdsa"].key_id)
    second = store.get(keys["ecdsa"].key_id)
    assert first[0] is second[0]
    assert len(rec.calls) == 1


def test_adding_caches_the_key(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    rec = Recorder()
    store = FileKeyStore(tmp_path, rec)
    store.add(keys["ecdsa"], role="root")
    assert store.get(keys["ecdsa"].key_id) == (keys["ecdsa"], "root")
    assert [c[2] for c in rec.calls] == [True]


def test_get_retries_wrong_passphrases_with_attempt_numbers(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    kid = keys["ecdsa"].key_id
    FileKeyStore(tmp_path, constant(PASS)).add(keys["ecdsa"], role="targets/releases")
    rec = Recorder(answers=["wrong-1", "wrong-2", PASS])
    key, role = FileKeyStore(tmp_path, rec).get(kid)
    assert key.key_id == kid and role == "targets/releases"
    assert rec.calls == [(kid, "targets/releases", False, n) for n in range(3)]


def test_env_passphrase_gives_up_after_two_tries(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    kid = keys["ecdsa"].key_id
    FileKeyStore(tmp_path, constant(PASS)).add(keys["ecdsa"], role="targets", gun=GUN)
    env = {"NOTARY_TARGETS_PASSPHRASE": "definitely-wrong"}
    with pytest.raises(WrongPassphraseError) as exc:
        FileKeyStore(tmp_path, EnvPassphrases("notary", environ=env)).get(kid)
    message = str(exc.value)
    assert "definitely-wrong" not in message and PASS not in message
    assert "NOTARY_TARGETS_PASSPHRASE" in message and kid[:7] in message
    assert "\n" not in message


def test_unavailable_passphrase_is_reported_as_such(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    FileKeyStore(tmp_path, constant(PASS)).add(keys["ecdsa"], role="root")
    with pytest.raises(PassphraseUnavailableError, match="DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"):
        FileKeyStore(tmp_path, EnvPassphrases(environ={})).get(keys["ecdsa"].key_id)


def test_retriever_that_never_gives_up_is_stopped(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    FileKeyStore(tmp_path, constant(PASS)).add(keys["ed25519"], role="root")
    rec = Recorder(default="always wrong")
    with pytest.raises(WrongPassphraseError, match="after 10 attempts"):
        FileKeyStore(tmp_path, rec).get(keys["ed25519"].key_id)
    assert [c[3] for c in rec.calls] == list(range(10))


def test_empty_passphrase_writes_an_unencrypted_key_like_notary(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    path = FileKeyStore(tmp_path, constant("")).add(keys["ed25519"], role="root")
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\nrole: root\n\n")
    assert FileKeyStore(tmp_path, forbid).get(keys["ed25519"].key_id)[0].key_id == keys["ed25519"].key_id


def test_missing_and_invalid_key_ids(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, forbid)
    with pytest.raises(KeyNotFoundError, match="no private key with ID 0000000"):
        store.get("0" * 64)
    for bad in ["../../etc/passwd", "A" * 64, "abc", ""]:
        with pytest.raises(KeyNotFoundError, match="invalid key ID"):
            store.get(bad)
        assert bad not in store
    with pytest.raises(KeyNotFoundError):
        store.remove("0" * 64)


def test_file_holding_another_key_is_refused(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    path = store.add(keys["ecdsa"], role="root")
    impostor = path.with_name("f" * 64 + ".key")
    impostor.write_bytes(path.read_bytes())
    with pytest.raises(KeyFileError, match="the key inside has ID"):
        FileKeyStore(tmp_path, constant(PASS)).get("f" * 64)


def test_corrupt_file_is_a_key_file_error_with_its_path(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    path = store.add(keys["ecdsa"], role="root")
    path.write_bytes(path.read_bytes()[:150])
    with pytest.raises(KeyFileError) as exc:
        FileKeyStore(tmp_path, constant(PASS)).get(keys["ecdsa"].key_id)
    assert str(path) in str(exc.value)


# --------------------------------------------------------------------------- overwrite and atomic writes


def test_readding_the_same_key_and_role_rewrites_it(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    store = FileKeyStore(tmp_path, Recorder(answers=["first passphrase", "second passphrase"]))
    path = store.add(keys["ecdsa"], role="targets", gun=GUN)
    before = path.read_bytes()
    assert store.add(keys["ecdsa"], role="targets", gun=GUN) == path
    assert path.read_bytes() != before
    assert decode_private_key(path.read_bytes(), "second passphrase").key.key_id == keys["ecdsa"].key_id
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(("role", "gun"), [("root", None), ("targets", "other/gun"), ("snapshot", GUN)])
def test_same_key_with_another_role_is_refused(
    tmp_path: Path, keys: dict[str, PrivateKey], role: str, gun: str | None
) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    path = store.add(keys["ecdsa"], role="targets", gun=GUN)
    before = path.read_bytes()
    with pytest.raises(KeyExistsError, match="already stored as a targets key for"):
        store.add(keys["ecdsa"], role=role, gun=gun)
    assert path.read_bytes() == before


def test_unreadable_existing_file_is_not_replaced(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    private = tmp_path / "private"
    private.mkdir()
    path = private / f"{keys['ecdsa'].key_id}.key"
    path.write_bytes(b"something else entirely")
    with pytest.raises(KeyExistsError, match="remove it first"):
        FileKeyStore(tmp_path, constant(PASS)).add(keys["ecdsa"], role="root")
    assert path.read_bytes() == b"something else entirely"


def test_failed_write_leaves_the_old_file_and_no_temp_files(
    tmp_path: Path, keys: dict[str, PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    path = store.add(keys["ecdsa"], role="root")
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.add(keys["ecdsa"], role="root")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_writes_go_through_a_temp_file_and_rename(
    tmp_path: Path, keys: dict[str, PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    real_replace = Path.replace

    def spy(self: Path, target: str | os.PathLike[str]) -> Path:
        seen.append((self.name, mode(self)))
        assert self.parent == Path(target).parent  # same directory: the rename is atomic
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", spy)
    path = FileKeyStore(tmp_path, constant(PASS)).add(keys["ed25519"], role="root")
    assert len(seen) == 1
    name, temp_mode = seen[0]
    assert name.startswith(".") and name.endswith(".tmp") and temp_mode == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# --------------------------------------------------------------------------- list / legacy layouts / remove


def _legacy_tree(tmp_path: Path, keys: dict[str, PrivateKey]) -> dict[str, str]:
    """A pre-0.4 notary trust dir: root_keys/<id>_root.key and tuf_keys/<gun>/<id>_<role>.key."""
    root, targets, snapshot = keys["ecdsa"], keys["ed25519"], keys["rsa"]
    private = tmp_path / "private"
    (private / "root_keys").mkdir(parents=True)
    (private / "tuf_keys/docker.io/library/x").mkdir(parents=True)
    # really old files: no role/gun headers, legacy PEM types
    (private / "root_keys" / f"{root.key_id}_root.key").write_bytes(
        root.crypto.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(PASS.encode()),
        )
    )
    (private / "tuf_keys/docker.io/library/x" / f"{targets.key_id}_targets.key").write_bytes(
        encode_private_key(targets, PASS, role="targets", gun="docker.io/library/x").replace(
            b"gun: docker.io/library/x\nrole: targets\n", b""
        )
    )
    (private / "tuf_keys/docker.io/library/x" / f"{snapshot.key_id}.key").write_bytes(
        encode_private_key(snapshot, PASS, role="snapshot", gun="docker.io/library/x")
    )
    return {"root": root.key_id, "targets": targets.key_id, "snapshot": snapshot.key_id}


def test_list_reads_headers_only_including_legacy_layouts(
    tmp_path: Path, keys: dict[str, PrivateKey]
) -> None:
    ids = _legacy_tree(tmp_path, keys)
    delegation = PrivateKey.generate("ed25519")
    FileKeyStore(tmp_path, constant(PASS)).add(delegation, role="targets/releases", gun=GUN)
    store = FileKeyStore(tmp_path, forbid)
    infos = {i.key_id: i for i in store.list()}
    private = tmp_path / "private"
    assert infos == {
        ids["root"]: KeyInfo(ids["root"], "root", None, private / "root_keys" / f"{ids['root']}_root.key"),
        ids["targets"]: KeyInfo(
            ids["targets"],
            "targets",
            "docker.io/library/x",
            private / "tuf_keys/docker.io/library/x" / f"{ids['targets']}_targets.key",
        ),
        ids["snapshot"]: KeyInfo(
            ids["snapshot"],
            "snapshot",
            "docker.io/library/x",
            private / "tuf_keys/docker.io/library/x" / f"{ids['snapshot']}.key",
        ),
        delegation.key_id: KeyInfo(
            delegation.key_id, "targets/releases", None, private / f"{delegation.key_id}.key"
        ),
    }
    assert store.info(ids["root"]) == infos[ids["root"]]


def test_get_reads_legacy_files_with_their_inferred_role(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    ids = _legacy_tree(tmp_path, keys)
    rec = Recorder()
    store = FileKeyStore(tmp_path, rec)
    for role, kid in ids.items():
        key, got_role = store.get(kid)
        assert (key.key_id, got_role) == (kid, role)
    assert [c[1] for c in rec.calls] == ["root", "targets", "snapshot"]


def test_flat_file_wins_over_legacy_copy(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    ids = _legacy_tree(tmp_path, keys)
    store = FileKeyStore(tmp_path, constant(PASS))
    flat = store.add(keys["ecdsa"], role="root")
    assert [i.path for i in store.list() if i.key_id == ids["root"]] == [flat]
    store.remove(ids["root"])  # removes the flat file and the legacy copy
    assert not flat.exists()
    assert not any((tmp_path / "private/root_keys").iterdir())
    assert ids["root"] not in store
    with pytest.raises(KeyNotFoundError):
        store.get(ids["root"])


def test_list_skips_junk(
    tmp_path: Path, keys: dict[str, PrivateKey], caplog: pytest.LogCaptureFixture
) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    good = store.add(keys["ecdsa"], role="root")
    private = tmp_path / "private"
    (private / ("b" * 64 + ".key")).write_bytes(b"not a pem file")
    (private / ".tmpfile.tmp").write_bytes(good.read_bytes())
    (private / "README").write_text("hello")
    (private / ("c" * 64 + ".key")).symlink_to(good)
    (private / "trusted_certificates").mkdir()
    with caplog.at_level(logging.WARNING, logger="notar.keystore"):
        infos = FileKeyStore(tmp_path, forbid).list()
    assert [i.key_id for i in infos] == [keys["ecdsa"].key_id]
    assert "b" * 64 in caplog.text


def test_list_of_a_missing_trust_dir_is_empty(tmp_path: Path) -> None:
    assert FileKeyStore(tmp_path / "nope", forbid).list() == []


def test_remove(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    store.add(keys["ecdsa"], role="root")
    store.get(keys["ecdsa"].key_id)
    store.remove(keys["ecdsa"].key_id)
    assert store.list() == []
    with pytest.raises(KeyNotFoundError):
        store.get(keys["ecdsa"].key_id)  # not served from the cache either


def test_export_public(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    store = FileKeyStore(tmp_path, constant(PASS))
    store.add(keys["ecdsa"], role="alice")
    exported = FileKeyStore(tmp_path, constant(PASS)).export_public(keys["ecdsa"].key_id)
    assert exported == encode_public_key(keys["ecdsa"].public_key, role="alice")


# --------------------------------------------------------------------------- import (docker trust key load)


def _plain_pkcs8(key: PrivateKey) -> bytes:
    return key.crypto.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_import_plain_key(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    rec = Recorder()
    info = FileKeyStore(tmp_path, rec).import_key(_plain_pkcs8(keys["ecdsa"]), role="bob", gun=GUN)
    assert info == KeyInfo(
        keys["ecdsa"].key_id, "bob", None, tmp_path / "private" / f"{keys['ecdsa'].key_id}.key"
    )
    assert rec.calls == [(keys["ecdsa"].key_id, "bob", True, 0)]
    assert headers(info.path) == {"role": "bob"}
    assert decode_private_key(info.path.read_bytes(), PASS).encrypted


@pytest.mark.parametrize("as_callable", [False, True])
def test_import_encrypted_key_with_source_passphrase(
    tmp_path: Path, keys: dict[str, PrivateKey], as_callable: bool
) -> None:
    data = encode_private_key(keys["rsa"], "source pass", role="whatever")
    source = (lambda: "source pass") if as_callable else "source pass"
    info = FileKeyStore(tmp_path, constant(PASS)).import_key(
        data, role="targets", gun=GUN, source_passphrase=source
    )
    assert headers(info.path) == {"gun": GUN, "role": "targets"}
    assert FileKeyStore(tmp_path, constant(PASS)).get(info.key_id)[1] == "targets"
    with pytest.raises(WrongPassphraseError):
        FileKeyStore(tmp_path / "2", constant(PASS)).import_key(data, role="x", source_passphrase="nope")


def test_import_encrypted_key_asks_for_alias_encrypted(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    data = encode_private_key(keys["ed25519"], "source pass", role="whatever")
    rec = Recorder(answers=["wrong", "source pass", "new pass"])
    info = FileKeyStore(tmp_path, rec).import_key(data, role="signer")
    assert rec.calls == [
        ("", "encrypted", False, 0),
        ("", "encrypted", False, 1),
        (keys["ed25519"].key_id, "signer", True, 0),
    ]
    assert decode_private_key(info.path.read_bytes(), "new pass").key.key_id == keys["ed25519"].key_id


def test_import_garbage(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="input"):
        FileKeyStore(tmp_path, forbid).import_key(b"garbage", role="x", source_passphrase="p")


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_import_file_refuses_group_or_world_access(
    tmp_path: Path, keys: dict[str, PrivateKey], file_mode: int
) -> None:
    src = tmp_path / "key.pem"
    src.write_bytes(_plain_pkcs8(keys["ecdsa"]))
    src.chmod(file_mode)
    with pytest.raises(InsecureKeyFileError) as exc:
        FileKeyStore(tmp_path / "trust", forbid).import_key_file(src, role="bob")
    assert "chmod 600" in str(exc.value) and f"{file_mode:04o}" in str(exc.value)
    assert not (tmp_path / "trust").exists()


def test_import_file(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    src = tmp_path / "key.pem"
    src.write_bytes(_plain_pkcs8(keys["ecdsa"]))
    src.chmod(0o600)
    info = FileKeyStore(tmp_path / "trust", constant(PASS)).import_key_file(src, role="bob")
    assert info.key_id == keys["ecdsa"].key_id
    src.chmod(0o400)
    FileKeyStore(tmp_path / "trust", constant(PASS)).import_key_file(str(src), role="bob")


def test_import_file_errors(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "trust", forbid)
    with pytest.raises(KeyFileError, match="no such file"):
        store.import_key_file(tmp_path / "missing.pem", role="bob")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        store.import_key_file(tmp_path / "dir", role="bob")
    big = tmp_path / "big.pem"
    big.write_bytes(b"A" * (2 << 20))
    big.chmod(0o600)
    with pytest.raises(KeyFileError, match="too large"):
        store.import_key_file(big, role="bob")


def test_repr_shows_no_secrets(tmp_path: Path) -> None:
    assert repr(FileKeyStore(tmp_path, constant(PASS))) == f"FileKeyStore({str(tmp_path)!r})"
