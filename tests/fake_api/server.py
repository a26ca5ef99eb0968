"""HTTP transport: parse requests, inject faults, write JSON, XML and chunked CSV answers."""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import json
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .drift import echo_request, encode_json
from .exports import csv_chunks
from .faults import Action, Decision, format_retry_after
from .routes import (
    FILES_PREFIX,
    PAGE_PATH,
    CsvReply,
    JsonReply,
    Reply,
    Request,
    RequestRecord,
    XmlReply,
    dispatch,
    json_error_item,
)

if TYPE_CHECKING:
    from .fake import FakeContactBased

# A body that starts like a real answer and then breaks off, as a broken proxy would send it.
_BAD_JSON = b'{"items": [{"feed_id": "3f2a8d1b-9c0e-5f47-a1b2-'
_HTML = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    b"<body><h1>Checking your browser before accessing the API</h1></body></html>"
)


class FakeServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its fake API."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: FakeContactBased, port: int) -> None:
        """Bind to 127.0.0.1 (port 0: a free port)."""
        self.api = api
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection so that `close_connections` can end it."""
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget a connection that ends."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so a stopped API stops answering for good."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(api: FakeContactBased, port: int = 0) -> FakeServer:
    """Bind a server for the fake API; the caller runs `serve_forever`."""
    return FakeServer(api, port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ContactBasedFake/0.1"
    timeout = 600  # a forgotten idle keep-alive connection does not hold a thread forever

    server: FakeServer

    def setup(self) -> None:
        """Send small answers at once: headers and body are separate writes."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header tells the API's clock, which tests move, not this machine's."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return email.utils.format_datetime(self.server.api.now(), usegmt=True)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve("POST")

    def do_PUT(self) -> None:
        """Serve a PUT (always 404 or 405)."""
        self._serve("PUT")

    def do_PATCH(self) -> None:
        """Serve a PATCH (always 404 or 405)."""
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        """Serve a DELETE (always 404 or 405)."""
        self._serve("DELETE")

    # One request

    def _serve(self, method: str) -> None:
        with self.server.api.serving():
            self._serve_one(method)

    def _serve_one(self, method: str) -> None:
        api = self.server.api
        split = urllib.parse.urlsplit(self.path)
        request = self._read_request(method, split.path, urllib.parse.parse_qs(split.query))
        download = split.path.startswith(FILES_PREFIX)
        page = method == "POST" and split.path == PAGE_PATH
        decision = api.fault_engine.decide(
            download=download,
            page=page,
            endpoint=f"{method} {split.path}",
            page_number=request.body.get("page")
            if page and isinstance(request.body, dict)
            else None,
        )
        if decision.delay > 0:
            time.sleep(decision.delay)  # injected latency, not synchronisation
        self._unrecorded: Request | None = request
        status = self._answer(api, request, decision)
        if self._unrecorded is not None:  # no answer was sent (dropped connection)
            api.record(RequestRecord(request.method, request.path, status, request.body))

    def send_response(self, code: int, message: str | None = None) -> None:
        """Record the request before its answer leaves, so a client never sees it first."""
        request = getattr(self, "_unrecorded", None)
        if request is not None:
            self._unrecorded = None
            self.server.api.record(RequestRecord(request.method, request.path, code, request.body))
        super().send_response(code, message)

    def _read_request(self, method: str, path: str, query: dict[str, list[str]]) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body, body_error = None, None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                position, message = getattr(error, "pos", 0), getattr(error, "msg", str(error))
                body_error = json_error_item(position, message)
        return Request(method, path, query, self.headers.get("X-API-Key"), body, body_error)

    def _answer(self, api: FakeContactBased, request: Request, decision: Decision) -> int:
        """Write the answer, spoiled by the decided fault; return the status sent (0: none)."""
        action = decision.action
        if action is Action.DROP:
            self.close_connection = True
            return 0
        if action is Action.BAD_JSON:
            return self._send_bytes(200, "application/json", _BAD_JSON)
        if action is Action.HTML:
            return self._send_bytes(200, "text/html; charset=utf-8", _HTML)
        download = request.path.startswith(FILES_PREFIX)
        reply = _error_reply(decision, download=download) or dispatch(api, request)
        cut = action is Action.CUT
        if isinstance(reply, CsvReply):
            return self._send_csv(api, reply, truncate=cut)
        echo = api.faults.echo_request
        url = api.url + self.path
        if isinstance(reply, XmlReply):
            if echo:
                reply = replace(reply, message=escape(f"{reply.message} Request: GET {url}"))
            return self._send_xml(reply)
        if reply.status >= 400:
            payload = api.drift.error(reply.payload)
            if api.faults.error_detail is not None and isinstance(payload, dict):
                payload = {**payload, "detail": api.faults.error_detail}
            if echo:
                line = f"{request.method} {request.path}"
                payload = echo_request(payload, echo, line, url, dict(self.headers))
            reply = JsonReply(reply.status, payload, reply.headers)
        return self._send_json(reply, cut=cut)

    # Writers

    def _send_bytes(
        self,
        status: int,
        content_type: str,
        data: bytes,
        headers: dict[str, str] | None = None,
        *,
        cut: bool = False,
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut:
            # Promise the full length, send half, hang up: the client sees a short body.
            self._write_body(data[: len(data) // 2])
            self.close_connection = True
        else:
            self._write_body(data)
        return status

    def _write_body(self, data: bytes) -> None:
        """Write a body; a client that hangs up first (it refused the body) ends the connection."""
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, reply: JsonReply, *, cut: bool = False) -> int:
        data = encode_json(reply.payload)
        if self.server.api.faults.json_without_length and not cut:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self._write_body(b"%x\r\n%b\r\n0\r\n\r\n" % (len(data), data))
            return reply.status
        return self._send_bytes(reply.status, "application/json", data, reply.headers, cut=cut)

    def _send_xml(self, reply: XmlReply) -> int:
        data = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{reply.code}</Code><Message>{reply.message}</Message></Error>"
        ).encode()
        return self._send_bytes(reply.status, "application/xml", data, reply.headers)

    def _send_csv(self, api: FakeContactBased, reply: CsvReply, *, truncate: bool) -> int:
        export, page = reply.export, reply.page
        endless = api.faults.gzip_endless_line_bytes
        if endless > 0 and api.drift.hostile(export.feed_id):
            return self._send_endless_line(export.columns, endless)
        start, stop = export.page_bounds(page)
        faults = api.faults
        if truncate:
            stop = start + (stop - start) // 2
        stop = max(start, stop - faults.csv_rows_missing)
        if faults.csv_cut_at_row is not None:
            stop, truncate = min(stop, start + faults.csv_cut_at_row - 1), True
        chunks = csv_chunks(
            export,
            start,
            stop,
            first_row_is_export_start=start == 0,
            nul=faults.nul_in_csv,
            huge_bytes=faults.huge_field_bytes,
            texts=faults.first_row_texts,
            bundle_text=faults.bundle_cell_text,
        )
        name = export.export_id if page is None else f"{export.export_id}-page-{page}"
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Content-Disposition", f'attachment; filename="{name}.csv"')
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if truncate:
                self.close_connection = True  # no final chunk: the body is incomplete
            else:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-file
        return 200

    def _send_endless_line(self, columns: list[str], size: int) -> int:
        """A gzip CSV: the header, then one line of `size` bytes that never ends.

        Members of 1 MiB each, compressed once: about 1 KB a member on the wire.
        """
        header = (",".join(columns) + "\r\n").encode()
        member = gzip.compress(b"x" * MIB)
        body = gzip.compress(header) + member * -(-size // MIB)
        return self._send_bytes(200, "text/csv; charset=utf-8", body, {"Content-Encoding": "gzip"})


MIB = 1024 * 1024


def _error_reply(decision: Decision, *, download: bool) -> Reply | None:
    """The 429, 409, 403 or 503 answer of a fault: FastAPI style, or S3 style for downloads."""
    action = decision.action
    if action in (Action.RATE_LIMIT, Action.RATE_LIMIT_BARE):
        headers = {}
        if action is Action.RATE_LIMIT and decision.retry_after is not None:
            headers["Retry-After"] = format_retry_after(decision.retry_after)
        if download:
            return XmlReply(429, "SlowDown", "Please reduce your request rate.", headers)
        return JsonReply(429, {"detail": "Rate limit exceeded"}, headers)
    if action is Action.CONFLICT and not download:
        return JsonReply(409, {"detail": "Concurrent export limit reached; retry later"})
    if action is Action.FORBIDDEN:
        if download:
            return XmlReply(403, "AccessDenied", "Request has expired")
        return JsonReply(403, {"detail": "Not permitted for this organization"})
    if action is Action.SERVER_ERROR:
        if download:
            return XmlReply(503, "ServiceUnavailable", "Please retry your request.")
        return JsonReply(503, {"detail": "Service temporarily unavailable"})
    return None
