"""A throw-away HTTP server on 127.0.0.1 for download tests, with switches for the ways real servers misbehave."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>Too many users</body></html>"
)


@dataclass
class Loopback:
    """A running server: its base URL, what it was asked for, and how it should misbehave (changeable at any time).

    Attributes:
        url: base URL ending in "/", e.g. "http://127.0.0.1:41234/".
        files: URL path (without the leading "/") -> body.
        requests: (path, Range header or None) of every request, in order.
        fail_first: answer this many of the next requests with HTTP 503.
        truncate_first: answer this many of the next requests with half the body under the full Content-Length.
        html: paths answered with an HTML page (HTTP 200) instead of their body.
        ranges: honour "Range: bytes=N-" with 206 Partial Content.
    """

    url: str
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    fail_first: int = 0
    truncate_first: int = 0
    html: set[str] = field(default_factory=set)
    ranges: bool = True


@contextmanager
def serve(content: Path | Mapping[str, bytes], **switches: object) -> Iterator[Loopback]:
    """Serve a directory's files, or a mapping of path -> bytes, until the block exits.

    Args:
        content: a directory (served by relative path) or a mapping of path -> bytes.
        switches: initial values of the `Loopback` misbehaviour fields.
    """
    if isinstance(content, Path):
        files = {p.relative_to(content).as_posix(): p.read_bytes() for p in content.rglob("*") if p.is_file()}
    else:
        files = dict(content)
    state = Loopback(url="", files=files, **switches)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(path: str = "file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens, so connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def _handler_for(state: Loopback) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?")[0].lstrip("/")
            with lock:
                state.requests.append((path, self.headers.get("Range")))
                failing = state.fail_first > 0
                truncating = not failing and state.truncate_first > 0
                state.fail_first -= failing
                state.truncate_first -= truncating
            if failing:
                return self._answer(503, b"busy")
            if path in state.html:
                return self._answer(200, HTML_PAGE, content_type="text/html")
            if path not in state.files:
                return self._answer(404, b"not found")
            self._send_file(state.files[path], truncating)

        def _send_file(self, body: bytes, truncating: bool) -> None:
            start = _range_start(self.headers.get("Range")) if state.ranges else 0
            if start >= len(body) > 0:
                return self._answer(416, b"")
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Connection", "close")
            self.end_headers()
            part = body[start:]
            self.wfile.write(part[: len(part) // 2] if truncating else part)
            self.close_connection = True

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return Handler


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return 0
    return int(header[len("bytes=") : -1])
