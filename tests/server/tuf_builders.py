"""Test helpers: build and sign repositories with notar.tuf, and post them as the Go client does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from notar.client.remote import encode_update
from notar.crypto import PrivateKey, PublicKey, make_root_certificate
from notar.encoding import GoTime
from notar.tuf import DelegatedRole, Envelope, FileMeta, Root, Targets, new_root, new_snapshot, new_targets

DIGEST = bytes.fromhex("64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc")


def multipart(files: dict[str, bytes], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart body with one `files` part per role, and its content type."""
    return encode_update(files, boundary=boundary)


@dataclass
class Repo:
    """A client-side view of one repository: keys and the last signed files."""

    gun: str
    timestamp_key: PublicKey
    snapshot_key: PublicKey | None = None  # None: client-held snapshot key below
    root_key: PrivateKey = field(default_factory=PrivateKey.generate)
    targets_key: PrivateKey = field(default_factory=PrivateKey.generate)
    client_snapshot_key: PrivateKey = field(default_factory=PrivateKey.generate)
    now: GoTime = field(default_factory=GoTime.now)
    root: Envelope[Root] | None = None
    targets: Targets | None = None

    def __post_init__(self) -> None:
        self.cert = make_root_certificate(self.root_key, self.gun, now=datetime.now(UTC))
        snapshot = self.snapshot_key or self.client_snapshot_key.public_key
        body = new_root(
            {
                "root": [self.cert],
                "targets": [self.targets_key.public_key],
                "snapshot": [snapshot],
                "timestamp": [self.timestamp_key],
            },
            now=self.now,
        )
        self.root = Envelope.sign(body, [(self.root_key, self.cert.key_id)])
        self.targets = new_targets(now=self.now)

    def sign_targets(self, *names: str, version: int | None = None) -> Envelope[Targets]:
        assert self.targets is not None
        for name in names:
            self.targets.targets[name] = FileMeta(401, {"sha256": DIGEST})
        self.targets.version = version if version is not None else self.targets.version
        return Envelope.sign(self.targets, [self.targets_key])

    def delegate(self, role: str, key: PrivateKey) -> None:
        assert self.targets is not None
        self.targets.delegations.keys[key.key_id] = key.public_key
        self.targets.delegations.roles.append(DelegatedRole(role, [key.key_id], 1, [""]))

    def first_publish(self, *names: str) -> dict[str, bytes]:
        assert self.root is not None
        targets = self.sign_targets(*names)
        files = {"root": self.root.data, "targets": targets.data}
        if self.snapshot_key is None:
            snap = Envelope.sign(
                new_snapshot({"root": self.root, "targets": targets}, now=self.now),
                [self.client_snapshot_key],
            )
            files["snapshot"] = snap.data
        return files
