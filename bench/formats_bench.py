"""What signing in Notation and cosign adds to a `notar sign`, and what `notar verify` of a signed image costs.

Starts on 127.0.0.1 from one temporary directory (stopped before exit): the Debian ``docker-registry`` (no
referrers API: Notation signatures go through the ``sha256-<hex>`` tag schema) and ``notar server`` (TLS,
SQLite). A signer ``ci`` gets a key, a certificate (``notar cert generate``) and a delegation in one
repository; every measured command is a whole ``python -m notar`` process (start-up, imports, TLS, all
requests), each signing a tag of its own image:

* ``notar sign IMAGE:TAG`` with ``--format v1`` (what every run pays today), ``v1,notation``, ``v1,cosign``
  and ``v1,notation,cosign``, interleaved run by run; the table gives the median and the time added to
  v1 only;
* ``notar verify IMAGE@DIGEST`` of an image with 10 Notation signatures (trust policy + store with the
  certificate, strict), and ``notar verify --key`` of the same image with 10 cosign signatures.

Run: ``.venv/bin/python bench/formats_bench.py [--runs N]`` (default 7; about 1 minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# common first: it puts the repository root on sys.path for the imports from tests below
from common import Sample, markdown_table, run_timed, say, scratch_dir, start_peers

# isort: split
from tests.lab import child_env
from tests.registry.artifacts import push_image
from tests.registry.images import make_image

from notar.registry import RegistryClient

PYTHON = sys.executable
FORMATS = ("v1", "v1,notation", "v1,cosign", "v1,notation,cosign")
SIGNATURES = 10
PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "bench-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "bench-repo-passphrase",
}


class Notar:
    """`python -m notar` in its own HOME / DOCKER_CONFIG / XDG_CONFIG_HOME."""

    def __init__(self, home: Path, server: str, ca: Path) -> None:
        self.home = home
        self.cwd = home / "work"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.env = child_env(
            home=home,
            DOCKER_CONFIG=str(home / ".docker"),
            XDG_CONFIG_HOME=str(home / "xdg"),
            DOCKER_CONTENT_TRUST_SERVER=server,
            NOTAR_TLS_CA=str(ca),
            **PASSPHRASES,
        )

    def run(self, *args: str) -> tuple[Sample, str]:
        sample, out, _err = run_timed(
            [PYTHON, "-m", "notar", *args], env=self.env, cwd=self.cwd, capture_stdout=True
        )
        return sample, out


def trust_certificate(notar: Notar, cert: Path) -> None:
    """notation's trust files under XDG_CONFIG_HOME: the certificate in ca:bench, one strict ``*`` statement."""
    config = notar.home / "xdg" / "notation"
    store = config / "truststore" / "x509" / "ca" / "bench"
    store.mkdir(parents=True, exist_ok=True)
    (store / cert.name).write_bytes(cert.read_bytes())
    statement = {
        "name": "all",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:bench"],
        "trustedIdentities": ["*"],
    }
    (config / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [statement]}))


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measured command (median)")
    args = parser.parse_args()
    with scratch_dir("notar-formats-bench-") as tmp, start_peers(tmp, registry=True, notar=True) as peers:
        registry, server = peers.registry, peers.notar
        repo = "bench/formats"
        image = f"{registry.host}/{repo}"
        notar = Notar(tmp / "ci", server.url, server.ca)
        say("setting up signer ci (key, certificate, delegation)")
        notar.run("key", "generate", "ci", "--dir", str(notar.cwd))
        notar.run("cert", "generate", "ci", "--subject", "C=US,O=Bench,CN=ci")
        tags = {fmt: [f"{i}-{fmt.replace(',', '-')}" for i in range(args.runs + 1)] for fmt in FORMATS}
        with RegistryClient(registry.host) as client:
            push_image(client, repo, make_image("base"), "base")
            for names in tags.values():
                for tag in names:
                    push_image(client, repo, make_image(f"bench {tag}"), tag)
        notar.run("signer", "add", "ci", image, "--key", str(notar.cwd / "ci.pub"))
        notar.run("sign", f"{image}:base")  # trust data exists and is cached before the timed runs

        say(f"notar sign: {args.runs} runs per format set (+1 warm-up), interleaved")
        times: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
        for i in range(args.runs + 1):
            for fmt in FORMATS:
                sample, _ = notar.run("sign", f"{image}:{tags[fmt][i]}", "--format", fmt)
                if i > 0:  # the first round warms caches (page cache, pyc)
                    times[fmt].append(sample.wall)
        base = statistics.median(times["v1"])
        rows = [
            (f"`notar sign --format {fmt}`", ms(t), f"{(statistics.median(t) - base) * 1e3:+.0f}")
            for fmt, t in times.items()
        ]

        say(f"notar verify: an image with {SIGNATURES} Notation and {SIGNATURES} cosign signatures")
        with RegistryClient(registry.host) as client:
            subject = make_image("verified ten times")
            digest = push_image(client, repo, subject, "verify")
        for _ in range(SIGNATURES):
            notar.run("sign", f"{image}:verify", "--format", "notation,cosign")
        trust_certificate(notar, notar.cwd / "ci.crt")
        _, out = notar.run("verify", f"{image}@{digest}", "-o", "json")
        assert len(json.loads(out)["signatures"]) == SIGNATURES
        _, out = notar.run("verify", "--key", str(notar.cwd / "ci.pub"), f"{image}@{digest}", "-o", "json")
        assert len(json.loads(out)["signatures"]) == SIGNATURES
        verify: dict[str, list[float]] = {"notation": [], "cosign": []}
        for _ in range(args.runs):
            verify["notation"].append(notar.run("verify", f"{image}@{digest}")[0].wall)
            verify["cosign"].append(
                notar.run("verify", "--key", str(notar.cwd / "ci.pub"), f"{image}@{digest}")[0].wall
            )
        rows.append((f"`notar verify` ({SIGNATURES} Notation signatures)", ms(verify["notation"]), ""))
        rows.append((f"`notar verify --key` ({SIGNATURES} cosign signatures)", ms(verify["cosign"]), ""))

    print(
        f"whole `python -m notar` processes, median of {args.runs} runs, 127.0.0.1 (registry without the referrers API)\n"
    )
    print(markdown_table(("command", "median ms", "added vs v1 ms"), rows, right={1, 2}))


if __name__ == "__main__":
    main()
