"""``docker trust inspect``: the same JSON structure and the same ``--pretty`` tables."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from notar.client.updater import RELEASES, TrustedRepo
from notar.tuf import roles

__all__ = ["inspect_data", "natural_key", "render_json", "render_pretty"]


_ASCII_DIGITS = re.compile(r"([0-9]+)")


def natural_key(text: str) -> tuple[tuple[int, int, str, int], ...]:
    """Sort key of Go's ``sortorder.NaturalLess``, which docker uses to order tags and signers.

    Only ASCII digit runs are numbers (not ``str.isdigit()``'s superscripts or other scripts' digits), and
    they are compared without ``int()`` (no digit limit): by length without leading zeros, then as strings,
    then by the number of leading zeros ("2" < "02"). Everything else compares by code point, which is
    the order of its UTF-8 bytes. Digits sort before other characters at the same position.
    """
    out: list[tuple[int, int, str, int]] = []
    for i, part in enumerate(_ASCII_DIGITS.split(text)):
        if i % 2:  # a digit run (split alternates: text, digits, text, ...)
            number = part.lstrip("0")
            out.append((0, len(number), number, len(part) - len(number)))
        else:
            out.append((1, 0, part, 0))
    return tuple(out)


def _signer_name(role: str) -> str:
    return "Repo Admin" if role == roles.TARGETS else role.removeprefix("targets/")


def _released(role: str) -> bool:
    return role in (roles.TARGETS, RELEASES)


def inspect_data(name: str, repo: TrustedRepo, tag: str | None) -> dict[str, Any]:
    """One element of ``docker trust inspect``'s array for argument *name*."""
    matches = [m for m in repo.all_targets() if tag is None or m.name == tag]
    rows: dict[tuple[str, str], list[str]] = {}
    for m in matches:
        if _released(m.role) and "sha256" in m.meta.hashes:
            rows.setdefault((m.name, m.meta.hashes["sha256"].hex()), [])
    for m in matches:
        key = (m.name, m.meta.hashes["sha256"].hex()) if "sha256" in m.meta.hashes else None
        if key in rows and not _released(m.role):
            rows[key].append(_signer_name(m.role))
    signed_tags = [
        {"SignedTag": t, "Digest": d, "Signers": signers}
        for (t, d), signers in sorted(rows.items(), key=lambda kv: natural_key(kv[0][0]))
    ]
    signers: list[dict[str, Any]] = []
    for entry, keys in repo.delegations():
        if entry.name == RELEASES:
            continue
        ids = sorted(k.canonical_key_id for k in keys.values())
        signers.append({"Name": _signer_name(entry.name), "Keys": [{"ID": i} for i in ids]})
    signers.sort(key=lambda s: str(s["Name"]), reverse=True)
    root = repo.root.signed
    admin = [
        {"Name": "Root", "Keys": [{"ID": k} for k in sorted(root.roles[roles.ROOT].keyids)]},
        {"Name": "Repository", "Keys": [{"ID": k} for k in sorted(root.roles[roles.TARGETS].keyids)]},
    ]
    return {"Name": name, "SignedTags": signed_tags, "Signers": signers, "AdministrativeKeys": admin}


def render_json(items: Sequence[dict[str, Any]]) -> str:
    """docker's JSON: an array indented with 4 spaces."""
    return json.dumps(list(items), indent=4)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    # Go tabwriter with minwidth 10, padding 3, spaces; the last column is not padded
    widths = [max(10, *(len(r[i]) + 3 for r in [header, *rows])) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return lines


def render_pretty(item: dict[str, Any]) -> str:
    """The ``--pretty`` text for one repository."""
    name = item["Name"]
    out = [""]
    if item["SignedTags"]:
        out += [f"Signatures for {name}", ""]
        rows = [
            (t["SignedTag"], t["Digest"], ", ".join(sorted(t["Signers"], key=natural_key)) or "(Repo Admin)")
            for t in item["SignedTags"]
        ]
        out += _table(("SIGNED TAG", "DIGEST", "SIGNERS"), rows)
        out.append("")
    else:
        out += [f"No signatures for {name}", "", ""]
    if item["Signers"]:
        out += [f"List of signers and their keys for {name}", ""]
        rows2 = [
            (s["Name"], ", ".join(sorted(k["ID"][:12] for k in s["Keys"])))
            for s in sorted(item["Signers"], key=lambda s: natural_key(s["Name"]))
        ]
        out += _table(("SIGNER", "KEYS"), rows2)
        out.append("")
    out += [f"Administrative keys for {name}", ""]
    # docker sorts these lines by TUF role name, descending: targets ("Repository Key") before root
    tuf_role = {"Repository": "targets", "Root": "root"}
    for admin in sorted(
        item["AdministrativeKeys"], key=lambda a: tuf_role.get(a["Name"], a["Name"]), reverse=True
    ):
        label = "Repository Key" if admin["Name"] == "Repository" else "Root Key"
        out.append(f"  {label}:\t" + ", ".join(sorted(k["ID"] for k in admin["Keys"])))
    return "\n".join(out) + "\n"
