"""The trust server's own HTTP client (notar.client._http, ADR 0011) behind TrustServer: what the httpx client it
replaced did (TLS from a CA file, size caps, no redirects, kept-alive connections, one-line errors)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.client import TrustServer
from notar.client._http import Client, TransportError
from notar.client.errors import TrustServerError, TrustServerUnavailableError
from notar.client.sources import MetadataNotFoundError
from tests.lab import LabPKI, make_lab_pki

GUN = "registry.example.com/team/app"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers), self.client_address[1]))
        name = self.path.rsplit("/", 1)[-1]
        if name == "timestamp.json":
            self._send(200, b'{"signed": {}}')
        elif name == "chunked.json":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"a" * 700, b"b" * 700):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif name == "moved.json":
            self.send_response(302)
            self.send_header("Location", "/v2/elsewhere/_trust/tuf/timestamp.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "lies.json":  # announces less than it sends
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"x" * 10)
        else:
            self._send(404, b'{"errors": [{"code": "METADATA_NOT_FOUND"}]}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.requests.append((self.command, self.path, dict(self.headers), self.client_address[1]))
        self.server.bodies.append(body)
        self._send(200, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict[str, str], int]] = []
        self.bodies: list[bytes] = []


@contextlib.contextmanager
def _serve(pki: LabPKI | None = None) -> Iterator[tuple[_Server, str]]:
    server = _Server()
    scheme = "http"
    if pki is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPKI:
    return make_lab_pki(tmp_path_factory.mktemp("pki"))


def test_reads_over_one_kept_alive_connection() -> None:
    with _serve() as (server, url), TrustServer(url) as ts:
        assert ts.get(GUN, "timestamp", max_bytes=1000) == b'{"signed": {}}'
        assert ts.get(GUN, "timestamp", max_bytes=1000) == b'{"signed": {}}'
        ts.publish(GUN, {"targets": b"{}"})
    ports = {port for *_, port in server.requests}
    assert len(server.requests) == 3 and len(ports) == 1
    method, path, headers, _ = server.requests[0]
    assert (method, path) == ("GET", f"/v2/{GUN}/_trust/tuf/timestamp.json")
    assert headers["User-Agent"].startswith("notar/") and headers["Accept-Encoding"] == "identity"
    assert b'filename="targets"' in server.bodies[0]


def test_a_kept_connection_that_was_closed_is_not_reused() -> None:
    with _serve() as (server, url), TrustServer(url) as ts:
        assert ts.get(GUN, "timestamp", max_bytes=1000)
        client = ts._http
        assert isinstance(client, Client)
        (kept,) = next(iter(client._idle.values()))
        assert kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)  # reads EOF now, as after the server closed it
        assert ts.get(GUN, "timestamp", max_bytes=1000) == b'{"signed": {}}'
        ts.publish(GUN, {"targets": b"{}"})  # a POST is never sent on a dead connection either
    assert len({port for *_, port in server.requests}) == 2
    assert len(server.bodies) == 1


def test_size_caps_hold_for_chunked_answers() -> None:
    with _serve() as (_server, url), TrustServer(url) as ts:
        assert len(ts.get(GUN, "chunked", max_bytes=1400)) == 1400
        with pytest.raises(TrustServerError, match="larger than 1000 bytes"):
            ts.get(GUN, "chunked", max_bytes=1000)
        with pytest.raises(TrustServerError, match="larger than 5 bytes"):
            ts.get(GUN, "lies", max_bytes=5)  # refused on Content-Length already


def test_redirects_are_not_followed_and_404_is_not_found() -> None:
    with _serve() as (server, url), TrustServer(url) as ts:
        with pytest.raises(TrustServerError, match="rejected the request to fetch moved.json"):
            ts.get(GUN, "moved", max_bytes=1000)
        with pytest.raises(MetadataNotFoundError):
            ts.get(GUN, "snapshot", max_bytes=1000)
    assert [path.rsplit("/", 1)[-1] for _, path, _, _ in server.requests] == ["moved.json", "snapshot.json"]


def test_tls_with_a_ca_file_and_without_it(pki: LabPKI) -> None:
    with _serve(pki) as (_server, url):
        with TrustServer(url, verify=str(pki.ca)) as ts:
            assert ts.get(GUN, "timestamp", max_bytes=1000)
        with TrustServer(url, verify=ssl.create_default_context(cafile=pki.ca)) as ts:
            assert ts.get(GUN, "timestamp", max_bytes=1000)
        with TrustServer(url, verify=False) as ts:
            assert ts.get(GUN, "timestamp", max_bytes=1000)
        with (
            TrustServer(url) as ts,  # certifi's CAs do not include the lab's
            pytest.raises(TrustServerUnavailableError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            ts.get(GUN, "timestamp", max_bytes=1000)


def test_a_bad_ca_file_fails_when_the_server_is_made(tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        TrustServer("https://127.0.0.1:1", verify=str(bad))
    TrustServer("http://127.0.0.1:1", verify=str(bad)).close()  # plain http needs no TLS context


def test_connection_failures_are_one_line_errors() -> None:
    with TrustServer("http://127.0.0.1:1") as ts, pytest.raises(TrustServerUnavailableError) as e:
        ts.get(GUN, "timestamp", max_bytes=1000)
    assert str(e.value) == "error contacting trust server http://127.0.0.1:1: [Errno 111] Connection refused"
    client = Client(verify=True, timeout=1.0, headers={}, https=False)
    with pytest.raises(TransportError, match="unsupported URL"):
        client.request("GET", "ftp://127.0.0.1/x")


# --------------------------------------------------------------------------- red-team: bounds http.client lacks


@contextlib.contextmanager
def _raw_server(answer: object) -> Iterator[str]:
    """A one-connection server on 127.0.0.1 that reads the request and then calls ``answer(conn)``."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                answer(conn)  # type: ignore[operator]

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def _endless(conn: socket.socket, head: bytes, line: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(head)
        while True:
            conn.sendall(line * 16)


def test_endless_trailers_and_interim_answers_are_cut_off() -> None:
    """http.client reads chunked trailers and `100 Continue` answers without end (5.9 GB in 8 s, then the
    answer was taken as valid); every byte of an answer now counts against MAX_RESPONSE_BYTES."""
    trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
    cases = {
        "trailers": (trailers, b"X-Trailer: " + b"t" * 60000 + b"\r\n"),
        "100 continue": (
            b"",
            b"HTTP/1.1 100 Continue\r\n" + b"X-Filler: " + b"f" * 60000 + b"\r\n\r\n",
        ),
    }
    for what, (head, line) in cases.items():
        with _raw_server(lambda c, h=head, ln=line: _endless(c, h, ln)) as url:
            client = Client(verify=True, timeout=5, headers={}, https=False)
            with pytest.raises(TransportError, match="longer than"):
                client.request("GET", url + "/v2/x/_trust/tuf/timestamp.json")
            client.close()
        assert what


def test_a_whole_answer_has_a_deadline() -> None:
    """A server sending one byte just before each read times out was only cut off by the per-read timeout
    (never); the whole answer must arrive within DEADLINE_FACTOR x timeout."""

    def dribble(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                conn.sendall(b"x")
                threading.Event().wait(0.05)

    with _raw_server(dribble) as url:
        client = Client(verify=True, timeout=0.1, headers={}, https=False)
        with pytest.raises(TransportError, match="no complete answer within 1 s"):
            client.request("GET", url + "/v2/x/_trust/tuf/timestamp.json")
        client.close()


def test_a_negative_chunk_size_is_a_transport_error() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"
    with (
        _raw_server(lambda c: c.sendall(answer)) as url,
        TrustServer(url) as server,
        pytest.raises(TrustServerUnavailableError),
    ):
        server.get(GUN, "timestamp", max_bytes=1024)
