"""Docker image references, parsed exactly like docker's ``reference.ParseNormalizedNamed``.

Grammar (github.com/distribution/reference, ``regexp.go``)::

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [ domain "/" ] path-component [ "/" path-component ]*
    domain          := host [ ":" port ]          host := domain-name | "[" ipv6 "]"
    path-component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
    tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest          := algorithm ":" hex

Normalisation (``splitDockerDomain``): the first component is a domain when it contains ``.`` or ``:``,
is ``localhost``, or has upper-case letters; otherwise the domain is ``docker.io``. ``index.docker.io``
becomes ``docker.io``, and a single-component Docker Hub name gets the ``library/`` prefix. The
repository part must be lower case and the whole name at most 255 characters.

The fully qualified name (``Reference.name``) is what Notary calls the GUN.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from notar.registry.digest import validate_digest
from notar.registry.errors import InvalidDigestError, InvalidReferenceError

__all__ = [
    "DEFAULT_DOMAIN",
    "DOCKER_HUB_API_HOST",
    "LEGACY_DEFAULT_DOMAIN",
    "NAME_TOTAL_LENGTH_MAX",
    "Reference",
    "is_insecure_registry",
    "parse_reference",
    "registry_base_url",
    "registry_host",
    "validate_domain",
    "validate_repository",
    "validate_tag",
]

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
DOCKER_HUB_API_HOST: Final = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX: Final = "library/"
NAME_TOTAL_LENGTH_MAX: Final = 255

# Go's \w is ASCII-only, so the classes are spelled out (Python's \w would accept any Unicode letter).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_COMPONENT_RE: Final = re.compile(_PATH_COMPONENT)
_PATH_RE: Final = re.compile(_PATH)
_DOMAIN_RE: Final = re.compile(_DOMAIN)
_TAG_RE: Final = re.compile(_TAG)
_DIGEST_SHAPE_RE: Final = re.compile(_DIGEST)
_REFERENCE_RE: Final = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_NAME_RE: Final = re.compile(rf"(?P<domain>{_DOMAIN})/(?P<path>{_PATH})")
_IMAGE_ID_RE: Final = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A fully qualified image reference: ``domain/path[:tag][@digest]``.

    Construct it with :func:`parse_reference`; the constructor validates each field but does not
    normalise (``Reference("docker.io", "alpine")`` is valid, but not what docker would produce).
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not _DOMAIN_RE.fullmatch(self.domain):
            raise InvalidReferenceError(f"invalid registry domain {self.domain!r}")
        if not isinstance(self.path, str) or not _PATH_RE.fullmatch(self.path):
            raise InvalidReferenceError(f"invalid repository path {self.path!r}: {_path_problem(self.path)}")
        if len(self.name) > NAME_TOTAL_LENGTH_MAX:
            raise InvalidReferenceError(
                f"repository name {self.name!r} is {len(self.name)} characters long; "
                f"at most {NAME_TOTAL_LENGTH_MAX} are allowed"
            )
        if self.tag is not None and (not isinstance(self.tag, str) or not _TAG_RE.fullmatch(self.tag)):
            raise InvalidReferenceError(f"invalid tag {self.tag!r}: {_TAG_RULE}")
        if self.digest is not None:
            validate_digest(self.digest)

    # ---------------------------------------------------------------- names

    @property
    def name(self) -> str:
        """The fully qualified repository name without tag or digest, e.g. ``docker.io/library/alpine``.

        This is the GUN of the image's trust collection.
        """
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Docker's short name: ``alpine``, ``user/app``, ``reg:5000/team/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        return rest if rest != self.path and "/" not in rest else self.path

    @property
    def familiar(self) -> str:
        """Docker's short form with tag and digest, as ``docker`` prints it: ``alpine:3.19``.

        For display only: like docker's, it is ambiguous for Hub names whose first component looks
        like a registry (``docker.io/foo.bar/app`` -> ``foo.bar/app``). Store ``str(ref)``.
        """
        return self.familiar_name + self._suffix()

    @property
    def manifest_ref(self) -> str | None:
        """What to ask the registry for: the digest if there is one, else the tag (None if neither)."""
        return self.digest if self.digest is not None else self.tag

    # ---------------------------------------------------------------- registry

    @property
    def registry_host(self) -> str:
        """Host (and port) of the registry API: ``registry-1.docker.io`` for Docker Hub."""
        return registry_host(self.domain)

    @property
    def registry_url(self) -> str:
        """Base URL of the registry API with docker's default scheme (``http`` only for loopback)."""
        return registry_base_url(self.domain)

    # ---------------------------------------------------------------- derived references

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def repository(self) -> Reference:
        """The same name without tag and digest."""
        return replace(self, tag=None, digest=None)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag is not None else "") + (
            f"@{self.digest}" if self.digest is not None else ""
        )

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(text: str, *, default_tag: str | None = None) -> Reference:
    """Parse and normalise ``text`` like docker's ``reference.ParseNormalizedNamed``.

    ``default_tag`` (e.g. ``"latest"``) is used when the reference has neither a tag nor a digest,
    like docker's ``TagNameOnly``. Raises :class:`InvalidReferenceError` saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidReferenceError(f"image reference must be a string, not {type(text).__name__}")
    if text == "":
        raise InvalidReferenceError("invalid reference: the image name is empty")
    if _IMAGE_ID_RE.fullmatch(text):
        raise InvalidReferenceError(
            f"invalid reference {text!r}: a repository name cannot be a 64-character hexadecimal string "
            "(that looks like an image ID)"
        )
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: repository name {remote!r} must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _REFERENCE_RE.fullmatch(full)
    if match is None:
        raise InvalidReferenceError(f"invalid reference {text!r}: {_diagnose(domain, remainder)}")
    name = match["name"]
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: repository name is {len(name)} characters long "
            f"(with the registry), at most {NAME_TOTAL_LENGTH_MAX} are allowed"
        )
    name_match = _NAME_RE.fullmatch(name)
    if name_match is None or name_match["domain"] != domain:
        # docker would silently treat such a name as a path without domain; we refuse it.
        raise InvalidReferenceError(f"invalid reference {text!r}: invalid registry domain {domain!r}")
    digest = match["digest"]
    if digest is not None:
        try:
            validate_digest(digest)
        except InvalidDigestError as e:
            raise InvalidDigestError(f"invalid reference {text!r}: {e}") from None
    tag = match["tag"]
    if tag is None and digest is None and default_tag is not None:
        if not _TAG_RE.fullmatch(default_tag):
            raise InvalidReferenceError(f"invalid default tag {default_tag!r}: {_TAG_RULE}")
        tag = default_tag
    return Reference(domain=domain, path=name_match["path"], tag=tag, digest=digest)


def validate_domain(domain: str) -> str:
    """Return ``domain`` if it is a valid registry ``host[:port]``; raise :class:`InvalidReferenceError`."""
    if not isinstance(domain, str) or not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReferenceError(f"invalid registry domain {domain!r}")
    return domain


def validate_repository(path: str) -> str:
    """Return ``path`` if it is a valid repository path (``team/app``, no domain); raise otherwise."""
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        raise InvalidReferenceError(f"invalid repository path {path!r}: {_path_problem(str(path))}")
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"repository path {path!r} is longer than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    return path


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag; raise :class:`InvalidReferenceError` saying why not."""
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise InvalidReferenceError(f"invalid tag {tag!r}: {_TAG_RULE}")
    return tag


def _split_docker_domain(name: str) -> tuple[str, str]:
    """docker's ``splitDockerDomain``: (domain, remainder), with Docker Hub normalisation."""
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


_TAG_RULE = "a tag is 1 to 128 characters of [A-Za-z0-9_.-] and must not start with '.' or '-'"
_PATH_RULE = (
    "path components are lower-case letters and digits, separated by '.', '_', '__' or dashes, "
    "and must start and end with a letter or digit"
)


def _path_problem(path: str) -> str:
    for component in path.split("/"):
        if component == "":
            return "empty path component (leading, trailing or double '/')"
        if not _PATH_COMPONENT_RE.fullmatch(component):
            return f"path component {component!r} is invalid: {_PATH_RULE}"
    return "invalid repository path"


def _diagnose(domain: str, remainder: str) -> str:
    """Say which part of a reference that failed the grammar is wrong."""
    if any(c.isspace() for c in remainder) or any(c.isspace() for c in domain):
        return "references cannot contain white space"
    if not _DOMAIN_RE.fullmatch(domain):
        return f"invalid registry domain {domain!r}"
    rest, at, digest = remainder.partition("@")
    if at and not _DIGEST_SHAPE_RE.fullmatch(digest):
        return f"invalid digest {digest!r}: expected 'algorithm:hex' (e.g. 'sha256:<64 hex>')"
    path, tag = rest, None
    last = rest.rfind(":")
    if last > rest.rfind("/"):
        path, tag = rest[:last], rest[last + 1 :]
    if not _PATH_RE.fullmatch(path):
        return _path_problem(path)
    if tag is not None and not _TAG_RE.fullmatch(tag):
        return f"invalid tag {tag!r}: {_TAG_RULE}"
    return "invalid reference format"


# -------------------------------------------------------------------- registry hosts and schemes


def registry_host(domain: str) -> str:
    """The host[:port] serving the registry API for ``domain`` (Docker Hub's is ``registry-1.docker.io``)."""
    return DOCKER_HUB_API_HOST if domain in (DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN) else domain


def _host_only(domain: str) -> str:
    """``domain`` without its port and without IPv6 brackets."""
    if domain.startswith("["):
        return domain[1:].split("]", 1)[0]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def is_insecure_registry(domain: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Whether docker would talk plain HTTP to ``domain``.

    True for loopback registries (``localhost``, 127.0.0.0/8, ``::1``: docker's default insecure CIDR),
    and for a registry listed in ``insecure_registries``, either by its exact ``host[:port]`` or by a
    CIDR (``10.0.0.0/8``) containing its IP address literal.
    """
    host = _host_only(domain).lower()
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if host == "localhost" or (ip is not None and ip.is_loopback):
        return True
    for entry in insecure_registries:
        entry = entry.strip().lower().removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry == domain.lower():
            return True
        if ip is not None and "/" in entry:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def registry_base_url(domain: str, *, insecure_registries: Iterable[str] = ()) -> str:
    """``https://<api host>``, or ``http://`` when :func:`is_insecure_registry` says so.

    ``domain`` may also be a full ``http://`` / ``https://`` URL, which is returned without a trailing
    slash (an explicit scheme wins).
    """
    if domain.startswith(("http://", "https://")):
        return domain.rstrip("/")
    scheme = "http" if is_insecure_registry(domain, insecure_registries) else "https"
    return f"{scheme}://{registry_host(domain)}"
