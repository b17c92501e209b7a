"""Image references: docker's ParseNormalizedNamed, case by case, plus property tests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from notar.errors import NotarError
from notar.registry import (
    InvalidDigestError,
    InvalidReferenceError,
    Reference,
    is_insecure_registry,
    parse_reference,
    registry_base_url,
)

D64 = "sha256:" + "a" * 64
D128 = "sha512:" + "b" * 128

# input -> (name, tag, digest, familiar)
VALID = [
    ("alpine", "docker.io/library/alpine", None, None, "alpine"),
    ("alpine:3.19", "docker.io/library/alpine", "3.19", None, "alpine:3.19"),
    ("library/alpine", "docker.io/library/alpine", None, None, "alpine"),
    ("docker.io/alpine", "docker.io/library/alpine", None, None, "alpine"),
    ("docker.io/library/alpine:latest", "docker.io/library/alpine", "latest", None, "alpine:latest"),
    ("index.docker.io/x", "docker.io/library/x", None, None, "x"),
    ("index.docker.io/user/x", "docker.io/user/x", None, None, "user/x"),
    ("user/app", "docker.io/user/app", None, None, "user/app"),
    ("docker.io/library/foo/bar", "docker.io/library/foo/bar", None, None, "library/foo/bar"),
    ("a/b/c/d/e", "docker.io/a/b/c/d/e", None, None, "a/b/c/d/e"),
    ("reg:5000/team/app:tag", "reg:5000/team/app", "tag", None, "reg:5000/team/app:tag"),
    ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", None, None, "127.0.0.1:5000/team/app"),
    ("example.com/app", "example.com/app", None, None, "example.com/app"),
    ("Example.COM/app", "Example.COM/app", None, None, "Example.COM/app"),  # domains may be upper case
    ("UPPER/app", "UPPER/app", None, None, "UPPER/app"),  # upper case first component => domain
    ("localhost/app", "localhost/app", None, None, "localhost/app"),
    ("localhost:5000/app:1", "localhost:5000/app", "1", None, "localhost:5000/app:1"),
    ("localhost", "docker.io/library/localhost", None, None, "localhost"),  # no slash: a Hub name
    ("localhost:5000", "docker.io/library/localhost", "5000", None, "localhost:5000"),  # docker does this too
    ("[::1]:5000/app", "[::1]:5000/app", None, None, "[::1]:5000/app"),
    ("my-reg.example.com/a_b/c__d/e---f/g.h", "my-reg.example.com/a_b/c__d/e---f/g.h", None, None, None),
    ("alpine:_under", "docker.io/library/alpine", "_under", None, "alpine:_under"),
    ("alpine:" + "T" * 128, "docker.io/library/alpine", "T" * 128, None, None),
    (f"alpine@{D64}", "docker.io/library/alpine", None, D64, f"alpine@{D64}"),
    (f"alpine:3@{D64}", "docker.io/library/alpine", "3", D64, f"alpine:3@{D64}"),
    (f"reg:5000/app@{D128}", "reg:5000/app", None, D128, f"reg:5000/app@{D128}"),
]


@pytest.mark.parametrize(("text", "name", "tag", "digest", "familiar"), VALID)
def test_valid_references(
    text: str, name: str, tag: str | None, digest: str | None, familiar: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)
    assert ref.familiar == (familiar if familiar is not None else ref.familiar)
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref


INVALID = [
    ("", "empty"),
    ("Alpine", "must be lowercase"),
    ("user/App", "must be lowercase"),
    ("reg:5000/Team/app", "must be lowercase"),
    ("a" * 64, "hexadecimal"),
    ("alpine:", "invalid tag ''"),
    ("alpine:.bad", "invalid tag '.bad'"),
    ("alpine:-bad", "invalid tag '-bad'"),
    ("alpine:" + "t" * 129, "invalid tag"),
    ("alpine:t\u0661", "invalid tag"),  # Go's \w is ASCII only
    ("alpine@sha256:abc", "invalid digest"),
    ("alpine@sha256:" + "A" * 64, "lower-case hex"),
    ("alpine@sha256:" + "a" * 63, "exactly 64"),
    ("alpine@md5:" + "a" * 32, "unsupported algorithm 'md5'"),
    ("alpine@", "invalid digest"),
    ("a//b", "empty path component"),
    ("/alpine", "empty path component"),
    ("alpine/", "empty path component"),
    ("-alpine", "path component '-alpine'"),
    ("alpine-", "path component 'alpine-'"),
    ("al..pine", "path component 'al..pine'"),
    ("a___b", "path component 'a___b'"),
    ("h\u00e9llo", "path component"),
    ("foo bar", "white space"),
    ("alpine\n", "white space"),
    ("alpine:tag:extra", "path component 'alpine:tag'"),
    ("reg:port/app", "invalid registry domain 'reg:port'"),
    ("[::1/app", "invalid registry domain"),
    ("-reg.example.com/app", "invalid registry domain"),
    ("foo_bar.com/app", "invalid registry domain 'foo_bar.com'"),  # docker would treat it as a path
    ("reg.example.com/" + "a" * 240, "at most 255"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert message in str(info.value)
    assert isinstance(info.value, NotarError)
    assert isinstance(info.value, ValueError)


def test_bad_digest_is_an_invalid_digest_error() -> None:
    with pytest.raises(InvalidDigestError, match="alpine@sha256"):
        parse_reference("alpine@sha256:" + "A" * 64)


def test_familiar_form_is_ambiguous_like_dockers() -> None:
    # docker.io/foo.bar/app shortens to foo.bar/app, which reads back with foo.bar as the registry
    ref = parse_reference("docker.io/foo.bar/app")
    assert ref.familiar == "foo.bar/app"
    assert parse_reference(ref.familiar).name == "foo.bar/app"
    assert str(ref) == "docker.io/foo.bar/app"  # the full form is the one to store


def test_name_length_limit_includes_the_domain() -> None:
    path = "a" * (255 - len("docker.io/library/"))
    assert parse_reference(path).name == "docker.io/library/" + path
    with pytest.raises(InvalidReferenceError, match="255"):
        parse_reference(path + "a")


def test_default_tag() -> None:
    assert parse_reference("alpine", default_tag="latest").tag == "latest"
    assert parse_reference("alpine:3", default_tag="latest").tag == "3"
    assert parse_reference(f"alpine@{D64}", default_tag="latest").tag is None  # digest only: no tag
    with pytest.raises(InvalidReferenceError, match="default tag"):
        parse_reference("alpine", default_tag="-x")


def test_reference_helpers() -> None:
    ref = parse_reference("alpine:3.19")
    assert ref.manifest_ref == "3.19"
    assert ref.with_digest(D64).manifest_ref == D64  # the digest wins, as in docker pull
    assert ref.repository() == Reference("docker.io", "library/alpine")
    assert str(ref.with_tag("edge")) == "docker.io/library/alpine:edge"
    assert ref.registry_host == "registry-1.docker.io"
    assert ref.registry_url == "https://registry-1.docker.io"
    assert parse_reference("localhost:5000/a").registry_url == "http://localhost:5000"
    assert parse_reference("127.0.0.1:5000/a").registry_url == "http://127.0.0.1:5000"
    assert parse_reference("[::1]:5000/a").registry_url == "http://[::1]:5000"
    assert parse_reference("ghcr.io/o/a").registry_url == "https://ghcr.io"
    assert Reference("docker.io", "library/x").manifest_ref is None


@pytest.mark.parametrize(
    ("domain", "path", "tag", "digest"),
    [
        ("bad domain", "a", None, None),
        ("docker.io", "Alpine", None, None),
        ("docker.io", "a//b", None, None),
        ("docker.io", "a", "-x", None),
        ("docker.io", "a", None, "sha256:abc"),
    ],
)
def test_reference_constructor_validates(domain: str, path: str, tag: str | None, digest: str | None) -> None:
    with pytest.raises(InvalidReferenceError):
        Reference(domain, path, tag, digest)


@pytest.mark.parametrize(
    ("domain", "insecure", "expected"),
    [
        ("127.0.0.1:5000", (), True),
        ("127.3.4.5", (), True),
        ("localhost", (), True),
        ("localhost:443", (), True),
        ("[::1]:5000", (), True),
        ("10.1.2.3:5000", (), False),
        ("10.1.2.3:5000", ("10.0.0.0/8",), True),
        ("reg.internal:5000", ("reg.internal:5000",), True),
        ("reg.internal:5000", ("http://reg.internal:5000/",), True),
        ("reg.internal:5000", ("reg.internal",), False),  # the exact host:port, like docker
        ("example.com", ("10.0.0.0/8", "garbage/xx"), False),
        ("docker.io", (), False),
    ],
)
def test_insecure_registries(domain: str, insecure: tuple[str, ...], expected: bool) -> None:
    assert is_insecure_registry(domain, insecure) is expected
    scheme = "http" if expected else "https"
    assert registry_base_url(domain, insecure_registries=insecure).startswith(f"{scheme}://")


def test_registry_base_url() -> None:
    assert registry_base_url("docker.io") == "https://registry-1.docker.io"
    assert registry_base_url("index.docker.io") == "https://registry-1.docker.io"
    assert registry_base_url("https://reg.example/") == "https://reg.example"
    assert registry_base_url("http://reg.example:5000") == "http://reg.example:5000"


# ---------------------------------------------------------------------------- properties

_component = st.from_regex(r"\A[a-z0-9]{1,5}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,5}){0,2}\Z")
_domain = st.one_of(
    st.just("docker.io"),
    st.just("localhost"),
    st.from_regex(r"\Alocalhost:[0-9]{1,5}\Z"),
    st.from_regex(r"\A[a-z0-9]{1,8}(?:-[a-z0-9]{1,4})?(?:\.[a-z0-9]{1,8}){1,2}(?::[0-9]{1,5})?\Z"),
    st.from_regex(r"\A127\.0\.0\.[0-9]{1,3}:[0-9]{1,5}\Z"),
    st.just("[::1]:5000"),
)
_tag = st.none() | st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
_digest = st.none() | st.binary(max_size=16).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest())


@given(_domain, st.lists(_component, min_size=1, max_size=4), _tag, _digest)
def test_round_trip(domain: str, components: list[str], tag: str | None, digest: str | None) -> None:
    if domain == "docker.io" and len(components) == 1:
        components = ["library", *components]  # the normal form of an official image
    path = "/".join(components)
    assume(len(domain) + 1 + len(path) <= 255)
    ref = Reference(domain, path, tag, digest)
    assert parse_reference(str(ref)) == ref
    if not (domain == "docker.io" and ("." in components[0] or components[0] == "localhost")):
        assert parse_reference(ref.familiar) == ref
    assert parse_reference(ref.name) == ref.repository()


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as e:
        assert str(e)
    else:
        assert parse_reference(str(ref)) == ref
