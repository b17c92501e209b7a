"""Realistic repositories built with the REAL clients on any trust server, for the moving tests
(``notar import`` / ``notar export``, issue 16).

Each builder takes the trust server's URL and CA and a work directory, runs the Go ``notary`` CLI or the
docker CLI (no daemon) there, and returns what it made: the GUN, the trust directory (root, targets and
delegation keys, and the client's cache of the repository from that server), the passphrases, the
expected targets per role, the delegations and their key IDs, the revoked tags and the root history as
served. Point the same trust directory at another server with :meth:`Repository.notary` (and, for docker,
:meth:`DockerRepository.docker`) to check that a client whose cache came from the old server carries on.

* :func:`notary_cli_repository`: ``notary init`` (client-managed snapshot), targets by hash and by file,
  ``targets/releases`` (key from ``notary key generate``) and ``targets/alice`` (X.509 certificate,
  path-restricted to ``alice/``), targets signed by both delegations, revoked tags (``notary remove`` in
  ``targets`` and in ``targets/releases``), a targets key rotation, ``root_rotations`` root key rotations,
  optionally the snapshot key moved to the server (``server_snapshot=True``), and a last release published
  after all rotations.
* :func:`docker_trust_repository`: ``docker trust signer add`` (initialises the repository with a
  server-managed snapshot) for alice (``trust key generate``) and bob (``trust key load``), tags signed with
  ``docker trust sign`` by one and by both signers, one tag revoked with ``docker trust revoke`` (it stays in
  base ``targets``: "Repo Admin"); optionally a root rotation with the notary CLI on docker's trust dir.

Every GUN carries a random suffix, so the builders can share a server. Each builder takes 1-3 s.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab.docker import REGISTRY, DockerCLI, write_plain_key
from tests.lab.notary import NotaryCLI
from tests.lab.process import loopback_get, require_loopback

NOTARY_PASSPHRASES: Mapping[str, str] = {
    "root": "moving-root-pass",
    "targets": "moving-targets-pass",
    "snapshot": "moving-snapshot-pass",
    "delegation": "moving-delegation-pass",
}
_KEY_ID = re.compile(r"with keys \[([0-9a-f]{64})\]")


# --------------------------------------------------------------------------- what a builder returns


@dataclass(frozen=True)
class Target:
    sha256: str  # hex
    size: int
    sha512: str | None = None  # hex; only for targets added from a file (`notary add`)


@dataclass(frozen=True)
class Delegation:
    name: str  # targets/releases
    key_ids: tuple[str, ...]  # sorted, as `notary delegation list` prints them (canonical IDs)
    paths: tuple[str, ...]  # ("",) = all paths
    threshold: int = 1


@dataclass(frozen=True)
class ListRow:
    """One row of ``notary list``."""

    name: str
    sha256: str
    size: int
    role: str


@dataclass(frozen=True)
class Repository:
    kind: str  # "notary-cli" | "docker"
    gun: str
    server_url: str  # the server the repository was built on
    ca: Path
    trust_dir: Path  # keys (private/) + the client's cache (tuf/<gun>/metadata) from server_url
    home: Path  # HOME for the notary CLI on trust_dir
    passphrases: Mapping[str, str]  # NotaryCLI roles (root, targets, snapshot, delegation) -> passphrase
    targets: Mapping[str, Mapping[str, Target]]  # role -> target name -> Target (what each role lists now)
    revoked: Mapping[str, tuple[str, ...]]  # role -> names once published there, then removed
    delegations: Mapping[str, Delegation]  # role -> Delegation, as `notary delegation list` shows it
    keys: Mapping[str, tuple[str, ...]]  # role -> canonical IDs of the private keys in trust_dir
    root_version: int
    root_history: tuple[bytes, ...]  # 1.root.json .. N.root.json, exactly as served by server_url
    snapshot_on_server: bool

    def notary(self, server_url: str | None = None, ca: Path | None = None) -> NotaryCLI:
        """The Go notary CLI on this repository's trust dir (and its passphrases), against ``server_url``
        (default: the server it was built on)."""
        return NotaryCLI(
            server_url or self.server_url,
            ca or self.ca,
            self.trust_dir,
            passphrases=self.passphrases,
            home=self.home,
        )

    def root_key_ids(self) -> list[tuple[str, ...]]:
        """Per root version (1..N): the root role's key IDs as listed in that root.json (x509 IDs)."""
        out = []
        for raw in self.root_history:
            signed = json.loads(raw)["signed"]
            out.append(tuple(sorted(signed["roles"]["root"]["keyids"])))
        return out

    def expected_listing(self, role: str | None = None) -> list[ListRow]:
        """What ``notary list GUN [-r ROLE]`` must show: each name once, from the first role of the walk
        (``targets`` first, then its delegations; the builders never put one name in two delegations
        without also putting it in ``targets``)."""
        roles = [role] if role else ["targets", *sorted(self.delegations)]
        rows: dict[str, ListRow] = {}
        for r in roles:
            for name, t in self.targets.get(r, {}).items():
                if name in rows:
                    assert rows[name].role == "targets" or role, f"ambiguous listing of {name}"
                    continue
                rows[name] = ListRow(name, t.sha256, t.size, r)
        return sorted(rows.values(), key=lambda row: row.name)


@dataclass(frozen=True)
class DockerRepository(Repository):
    docker_workdir: Path  # DockerCLI(url, ca, docker_workdir): DOCKER_CONFIG = docker_workdir/docker-config
    signers: Mapping[str, str]  # docker signer name -> key ID (its private key is in trust_dir)
    signed_tags: Mapping[str, tuple[str, tuple[str, ...]]]  # tag -> (digest, sorted signers) as inspect shows
    inspect: list[dict[str, Any]]  # `docker trust inspect GUN` (JSON) against server_url, at the end
    pretty: str  # `docker trust inspect --pretty GUN`, at the end

    def docker(self, server_url: str | None = None, ca: Path | None = None) -> DockerCLI:
        """The docker CLI with this repository's DOCKER_CONFIG (keys + cache), against ``server_url``
        (default: the server it was built on); ``ca`` goes to $DOCKER_CONFIG/tls/<host:port>/ca.crt."""
        return DockerCLI(server_url or self.server_url, ca or self.ca, self.docker_workdir)


# --------------------------------------------------------------------------- reading the real clients


def parse_notary_list(stdout: str) -> list[ListRow]:
    """Rows of ``notary list`` output (none for "No targets present in this repository.")."""
    lines = stdout.splitlines()
    rows = []
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("----")) + 1
    except StopIteration:
        assert "No targets present" in stdout, stdout
        return []
    for line in lines[start:]:
        if not line.strip():
            continue
        name, digest, size, role = line.split()
        rows.append(ListRow(name, digest, int(size), role))
    return sorted(rows, key=lambda row: row.name)


def notary_listing(cli: NotaryCLI, gun: str, role: str | None = None) -> list[ListRow]:
    """``notary list GUN [-r ROLE]``, parsed."""
    args = ["list", gun] + (["-r", role] if role else [])
    return parse_notary_list(cli.run(*args).stdout)


def _columns(stdout: str) -> list[list[str]]:
    """Cells of a notary table (header, ``----`` rule, rows), cut at the header's column starts."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    except StopIteration:
        return []
    header = lines[rule - 1]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    rows = []
    for line in lines[rule + 1 :]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(cells)
    return rows


def _paths(cell: str) -> tuple[str, ...]:
    if cell == '"" <all paths>':
        return ("",)
    return tuple(sorted(p.strip() for p in cell.split(",") if p.strip()))


def notary_delegations(cli: NotaryCLI, gun: str) -> dict[str, Delegation]:
    """``notary delegation list GUN``, parsed (a role with several keys spans several lines)."""
    out = cli.run("delegation", "list", gun).stdout
    found: dict[str, dict[str, Any]] = {}
    current = None
    for role, paths, keyid, threshold in _columns(out):
        if role:
            current = found.setdefault(
                role, {"paths": _paths(paths), "keys": [], "threshold": int(threshold)}
            )
        assert current is not None, out
        if keyid:
            current["keys"].append(keyid)
    return {
        role: Delegation(role, tuple(sorted(d["keys"])), d["paths"], d["threshold"])
        for role, d in found.items()
    }


def trust_dir_keys(trust_dir: Path, gun: str) -> dict[str, tuple[str, ...]]:
    """Role -> canonical IDs of the private keys in ``trust_dir/private`` that serve ``gun``: from the PEM
    headers (``role``, ``gun``; root and delegation keys carry no GUN). Read from the files because
    ``notary key list`` cuts long GUNs to 25 characters with a leading "..."."""
    keys: dict[str, list[str]] = {}
    for path in sorted((trust_dir / "private").glob("*.key")):
        headers = {}
        for line in path.read_text().splitlines()[1:]:
            if ": " not in line:
                break
            name, value = line.split(": ", 1)
            headers[name] = value
        if headers.get("gun", gun) == gun:
            keys.setdefault(headers.get("role", "?"), []).append(path.stem)
    return {role: tuple(sorted(ids)) for role, ids in keys.items()}


def root_history(server_url: str, ca: Path, gun: str) -> tuple[bytes, ...]:
    """Every root version of ``gun`` as served (``N.root.json`` for N = 1..current)."""
    base = f"{require_loopback(server_url)}/v2/{gun}/_trust/tuf"
    status, body = loopback_get(f"{base}/root.json", ca=ca)
    assert status == 200, (status, body[:200])
    version = int(json.loads(body)["signed"]["version"])
    out = []
    for n in range(1, version + 1):
        status, raw = loopback_get(f"{base}/{n}.root.json", ca=ca)
        assert status == 200, (n, status, raw[:200])
        out.append(raw)
    assert out[-1] == body
    return tuple(out)


# --------------------------------------------------------------------------- helpers


def _fake_digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A P-256 key (unencrypted PKCS#8, 0600) and a self-signed certificate CN=name (like openssl req -x509)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _published(out: str, gun: str) -> None:
    assert f"Successfully published changes for repository {gun}" in out, out


# --------------------------------------------------------------------------- the notary CLI repository


def notary_cli_repository(
    server_url: str,
    ca: Path,
    workdir: Path,
    *,
    gun: str | None = None,
    server_snapshot: bool = False,
    root_rotations: int = 2,
    passphrases: Mapping[str, str] = NOTARY_PASSPHRASES,
) -> Repository:
    """Build a repository with the Go notary CLI on ``server_url`` (see the module docstring).

    Root versions: 1 (init), +1 for the targets key rotation, +1 per root rotation, +1 for the snapshot
    key moving to the server (``server_snapshot``): 4 by default, 5 with ``server_snapshot``.
    """
    gun = gun or f"127.0.0.1:5000/moving/notary-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True, exist_ok=True)
    keys_dir = workdir / "keys"
    keys_dir.mkdir(exist_ok=True)
    n = NotaryCLI(server_url, ca, workdir / "trust", passphrases, home=workdir / "home")
    targets: dict[str, dict[str, Target]] = {"targets": {}, "targets/releases": {}, "targets/alice": {}}
    revoked: dict[str, list[str]] = {}

    def addhash(name: str, role: str = "targets", size: int = 1024) -> None:
        t = Target(_fake_digest(f"{gun}/{role}/{name}"), size)
        n.run(
            "addhash",
            gun,
            name,
            str(size),
            "--sha256",
            t.sha256,
            *(["-r", role] if role != "targets" else []),
        )
        targets[role][name] = t

    def remove(name: str, role: str = "targets") -> None:
        n.run("remove", gun, name, *(["-r", role] if role != "targets" else []))
        del targets[role][name]
        revoked.setdefault(role, []).append(name)

    # ---- root v1: root, targets and snapshot keys local, timestamp on the server
    _published(n.run("init", gun, "-p").stdout, gun)
    addhash("1.0", size=401)
    addhash("old", size=512)  # revoked below
    payload = workdir / "config.json"
    payload.write_bytes(json.dumps({"app": gun, "nonce": uuid.uuid4().hex}).encode())
    data = payload.read_bytes()
    n.run("add", gun, "config.json", str(payload))
    targets["targets"]["config.json"] = Target(
        hashlib.sha256(data).hexdigest(), len(data), hashlib.sha512(data).hexdigest()
    )
    _published(n.run("publish", gun).stdout, gun)

    # ---- delegations: targets/releases from `notary key generate` (its private key copied into the trust
    # dir by hand, as `key import` refuses it), targets/alice from an X.509 certificate (key imported)
    n.run("key", "generate", "ecdsa", "--role", "targets/releases", "-o", str(keys_dir / "releases"))
    out = n.run("delegation", "add", gun, "targets/releases", str(keys_dir / "releases.pem"), "--all-paths")
    found = _KEY_ID.search(out.stdout)
    assert found, out.stdout
    releases_id = found.group(1)
    private = n.trust_dir / "private" / f"{releases_id}.key"
    shutil.copyfile(keys_dir / "releases-key.pem", private)
    private.chmod(0o600)
    alice_key, alice_crt = _self_signed(keys_dir, "alice")
    n.run("key", "import", str(alice_key), "--role", "targets/alice")
    n.run("delegation", "add", gun, "targets/alice", str(alice_crt), "--paths", "alice/")
    _published(n.run("publish", gun).stdout, gun)

    # ---- targets signed by the delegation keys
    addhash("2.0", "targets/releases", size=401)
    addhash("2.1-rc1", "targets/releases", size=402)  # revoked below
    addhash("alice/tool", "targets/alice", size=2048)
    addhash("alice/tool-beta", "targets/alice", size=2049)
    _published(n.run("publish", gun).stdout, gun)

    # ---- revoked tags: one in base targets, one in a delegation
    remove("old")
    remove("2.1-rc1", "targets/releases")
    _published(n.run("publish", gun).stdout, gun)

    # ---- rotations: targets key, then the root key (each a new root version signed by old and new keys)
    out = n.run("key", "rotate", gun, "targets")
    assert "Successfully rotated targets key" in out.stdout, out.stdout
    for _ in range(root_rotations):
        out = n.run("key", "rotate", gun, "root", input="yes\n")
        assert "Successfully rotated root key" in out.stdout, out.stdout + out.stderr
    if server_snapshot:
        out = n.run("key", "rotate", gun, "snapshot", "-r")
        assert "Successfully rotated snapshot key" in out.stdout, out.stdout

    # ---- a release after all rotations
    addhash("3.0", "targets/releases", size=403)
    _published(n.run("publish", gun).stdout, gun)

    history = root_history(server_url, ca, gun)
    expected_version = 2 + root_rotations + (1 if server_snapshot else 0)
    assert len(history) == expected_version, (len(history), expected_version)
    keys = trust_dir_keys(n.trust_dir, gun)
    assert ("snapshot" in keys) is not server_snapshot, keys
    assert len(keys["root"]) == 1 + root_rotations, keys
    delegations = notary_delegations(n, gun)
    assert delegations["targets/releases"].key_ids == (releases_id,), delegations
    assert delegations["targets/alice"].paths == ("alice/",), delegations
    return Repository(
        kind="notary-cli",
        gun=gun,
        server_url=server_url,
        ca=ca,
        trust_dir=n.trust_dir,
        home=n.home,
        passphrases=dict(n.passphrases),
        targets=targets,
        revoked={role: tuple(names) for role, names in revoked.items()},
        delegations=delegations,
        keys=keys,
        root_version=len(history),
        root_history=history,
        snapshot_on_server=server_snapshot,
    )


# --------------------------------------------------------------------------- the docker repository


def docker_trust_repository(
    server_url: str,
    ca: Path,
    workdir: Path,
    *,
    registry: str = REGISTRY,
    gun: str | None = None,
    rotate_root: bool = False,
) -> DockerRepository:
    """Build a repository with ``docker trust`` on ``server_url`` (see the module docstring).

    ``registry`` names the image (docker never contacts it here): a loopback name (default) makes docker
    skip verifying the trust server's certificate, another name (e.g. ``registry.example.com``) makes it
    verify it against ``ca``. With ``rotate_root`` the notary CLI rotates the root key on docker's trust dir
    at the end (docker itself cannot): root version 2 instead of 1.
    """
    gun = gun or f"{registry}/moving/docker-{uuid.uuid4().hex[:8]}"
    d = DockerCLI(server_url, ca, workdir)
    targets: dict[str, dict[str, Target]] = {"targets": {}}
    signed: dict[str, tuple[str, tuple[str, ...]]] = {}

    def sign(tag: str, size: int, signers: tuple[str, ...]) -> None:
        t = Target(_fake_digest(f"{gun}:{tag}"), size)
        d.publish_tag(gun, tag, digest=t.sha256, size=size)  # into base targets (docker needs it there)
        targets["targets"][tag] = t
        out = d.run("trust", "sign", f"{gun}:{tag}")
        assert f"Successfully signed {gun}:{tag}" in out.stdout + out.stderr, out.stdout + out.stderr
        for role in ("targets/releases", *(f"targets/{s}" for s in signers)):
            targets.setdefault(role, {})[tag] = t
        signed[tag] = (t.sha256, tuple(sorted(signers)))

    # ---- two signer keys: alice generated by docker, bob loaded from a PEM file
    d.run("trust", "key", "generate", "alice")
    bob_pub = write_plain_key(d.cwd / "bob.key")
    d.run("trust", "key", "load", "bob.key", "--name", "bob")
    alice_id, bob_id = d.key_of("alice"), d.key_of("bob")

    # ---- alice: initialises the repository (root + targets keys local, snapshot on the server)
    out = d.run("trust", "signer", "add", "--key", "alice.pub", "alice", gun)
    assert f'Successfully initialized "{gun}"' in out.stdout + out.stderr, out.stdout + out.stderr
    sign("1.0", 401, ("alice",))
    # ---- bob joins; later tags are signed by both
    d.run("trust", "signer", "add", "--key", bob_pub.name, "bob", gun)
    sign("2.0", 402, ("alice", "bob"))
    sign("2.1-rc1", 403, ("alice", "bob"))
    # ---- revoked: gone from every delegation, base targets keeps it ("Repo Admin" in inspect)
    out = d.run("trust", "revoke", "-y", f"{gun}:2.1-rc1")
    assert f"Successfully deleted signature for {gun}:2.1-rc1" in out.stdout + out.stderr, out.stdout
    for role in ("targets/releases", "targets/alice", "targets/bob"):
        del targets[role]["2.1-rc1"]
    signed["2.1-rc1"] = (targets["targets"]["2.1-rc1"].sha256, ("Repo Admin",))
    revoked = {role: ("2.1-rc1",) for role in ("targets/alice", "targets/bob", "targets/releases")}

    n = d.notary()
    if rotate_root:
        out = n.run("key", "rotate", gun, "root", input="yes\n")
        assert "Successfully rotated root key" in out.stdout, out.stdout + out.stderr

    history = root_history(server_url, ca, gun)
    assert len(history) == (2 if rotate_root else 1), len(history)
    delegations = notary_delegations(n, gun)
    assert delegations["targets/releases"].key_ids == tuple(sorted((alice_id, bob_id))), delegations
    assert delegations["targets/alice"].key_ids == (alice_id,), delegations
    keys = trust_dir_keys(n.trust_dir, gun)
    assert "snapshot" not in keys, keys
    inspect = d.inspect(gun)
    got = {t["SignedTag"]: (t["Digest"], tuple(sorted(t["Signers"]))) for t in inspect[0]["SignedTags"]}
    assert got == signed, (got, signed)
    return DockerRepository(
        kind="docker",
        gun=gun,
        server_url=server_url,
        ca=ca,
        trust_dir=d.trust_dir,
        home=n.home,
        passphrases=dict(n.passphrases),
        targets=targets,
        revoked=revoked,
        delegations=delegations,
        keys=keys,
        root_version=len(history),
        root_history=history,
        snapshot_on_server=True,
        docker_workdir=workdir,
        signers={"alice": alice_id, "bob": bob_id},
        signed_tags=signed,
        inspect=inspect,
        pretty=d.pretty(gun),
    )
