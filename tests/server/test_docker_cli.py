"""The real docker CLI (28.2.2, client only, no daemon; tests.lab.docker.DockerCLI) runs `docker trust ...`
against `notar server`.

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
import re
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.lab import command_report, make_lab_pki
from tests.lab.docker import DIGEST, REGISTRY, DockerCLI, write_plain_key

pytestmark = pytest.mark.peers

SERVERS = ("go", "notar")  # Go notary-server (reference) and notar server
_WARNING_LINE = re.compile(r'^time="[^"]*" level=\w+ msg=.*$\n?', re.MULTILINE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------- helper


def report(what: str, argv: list[str], result: subprocess.CompletedProcess[str] | Exception) -> str:
    return command_report(what, argv, getattr(result, "stdout", None), getattr(result, "stderr", None))


def output(result: subprocess.CompletedProcess[str]) -> str:
    """stdout + stderr without logrus warning lines (they carry timestamps)."""
    return _WARNING_LINE.sub("", result.stdout + result.stderr)


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
