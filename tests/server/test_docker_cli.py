"""The real docker CLI (28.2.2, client only, no daemon) runs `docker trust ...` against `notar server`.

The same scripted flow (lab/docker-trust-flow.sh, transcript in
tests/vectors/notary-0.7/docker-cli/docker-trust-flow-transcript.txt) also runs against Go notary-server,
and the `docker trust inspect` outputs of both runs must have the same structure.

Loopback registry names (``127.0.0.1:5000/...``) make docker skip verification of the trust server's
certificate; a registry name such as ``registry.example.com/...`` makes it verify the certificate
against ``$DOCKER_CONFIG/tls/<trust server host:port>/ca.crt`` (tested separately). docker never
contacts the registry in these commands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.lab import NotaryCLI, child_env, make_lab_pki

pytestmark = pytest.mark.peers

DOCKER = "/usr/local/bin/docker"
REGISTRY = "127.0.0.1:5000"  # loopback: docker does not verify the trust server certificate
ROOT_PASSPHRASE = "docker-root-pass"
REPOSITORY_PASSPHRASE = "docker-repo-pass"
DIGEST = "64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc"
SIZE = "401"
SERVERS = ("go", "notar")  # Go notary-server (reference) and notar server
_WARNING_LINE = re.compile(r'^time="[^"]*" level=\w+ msg=.*$\n?', re.MULTILINE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------- helper


class DockerCLI:
    """Runs ``docker trust ...`` with a throw-away DOCKER_CONFIG (and HOME) under ``workdir``.

    ``ca`` (if given) is installed where docker looks for the trust server's CA:
    ``$DOCKER_CONFIG/tls/<host:port of server_url>/ca.crt``. Commands run in ``workdir/keys``
    (where ``trust key generate`` writes ``NAME.pub``), with stdin closed unless ``input`` is given.
    """

    def __init__(self, server_url: str, ca: Path | None, workdir: Path, *, timeout: float = 120.0) -> None:
        self.server_url = server_url
        self.workdir = workdir
        self.config = workdir / "docker-config"
        self.home = workdir / "home"
        self.cwd = workdir / "keys"
        self.timeout = timeout
        for d in (self.config, self.home, self.cwd):
            d.mkdir(parents=True, exist_ok=True)
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        if ca is not None:
            self.install_ca(ca)

    @property
    def tls_dir(self) -> Path:
        hostport = urllib.parse.urlsplit(self.server_url).netloc
        return self.config / "tls" / hostport

    @property
    def trust_dir(self) -> Path:
        return self.config / "trust"

    def install_ca(self, ca: Path) -> None:
        shutil.copyfile(ca, self.tls_dir / "ca.crt")

    def env(self) -> dict[str, str]:
        # child_env builds the environment from scratch: no DOCKER_HOST / DOCKER_CONTEXT / proxies leak in
        return child_env(
            home=self.home,
            DOCKER_CONFIG=str(self.config),
            DOCKER_CONTENT_TRUST_SERVER=self.server_url,
            DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=ROOT_PASSPHRASE,
            DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=REPOSITORY_PASSPHRASE,
        )

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker args...``; with ``check`` a non-zero exit raises an AssertionError with the output."""
        argv = [DOCKER, *args]
        try:
            result = subprocess.run(
                argv,
                input=input,
                stdin=subprocess.DEVNULL if input is None else None,
                capture_output=True,
                text=True,
                env=self.env(),
                cwd=self.cwd,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(report(f"docker timed out after {self.timeout:.0f} s", argv, e)) from None
        if check and result.returncode != 0:
            raise AssertionError(report(f"docker failed (rc={result.returncode})", argv, result))
        return result

    def inspect(self, ref: str) -> list[dict[str, Any]]:
        """``docker trust inspect ref`` (must succeed) as parsed JSON."""
        out = self.run("trust", "inspect", ref).stdout
        doc = json.loads(out)
        assert isinstance(doc, list), out
        return doc

    def pretty(self, ref: str) -> str:
        """``docker trust inspect --pretty ref`` (must succeed): stdout, stderr warnings dropped."""
        return self.run("trust", "inspect", "--pretty", ref).stdout

    def private_keys(self) -> dict[str, dict[str, str]]:
        """Key ID -> PEM headers (role, gun) of every private key in the docker trust dir."""
        keys = {}
        for path in sorted((self.trust_dir / "private").glob("*.key")):
            headers = {}
            for line in path.read_text().splitlines()[1:]:
                if ": " not in line:
                    break
                name, value = line.split(": ", 1)
                headers[name] = value
            keys[path.stem] = headers
        return keys

    def key_of(self, role: str, gun: str | None = None) -> str:
        """The ID of the one private key with ``role`` (and ``gun``) in the docker trust dir."""
        found = [
            kid for kid, h in self.private_keys().items() if h.get("role") == role and h.get("gun") == gun
        ]
        assert len(found) == 1, (role, gun, self.private_keys())
        return found[0]

    def notary(self) -> NotaryCLI:
        """The Go notary CLI on docker's trust dir, with docker's passphrases (as the lab script does)."""
        return NotaryCLI(
            self.server_url,
            self.tls_dir / "ca.crt",
            self.trust_dir,
            passphrases={
                "root": ROOT_PASSPHRASE,
                "targets": REPOSITORY_PASSPHRASE,
                "snapshot": REPOSITORY_PASSPHRASE,
                "delegation": REPOSITORY_PASSPHRASE,
            },
            home=self.workdir / "notary-home",
        )

    def publish_tag(self, gun: str, tag: str = "1.0") -> None:
        """Publish ``tag`` into base ``targets`` with the notary CLI (lab script's notary_publish_tag)."""
        out = self.notary().run("addhash", gun, tag, SIZE, "--sha256", DIGEST, "-p")
        assert f"Successfully published changes for repository {gun}" in out.stdout, out.stdout


def report(what: str, argv: list[str], result: subprocess.CompletedProcess[str] | Exception) -> str:
    def text(s: str | bytes | None) -> str:
        return s.decode(errors="replace") if isinstance(s, bytes) else (s or "")

    out, err = getattr(result, "stdout", None), getattr(result, "stderr", None)
    return f"{what}\n$ {shlex.join(argv)}\n--- stdout ---\n{text(out)}\n--- stderr ---\n{text(err)}"


def output(result: subprocess.CompletedProcess[str]) -> str:
    """stdout + stderr without logrus warning lines (they carry timestamps)."""
    return _WARNING_LINE.sub("", result.stdout + result.stderr)


def write_plain_key(path: Path) -> Path:
    """A fresh P-256 key as unencrypted PKCS#8 PEM (mode 0600: docker refuses readable key files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = path.with_suffix(".pub")
    pub_path.write_bytes(pub)
    return pub_path


# --------------------------------------------------------------------------- structure of inspect output


@dataclass
class Structure:
    """Run-independent form of `docker trust inspect` output: GUNs and key IDs become placeholders.

    Key IDs are numbered in order of first appearance across all inspect calls of one flow, so the
    comparison also covers which roles share a key, not only how many keys each role has.
    """

    guns: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)

    def key(self, kid: str) -> str:
        assert _HEX64.fullmatch(kid), kid
        return self.ids.setdefault(kid, f"<key{len(self.ids) + 1}>")

    def name(self, text: str) -> str:
        for gun, alias in sorted(self.guns.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(gun, alias)
        return text

    def of(self, doc: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for repo in doc:
            assert set(repo) == {"Name", "SignedTags", "Signers", "AdministrativeKeys"}, repo
            out.append(
                {
                    "Name": self.name(repo["Name"]),
                    "SignedTags": [dict(t) for t in repo["SignedTags"]],
                    "Signers": [
                        {"Name": s["Name"], "Keys": [self.key(k["ID"]) for k in s["Keys"]]}
                        for s in repo["Signers"]
                    ],
                    "AdministrativeKeys": [
                        {"Name": a["Name"], "Keys": [self.key(k["ID"]) for k in a["Keys"]]}
                        for a in repo["AdministrativeKeys"]
                    ],
                }
            )
        return out

    def text(self, pretty: str) -> str:
        """--pretty output with GUNs and (full or 12-char) key IDs replaced by their placeholders."""
        pretty = self.name(pretty)
        for kid, alias in self.ids.items():
            pretty = pretty.replace(kid, alias).replace(kid[:12], alias)
        return pretty


def signers(doc: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {s["Name"]: [k["ID"] for k in s["Keys"]] for s in doc[0]["Signers"]}


def admin_keys(doc: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {a["Name"]: [k["ID"] for k in a["Keys"]] for a in doc[0]["AdministrativeKeys"]}


def signed_tags(doc: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    return [(t["SignedTag"], t["Digest"], t["Signers"]) for t in doc[0]["SignedTags"]]


# --------------------------------------------------------------------------- the scripted flow


@dataclass
class FlowResult:
    inspect: dict[str, list[dict[str, Any]]]  # step -> structure of `docker trust inspect`
    pretty: dict[str, str]  # step -> normalised `--pretty` output
    rcs: dict[str, int]  # step -> exit code


def docker_trust_flow(server_url: str, ca: Path, workdir: Path) -> FlowResult:
    """lab/docker-trust-flow.sh against one trust server, with the transcript's assertions."""
    uid = uuid.uuid4().hex[:8]
    gun = f"{REGISTRY}/notar/dapp-{uid}"
    gun2 = f"{gun}-single"
    missing = f"{REGISTRY}/notar/does-not-exist-{uid}"
    d = DockerCLI(server_url, ca, workdir)
    st = Structure({gun2: "<GUN2>", gun: "<GUN>", missing: "<MISSING>"})
    res = FlowResult({}, {}, {})

    def step(name: str, *args: str, input: str | None = None, check: bool = True) -> str:
        r = d.run(*args, input=input, check=check)
        res.rcs[name] = r.returncode
        return output(r)

    def look(name: str, ref: str) -> list[dict[str, Any]]:
        doc = d.inspect(ref)
        res.inspect[name] = st.of(doc)
        res.pretty[name] = st.text(d.pretty(ref))
        return doc

    # ---- keys
    out = step("key generate", "trust", "key", "generate", "alice")
    assert "Successfully generated and loaded private key" in out, out
    alice_pub = d.cwd / "alice.pub"
    assert "BEGIN PUBLIC KEY" in alice_pub.read_text() and "role: alice" in alice_pub.read_text()
    alice_id = d.key_of("alice")
    alice_file = d.trust_dir / "private" / f"{alice_id}.key"
    assert stat.S_IMODE(alice_file.stat().st_mode) == 0o600
    assert "ENCRYPTED PRIVATE KEY" in alice_file.read_text()

    bob_pub = write_plain_key(d.cwd / "bob.key")
    out = step("key load", "trust", "key", "load", "bob.key", "--name", "bob")
    assert 'Loading key from "bob.key"...' in out and "Successfully imported key from bob.key" in out, out
    bob_id = d.key_of("bob")
    assert stat.S_IMODE((d.trust_dir / "private" / f"{bob_id}.key").stat().st_mode) == 0o600

    # ---- first signer: initialises the repository (root + targets keys local, snapshot on the server)
    out = step("signer add alice", "trust", "signer", "add", "--key", "alice.pub", "alice", gun)
    assert f'Adding signer "alice" to {gun}...' in out, out
    assert f"Initializing signed repository for {gun}..." in out, out
    assert f'Successfully initialized "{gun}"' in out, out
    assert f"Successfully added signer: alice to {gun}" in out, out
    keys = d.private_keys()
    assert sorted(h.get("role", "") for h in keys.values()) == ["alice", "bob", "root", "targets"], keys
    targets_id = d.key_of("targets", gun)  # no snapshot key: the server manages it

    doc = look("inspect after signer add", gun)
    assert len(doc) == 1 and doc[0]["Name"] == gun
    assert doc[0]["SignedTags"] == []
    assert signers(doc) == {"alice": [alice_id]}
    admin = admin_keys(doc)
    assert list(admin) == ["Root", "Repository"], admin
    assert admin["Repository"] == [targets_id]
    assert len(admin["Root"]) == 1 and _HEX64.fullmatch(admin["Root"][0])
    root_id = admin["Root"][0]
    pretty = res.pretty["inspect after signer add"]
    assert pretty.startswith("\nNo signatures for <GUN>\n\n"), pretty
    assert "\nList of signers and their keys for <GUN>\n\nSIGNER    KEYS\nalice     <key1>\n" in pretty
    assert "\nAdministrative keys for <GUN>\n\n" in pretty
    assert "  Repository Key:\t<key3>\n  Root Key:\t<key2>\n" in pretty, pretty
    assert st.ids[root_id] == "<key2>" and st.ids[targets_id] == "<key3>"

    # ---- a tag published into base `targets` with notary, then signed by docker (releases + alice)
    d.publish_tag(gun)
    out = step("sign 1.0", "trust", "sign", f"{gun}:1.0")
    assert f"Signing and pushing trust metadata for {gun}:1.0" in out, out
    assert f"Existing signatures for tag 1.0 digest {DIGEST} from:" in out, out
    assert f"Successfully signed {gun}:1.0" in out, out
    doc = look("inspect tag after sign", f"{gun}:1.0")
    assert doc[0]["Name"] == f"{gun}:1.0"
    assert signed_tags(doc) == [("1.0", DIGEST, ["alice"])]
    assert signers(doc) == {"alice": [alice_id]}
    assert admin_keys(doc) == {"Root": [root_id], "Repository": [targets_id]}
    assert f"\n1.0          {DIGEST}   alice\n" in res.pretty["inspect tag after sign"]

    # ---- second signer
    out = step("signer add bob", "trust", "signer", "add", "--key", bob_pub.name, "bob", gun)
    assert f"Successfully added signer: bob to {gun}" in out and "Initializing" not in out, out
    doc = look("inspect after signer add bob", gun)
    assert signers(doc) == {"alice": [alice_id], "bob": [bob_id]}
    assert [s["Name"] for s in doc[0]["Signers"]] == ["bob", "alice"]  # JSON: by name, descending
    assert signed_tags(doc) == [("1.0", DIGEST, ["alice"])]
    assert "\nalice     <key1>\nbob       <key4>\n" in res.pretty["inspect after signer add bob"]

    # ---- revoke the tag: gone from the delegations, base `targets` keeps it -> "Repo Admin"
    out = step("revoke tag", "trust", "revoke", "-y", f"{gun}:1.0")
    assert f"Successfully deleted signature for {gun}:1.0" in out, out
    doc = look("inspect after revoke tag", gun)
    assert signed_tags(doc) == [("1.0", DIGEST, ["Repo Admin"])]
    assert signers(doc) == {"alice": [alice_id], "bob": [bob_id]}
    assert f"\n1.0          {DIGEST}   (Repo Admin)\n" in res.pretty["inspect after revoke tag"]

    # ---- docker 28.2.2 bug: `signer remove -f` is a silent no-op with rc 0 (same on Go notary-server)
    out = step("signer remove -f bob", "trust", "signer", "remove", "-f", "bob", gun)
    assert f'Removing signer "bob" from {gun}...' in out and "Successfully removed" not in out, out
    doc = look("inspect after signer remove -f bob", gun)
    assert signers(doc) == {"alice": [alice_id], "bob": [bob_id]}

    # ---- revoke the whole repository (delegations only)
    out = step("revoke repo", "trust", "revoke", "-y", gun)
    assert f"Successfully deleted signature for {gun}" in out, out
    doc = look("inspect after revoke repo", gun)
    assert signed_tags(doc) == [("1.0", DIGEST, ["Repo Admin"])]

    # ---- a repository that does not exist
    r = d.run("trust", "inspect", missing, check=False)
    res.rcs["inspect missing"] = r.returncode
    assert r.returncode == 1, report("inspect of a missing repo", ["trust", "inspect", missing], r)
    assert json.loads(r.stdout) == []
    assert f"no signatures or cannot access {missing}" in r.stderr, r.stderr

    # ---- re-sign (alice and bob now both sign), then `signer remove bob` answered y: still a no-op
    d.publish_tag(gun)
    out = step("re-sign 1.0", "trust", "sign", f"{gun}:1.0")
    assert f"Successfully signed {gun}:1.0" in out, out
    doc = look("inspect after re-sign", gun)
    assert [(t, h, sorted(s)) for t, h, s in signed_tags(doc)] == [("1.0", DIGEST, ["alice", "bob"])]
    out = step("signer remove bob (y)", "trust", "signer", "remove", "bob", gun, input="y\n")
    assert f'Removing signer "bob" from {gun}...' in out and "Successfully removed" not in out, out
    doc = look("inspect after signer remove bob (y)", gun)
    assert signers(doc) == {"alice": [alice_id], "bob": [bob_id]}

    # ---- single signer: removing the last releases signer, answering y, really removes her
    out = step("single: signer add alice", "trust", "signer", "add", "--key", "alice.pub", "alice", gun2)
    assert (
        f'Successfully initialized "{gun2}"' in out and f"Successfully added signer: alice to {gun2}" in out
    )
    assert d.key_of("root") and d.key_of("targets", gun2)  # the root key is reused, a new targets key
    d.publish_tag(gun2)
    out = step("single: sign 1.0", "trust", "sign", f"{gun2}:1.0")
    assert f"Successfully signed {gun2}:1.0" in out, out
    doc = look("single: inspect after sign", gun2)
    assert signed_tags(doc) == [("1.0", DIGEST, ["alice"])]
    assert signers(doc) == {"alice": [alice_id]}
    out = step("single: signer remove alice (y)", "trust", "signer", "remove", "alice", gun2, input="y\n")
    assert f'The signer "alice" signed the last released version of {gun2}.' in out, out
    assert f"Successfully removed alice from {gun2}" in out, out
    doc = look("single: inspect after signer remove", gun2)
    assert signers(doc) == {}
    assert signed_tags(doc) == [("1.0", DIGEST, ["Repo Admin"])]
    pretty = res.pretty["single: inspect after signer remove"]
    assert "List of signers" not in pretty and f"\n1.0          {DIGEST}   (Repo Admin)\n" in pretty
    assert admin_keys(doc)["Repository"] == [d.key_of("targets", gun2)]
    return res


@pytest.fixture(scope="module")
def flow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], FlowResult]:
    """``flow("go" | "notar")``: the docker flow's result against that server (run once per module)."""
    done: dict[str, FlowResult] = {}

    def get(kind: str) -> FlowResult:
        if kind not in done:
            server = request.getfixturevalue("notary_server" if kind == "go" else "notar_server")
            done[kind] = docker_trust_flow(server.url, server.ca, tmp_path_factory.mktemp(f"docker-{kind}"))
        return done[kind]

    return get


@dataclass(frozen=True)
class TrustServer:
    kind: str
    url: str
    ca: Path


@pytest.fixture(params=SERVERS)
def trust_server(request: pytest.FixtureRequest) -> Iterator[TrustServer]:
    kind = str(request.param)
    server = request.getfixturevalue("notary_server" if kind == "go" else "notar_server")
    yield TrustServer(kind, server.url, server.ca)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", SERVERS)
def test_docker_trust_flow(flow: Callable[[str], FlowResult], kind: str) -> None:
    result = flow(kind)
    assert [step for step, rc in result.rcs.items() if rc] == ["inspect missing"]


def test_inspect_structure_matches_go_notary_server(flow: Callable[[str], FlowResult]) -> None:
    go, notar = flow("go"), flow("notar")
    assert notar.rcs == go.rcs
    assert list(notar.inspect) == list(go.inspect)
    for step in go.inspect:
        assert notar.inspect[step] == go.inspect[step], step
        assert notar.pretty[step] == go.pretty[step], step


def test_verifies_trust_server_certificate_for_non_loopback_registry(
    trust_server: TrustServer, tmp_path: Path
) -> None:
    """A real registry name: docker verifies the trust server with $DOCKER_CONFIG/tls/<host:port>/ca.crt."""
    gun = f"registry.example.com/notar/app-{uuid.uuid4().hex[:8]}"
    good = DockerCLI(trust_server.url, trust_server.ca, tmp_path / "good")
    good.run("trust", "key", "generate", "alice")
    out = output(good.run("trust", "signer", "add", "--key", "alice.pub", "alice", gun))
    assert f'Successfully initialized "{gun}"' in out and f"Successfully added signer: alice to {gun}" in out
    doc = good.inspect(gun)
    assert doc[0]["Name"] == gun and signers(doc) == {"alice": [good.key_of("alice")]}
    assert [a["Name"] for a in doc[0]["AdministrativeKeys"]] == ["Root", "Repository"]

    other_ca = make_lab_pki(tmp_path / "other-pki").ca  # also named "notar test CA", other key
    cases = {"wrong CA": other_ca, "no CA (system roots)": None}
    for label, ca in cases.items():
        bad = DockerCLI(trust_server.url, ca, tmp_path / label.split()[0])
        # inspect swallows the error ("no signatures or cannot access"); --debug shows the cause
        r = bad.run("--debug", "trust", "inspect", gun, check=False)
        why = report(label, ["--debug", "trust", "inspect", gun], r)
        assert r.returncode == 1 and json.loads(r.stdout) == [], why
        assert f"no signatures or cannot access {gun}" in r.stderr, why
        assert "error contacting notary server" in r.stderr, why
        assert "x509: certificate signed by unknown authority" in r.stderr, why
        bad.run("trust", "key", "generate", "alice")
        r = bad.run("trust", "signer", "add", "--key", "alice.pub", "alice", f"{gun}-2", check=False)
        why = report(label, ["trust", "signer", "add", "--key", "alice.pub", "alice", f"{gun}-2"], r)
        assert r.returncode == 1 and "Successfully" not in r.stdout, why
        assert "x509: certificate signed by unknown authority" in r.stderr, why
        assert f"failed to add signer to: {gun}-2" in r.stderr, why
        # contrast: for a loopback registry name docker does not verify the certificate at all
        loopback_gun = f"{REGISTRY}/notar/app-{uuid.uuid4().hex[:8]}"
        out = output(bad.run("trust", "signer", "add", "--key", "alice.pub", "alice", loopback_gun))
        assert f"Successfully added signer: alice to {loopback_gun}" in out, out

    # the right CA in the same place: the same client now gets through (only the certificate was wrong)
    fixed = DockerCLI(trust_server.url, other_ca, tmp_path / "wrong")  # same DOCKER_CONFIG as "wrong CA"
    fixed.install_ca(trust_server.ca)
    assert signers(fixed.inspect(gun)) == signers(doc)
    assert admin_keys(fixed.inspect(gun)) == admin_keys(doc)
