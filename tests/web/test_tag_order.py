"""Tag order (docker's natural order, ``natural_key``) and tag names that once broke it: digits that
``int()`` refuses (superscripts, non-ASCII digits, numbers over Python's 4,300-digit limit) sort without an
exception, in the page, the API and ``notar inspect``."""

from __future__ import annotations

from notar.client import inspect_data, render_json, render_pretty
from notar.client.inspect import natural_key
from notar.web.trust import TrustReader
from tests.web.conftest import GUN, Env, meta
from tests.web.test_pages import page, rows

LONG = "9" * 5000  # over Python's 4,300-digit int() limit
SUPERSCRIPT = "1\u00b2"  # "1²": str.isdigit() is true, int() fails


def ordered(*names: str) -> list[str]:
    return sorted(names, key=natural_key)


def test_natural_key_never_raises_on_odd_digits() -> None:
    for name in (SUPERSCRIPT, "\u00b2", LONG, "v" + LONG + "x", "\u0663", "1\u0663", "\u2460", ""):
        natural_key(name)  # no exception
    assert ordered(SUPERSCRIPT, "1", "2", "10") == ["1", SUPERSCRIPT, "2", "10"]
    assert ordered(LONG, "1" + LONG, "10") == ["10", LONG, "1" + LONG]
    assert ordered("v" + LONG + "1", "v" + LONG) == ["v" + LONG, "v" + LONG + "1"]


def test_natural_key_order_of_ordinary_tags() -> None:
    assert ordered("v1.10", "v1.9", "v1.2") == ["v1.2", "v1.9", "v1.10"]
    assert ordered("abc12", "abc2", "abc") == ["abc", "abc2", "abc12"]
    # leading zeros: compared as numbers, fewer zeros first on a tie (sortorder.NaturalLess)
    assert ordered("02", "2", "002", "1", "010", "3") == ["1", "2", "02", "002", "3", "010"]
    assert ordered("v02a", "v2b") == ["v2b", "v02a"]  # the first difference decides: the zeros
    assert ordered("0", "00", "") == ["", "0", "00"]
    # digits before other characters; other characters by code point (= UTF-8 byte order)
    assert ordered("ab", "a1", "a", "a-", "A") == ["A", "a", "a1", "a-", "ab"]
    assert ordered("latest", "1.0", "é", "z") == ["1.0", "latest", "z", "é"]
    # non-ASCII digits are not numbers
    assert ordered("\u0663", "3", "10") == ["3", "10", "\u0663"]


def test_odd_numeric_tags_do_not_break_the_page_api_or_inspect(env: Env) -> None:
    names = ["1.0", SUPERSCRIPT, LONG, "v" + LONG, "v1.10", "v1.9", "02", "2"]
    env.signer().sign({n: meta(n) for n in names})
    html = page(env)
    assert set(rows(html)) == set(names)
    r = env.client.get(f"/api/repositories/{GUN}")
    assert r.status_code == 200
    tags = [t["tag"] for t in r.json()["tags"]]
    assert tags == ["1.0", SUPERSCRIPT, "2", "02", LONG, "v1.9", "v1.10", "v" + LONG]
    assert all(t["status"] == "signed" for t in r.json()["tags"])
    assert env.client.get("/").status_code == 200
    assert env.client.get("/api/repositories").status_code == 200

    # notar inspect over the same data: docker's tag order, no exception
    repo = TrustReader(env.service).verify(GUN)
    item = inspect_data(GUN, repo, None)
    assert [t["SignedTag"] for t in item["SignedTags"]] == tags
    render_json([item])
    pretty = render_pretty(item)
    assert pretty.index(SUPERSCRIPT + " ") < pretty.index(LONG)
