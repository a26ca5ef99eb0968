"""An HTTPS server on 127.0.0.1 that redirects, for tests of where downloads may go.

Its certificate (tests/data/tls, self-signed for 127.0.0.1, valid 2000-2100) is trusted
only by a session that names it: `session.verify = str(CERT)`.
"""

from __future__ import annotations

import ssl
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if t.TYPE_CHECKING:
    from types import TracebackType

TLS = Path(__file__).resolve().parent / "data" / "tls"
CERT = TLS / "cert.pem"
CSV = b"export_row,company_name\n1,Acme\n"


class RedirectingServer(ThreadingHTTPServer):
    """Answers `GET /redirect?to=<url>` with a 302 to `url`, `GET /file` with a CSV."""

    daemon_threads = True

    def __init__(self) -> None:
        """Bind a free loopback port, with TLS."""
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CERT, TLS / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.paths: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """https://127.0.0.1:PORT."""
        return f"https://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> RedirectingServer:
        """Serve in a thread."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving and release the port."""
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: RedirectingServer

    def log_message(self, format: str, *args: t.Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Redirect, or serve the file."""
        self.server.paths.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect?to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(CSV)))
        self.end_headers()
        self.wfile.write(CSV)
