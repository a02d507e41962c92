"""Fixtures for the dataset tests: an isolated cache, file:// and loopback HTTP origins.

No test here touches the internet: origins are files under tmp_path, a server on
127.0.0.1 started by the test, or a closed loopback port (the offline case).
"""

import http.server
import socket
import threading

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """PYMINIDL_HOME in tmp_path; proxies bypassed so loopback requests stay local."""
    path = tmp_path / "home"
    monkeypatch.setenv("PYMINIDL_HOME", str(path))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    return path


@pytest.fixture
def origin_dir(tmp_path):
    path = tmp_path / "origin"
    path.mkdir()
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.requests.append(self.path)
        target = server.root / self.path.lstrip("/")
        if not target.is_file():
            self.send_error(404, "Not Found")
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A truncated transfer: the full length is announced, part of the body is sent.
        cut = server.truncate.get(self.path.lstrip("/"))
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_origin(origin_dir):
    """A loopback HTTP server over origin_dir: ``.url(name)``, ``.requests``, ``.truncate``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.root, server.requests, server.truncate = origin_dir, [], {}
    server.url = lambda name: f"http://127.0.0.1:{server.server_address[1]}/{name}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """A loopback URL nobody listens on: connecting fails at once, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return lambda name: f"http://127.0.0.1:{port}/{name}"
