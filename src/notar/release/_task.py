"""Release tasks: what to sign, with which signer, and where its key and passphrase are kept.

A task file is YAML with one top-level key, ``tasks``, holding a list of task mappings::

    tasks:
      - image: registry.example.com/team/app:1.4.2
        src: build/app-oci            # optional: OCI layout dir or docker save archive to push first
        signer_name: ci
        key_secret_name: notar/signers/ci/key
        passphrase_secret_name: notar/signers/ci/passphrase
        region: eu-west-1

Every task carries exactly those keys (``src`` is the only optional one). Everything is checked before
anything is fetched or pushed: unknown, missing and mistyped keys, the image reference, the signer name
and that ``src`` exists; each error names the file and the line (from ``yaml.compose`` node marks).

A signer whose key never leaves AWS KMS is released with ``key`` instead of the two secrets::

    tasks:
      - image: registry.example.com/team/app:1.4.2
        signer_name: ci
        key: awskms:///alias/release-signer   # awskms://[ENDPOINT]/{key id | key ARN | alias/NAME | alias ARN}
        region: eu-west-1                     # optional: the key ARN's region, else AWS_REGION & co.

(``key`` and the secret names exclude each other.)

Either form may add signature formats besides Notary v1 (``notar sign --format``), signed from the same
resolved digest before the tag moves::

        formats: [v1, notation, cosign]          # optional; default [v1]; or "v1,notation"
        cert_secret_name: notar/signers/ci/cert  # with notation: the signer's PEM certificate chain

(``cert_secret_name`` is required with ``notation`` and refused without it.)
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from notar.errors import NotarError
from notar.registry import InvalidReferenceError, Reference, parse_reference

__all__ = [
    "FIELDS",
    "MAX_TASK_FILE_BYTES",
    "RELEASE_FORMATS",
    "ReleaseTask",
    "TaskError",
    "check_value",
    "load_tasks",
    "make_task",
]

REQUIRED: Final = ("image", "signer_name", "key_secret_name", "passphrase_secret_name", "region")
OPTIONAL: Final = ("src", "formats", "cert_secret_name")
KMS_REQUIRED: Final = ("image", "signer_name", "key")  # the KMS form: `key` instead of the secrets
KMS_OPTIONAL: Final = ("src", "region", "formats", "cert_secret_name")
#: The signature formats a task can write (``formats``), named as ``notar sign --format`` names them.
RELEASE_FORMATS: Final = ("v1", "notation", "cosign")
FIELDS: Final = REQUIRED + OPTIONAL + ("key",)

_SIGNER = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
# Secrets Manager names: 1-512 of ASCII letters, digits and /_+=.@- (an ARN is accepted too).
_SECRET = re.compile(
    r"(?:arn:[a-z0-9-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}\Z"
)
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+\Z")
MAX_TASK_FILE_BYTES: Final = 4 * 1024 * 1024


class TaskError(NotarError):
    """A task file or task flags are invalid (exit code 2). The message names the file and line."""


@dataclass(frozen=True, slots=True)
class ReleaseTask:
    """One image to (push and) sign."""

    image: str
    signer_name: str
    key_secret_name: str
    passphrase_secret_name: str
    region: str
    src: Path | None = None
    where: str = "<flags>"  # file:line of the task, for messages
    key: str | None = None  # awskms:///... (then key_secret_name/passphrase_secret_name are "")
    formats: tuple[str, ...] = ("v1",)  # of RELEASE_FORMATS, in order, no repeats
    cert_secret_name: str | None = None  # the signer's PEM certificate chain, for notation

    @property
    def reference(self) -> Reference:
        return parse_reference(self.image)


def check_value(name: str, value: str) -> str | None:
    """Why *value* is not acceptable for task field *name* (``image``, ``signer_name``,
    ``key_secret_name``, ``passphrase_secret_name``, ``region``, ``key``), or None."""
    if not value or value != value.strip():
        return "must be a non-empty string without surrounding spaces"
    if name == "image":
        try:
            ref = parse_reference(value)
        except InvalidReferenceError as e:
            return str(e)
        if ref.tag is None or ref.digest is not None:
            return f"{value!r} must be IMAGE:TAG (a tag, no digest): the tag is what gets signed"
    elif name == "signer_name":
        if not _SIGNER.match(value) or value == "releases":
            return (
                f"{value!r} is not a signer name (lower-case letters, digits, '-' and '_', "
                "starting with a letter or digit; not 'releases')"
            )
    elif name in ("key_secret_name", "passphrase_secret_name", "cert_secret_name"):
        if not _SECRET.match(value):
            return f"{value!r} is not a Secrets Manager secret name or ARN"
    elif name == "region" and not _REGION.match(value):
        return f"{value!r} is not an AWS region name (like eu-west-1)"
    elif name == "key":
        return _key_uri_problem(value)
    elif name == "formats":
        return _formats_problem([part.strip() for part in value.split(",")])
    return None


def _formats_problem(names: list[str]) -> str | None:
    """Why a ``formats`` list is not acceptable (empty, unknown or repeated names), or None."""
    if not names or any(not n for n in names):
        return f"must list one or more of {', '.join(RELEASE_FORMATS)}"
    unknown = [n for n in names if n not in RELEASE_FORMATS]
    if unknown:
        return f"unknown format {unknown[0]!r} (one of {', '.join(RELEASE_FORMATS)})"
    if len(set(names)) != len(names):
        return "lists a format twice"
    return None


def _formats_value(path: Path, node: yaml.Node) -> str:
    """A task file's ``formats``: a list of names, or one comma-separated string; as that string."""
    if isinstance(node, yaml.SequenceNode):
        names = []
        for item in node.value:
            if not (isinstance(item, yaml.ScalarNode) and item.tag == "tag:yaml.org,2002:str"):
                raise TaskError(
                    f"{path}:{_line(item)}: formats: a format must be a string, got {_kind(item)}"
                )
            names.append(item.value.strip())
    elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        names = [part.strip() for part in node.value.split(",")]
    else:
        raise TaskError(
            f"{path}:{_line(node)}: formats must be a list like [v1, notation], got {_kind(node)}"
        )
    why = _formats_problem(names)
    if why:
        raise TaskError(f"{path}:{_line(node)}: formats: {why}")
    return ",".join(names)


def _with_formats(task: ReleaseTask, values: dict[str, str]) -> ReleaseTask:
    """*task* with its ``formats`` (v1 when not given) and ``cert_secret_name``, checked together:
    Notation signatures need the certificate chain, and a certificate without notation is a mistake."""
    text = values.get("formats")
    formats = tuple(part.strip() for part in text.split(",")) if text else ("v1",)
    cert = values.get("cert_secret_name") or None
    if "notation" in formats and cert is None:
        raise TaskError(
            f"{task.where}: formats: notation needs the signer's certificate chain: set cert_secret_name (a "
            "secret holding the PEM chain, leaf first, as `notar cert generate` writes it)"
        )
    if cert is not None and "notation" not in formats:
        raise TaskError(f"{task.where}: cert_secret_name is for notation signatures: add notation to formats")
    return dataclasses.replace(task, formats=formats, cert_secret_name=cert)


def _key_uri_problem(value: str) -> str | None:
    """Why *value* is not an ``awskms://`` key reference, or None."""
    from notar.kms import KeyURIError, parse_key_uri

    try:
        parse_key_uri(value)
    except KeyURIError as e:
        return str(e)
    return None


def _missing(values: dict[str, str]) -> tuple[list[str], str | None]:
    """The keys a task with *values* lacks, and why its keys conflict (``key`` vs the secret names)."""
    if "key" in values:
        both = [k for k in ("key_secret_name", "passphrase_secret_name") if k in values]
        if both:
            return (
                [],
                f"key (an AWS KMS key) and {' / '.join(both)} (a key in Secrets Manager) exclude each other",
            )
        return [k for k in KMS_REQUIRED if k not in values], None
    return [k for k in REQUIRED if k not in values], None


def _task(values: dict[str, str], src: Path | None, where: str) -> ReleaseTask:
    return ReleaseTask(
        image=values["image"],
        signer_name=values["signer_name"],
        key_secret_name=values.get("key_secret_name", ""),
        passphrase_secret_name=values.get("passphrase_secret_name", ""),
        region=values.get("region", ""),
        src=src,
        where=where,
        key=values.get("key"),
    )


def make_task(values: dict[str, str], *, where: str = "<flags>", base: Path | None = None) -> ReleaseTask:
    """A task from already-typed values (the command-line flags); raises :class:`TaskError`."""
    missing, conflict = _missing({k: v for k, v in values.items() if v})
    if conflict:
        raise TaskError(f"{where}: {conflict}")
    if missing:
        raise TaskError(f"{where}: missing {', '.join(missing)}")
    for name, value in values.items():
        if name not in FIELDS:
            raise TaskError(f"{where}: unknown field {name!r}")
        if name == "src":
            continue
        why = check_value(name, value)
        if why:
            raise TaskError(f"{where}: {name}: {why}")
    src = _src_path(values.get("src"), where, base)
    return _with_formats(_task(values, src, where), values)


def _src_path(value: str | None, where: str, base: Path | None) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise TaskError(f"{where}: src: {value!r} does not exist ({path})")
    if path.is_dir():
        if not (path / "index.json").is_file():
            raise TaskError(f"{where}: src: {path} is a directory without index.json (not an OCI layout)")
    elif not path.is_file():
        raise TaskError(f"{where}: src: {path} is neither an OCI layout directory nor an archive file")
    return path


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:str":
            return "a string"
        if node.tag == "tag:yaml.org,2002:null":
            return "null"
        return f"{node.tag.rsplit(':', 1)[-1]} {node.value!r}"
    return "something else"


def _read_task_file(path: Path) -> str:
    """The file's text: a regular file (a FIFO or device is refused, not waited on) of at most
    :data:`MAX_TASK_FILE_BYTES`, in UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise TaskError(f"{path}: cannot read the task file: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TaskError(f"{path}: cannot read the task file: not a regular file")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_TASK_FILE_BYTES:
                raise TaskError(
                    f"{path}: the task file is too large (more than {MAX_TASK_FILE_BYTES // (1024 * 1024)} MiB)"
                )
    except OSError as e:
        raise TaskError(f"{path}: cannot read the task file: {e.strerror or e}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskError(
            f"{path}: cannot read the task file: not UTF-8 ({e.reason} at byte {e.start})"
        ) from None


def load_tasks(path: Path) -> list[ReleaseTask]:
    """Parse and check a task file; raises :class:`TaskError` naming ``file:line``."""
    text = _read_task_file(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise TaskError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise TaskError(f"{path}{line}: invalid YAML: {e.problem or e}") from e
    except yaml.YAMLError as e:
        raise TaskError(f"{path}: invalid YAML: {e}") from e
    usage = "expected a mapping with one key, `tasks`, holding a list of tasks"
    if root is None:
        raise TaskError(f"{path}:1: the task file is empty; {usage}")
    if not isinstance(root, yaml.MappingNode):
        raise TaskError(f"{path}:{_line(root)}: {usage}, got {_kind(root)}")
    tasks_node: yaml.Node | None = None
    for key, value in root.value:
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"):
            raise TaskError(f"{path}:{_line(key)}: top-level keys must be strings; {usage}")
        if key.value != "tasks":
            raise TaskError(f"{path}:{_line(key)}: unknown top-level key {key.value!r}; {usage}")
        if tasks_node is not None:
            raise TaskError(f"{path}:{_line(key)}: duplicate key 'tasks'")
        tasks_node = value
    if tasks_node is None:
        raise TaskError(f"{path}:{_line(root)}: no `tasks` key; {usage}")
    if not isinstance(tasks_node, yaml.SequenceNode):
        raise TaskError(f"{path}:{_line(tasks_node)}: `tasks` must be a list, got {_kind(tasks_node)}")
    if not tasks_node.value:
        raise TaskError(f"{path}:{_line(tasks_node)}: `tasks` is empty")
    out = [_task_from_node(path, node) for node in tasks_node.value]
    seen: dict[str, str] = {}
    for task in out:
        if task.image in seen:
            raise TaskError(
                f"{task.where}: image {task.image} is already released by the task at {seen[task.image]}"
            )
        seen[task.image] = task.where
    return out


def _task_from_node(path: Path, node: yaml.Node) -> ReleaseTask:
    where = f"{path}:{_line(node)}"
    if not isinstance(node, yaml.MappingNode):
        raise TaskError(f"{where}: a task must be a mapping of {', '.join(FIELDS)}, got {_kind(node)}")
    values: dict[str, str] = {}
    for key, value in node.value:
        at = f"{path}:{_line(key)}"
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"):
            raise TaskError(f"{at}: task keys must be strings, got {_kind(key)}")
        name = key.value
        if name not in FIELDS:
            raise TaskError(f"{at}: unknown key {name!r} (a task has exactly: {', '.join(FIELDS)})")
        if name in values:
            raise TaskError(f"{at}: duplicate key {name!r}")
        if name == "formats":
            values[name] = _formats_value(path, value)
            continue
        if not (isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:str"):
            raise TaskError(f"{path}:{_line(value)}: {name} must be a string, got {_kind(value)}")
        if name != "src":
            why = check_value(name, value.value)
            if why:
                raise TaskError(f"{path}:{_line(value)}: {name}: {why}")
        values[name] = value.value
    missing, conflict = _missing(values)
    if conflict:
        raise TaskError(f"{where}: {conflict}")
    if missing:
        raise TaskError(f"{where}: task is missing {', '.join(missing)}")
    src_line = next((f"{path}:{_line(v)}" for k, v in node.value if k.value == "src"), where)
    src = _src_path(values.get("src"), src_line, path.parent)
    return _with_formats(_task(values, src, where), values)
