"""A signed download URL that fails on the wire stops the run in one line and leaks nothing.

The errors of requests and urllib3 hold the URL they failed on ("Max retries exceeded with
url: ..."), and a signed URL's query string is its secret. Here the local API hands out URLs
that fail below HTTP: to a closed loopback port (connection refused), to a socket whose
backlog is full, which never answers a handshake (connect timeout; a read timeout's text
names no URL), and with https to a plain-HTTP server (TLS handshake failure). Each run
retries the download as the retry policy says (a new signed URL each try), then stops in one
line with the export left in flight; nothing it writes holds the API key or the URL's
signature or query string: records, state, logs at the default level and at DEBUG, the
exception and its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tap_contactbased import retry
from tap_contactbased.cli import EXPECTED_FAILURES
from tests.conftest import make_config
from tests.fake_api import FakeContactBased
from tests.fast_retries import FAST_RETRIES_COMMAND
from tests.secret_checks import DEBUG, exception_text, leaks
from tests.singer_run import SyncResult, run_command, run_tap

if t.TYPE_CHECKING:
    from collections.abc import Iterator

TLS_HANDSHAKE = b"\x16\x03"  # a TLS record of type handshake: how a ClientHello begins
PLAIN_HTTP_REFUSAL = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
DOWNLOAD_URL = "/intent/feeds/exports/download-url"
COMMAND_LEVELS = {"default": {}, "DEBUG": DEBUG}


class PlainHttpServer:
    """A loopback server that answers whatever arrives with a plain-HTTP 400.

    It keeps the first bytes of each connection, to show what a client sent.
    """

    def __init__(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self.received: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            with connection, contextlib.suppress(OSError):
                connection.settimeout(10)
                self.received.append(connection.recv(65536))
                connection.sendall(PLAIN_HTTP_REFUSAL)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._server.close()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class Failure:
    """A transport failure: what the tap's line says, and what requests raised for it."""

    reason: str
    raised: type[requests.RequestException]


FAILURES = {
    "connection refused": Failure("the connection failed", requests.ConnectionError),
    "connect timeout": Failure("no answer before the timeout", requests.ConnectTimeout),
    "TLS to a plain-HTTP server": Failure("the connection failed", requests.exceptions.SSLError),
}


@contextlib.contextmanager
def broken_storage(kind: str) -> Iterator[tuple[str, PlainHttpServer | None]]:
    """The origin of signed URLs that fail as `kind` says, and the server behind it."""
    if kind == "TLS to a plain-HTTP server":
        server = PlainHttpServer()
        try:
            yield f"https://127.0.0.1:{server.port}", server
        finally:
            server.close()
        return
    with socket.socket() as sock, socket.socket() as filler:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if kind == "connect timeout":
            # A backlog of 0 holds one connection nobody accepts; once it holds the
            # filler, Linux drops every further handshake and connects time out.
            sock.listen(0)
            filler.connect(("127.0.0.1", port))
        # Otherwise bound and never listening: connections are refused, and no other
        # program can take the port meanwhile.
        yield f"http://127.0.0.1:{port}", None


def config_for(api: FakeContactBased) -> dict[str, t.Any]:
    return make_config(api, feed_ids=api.feed_ids[:1], read_mode="csv", request_timeout_seconds=1)


def stopped_on_the_download(api: FakeContactBased, result: SyncResult) -> str:
    """Assert the run delivered nothing and left the export in flight; name the download."""
    (export_id,) = api.created_exports
    assert result.records("export_rows") == []
    assert result.last_state is not None
    (partition,) = result.last_state["bookmarks"]["export_rows"]["partitions"]
    assert "delivered_through" not in partition
    assert partition["in_flight"]["export_id"] == export_id
    assert partition["in_flight"]["rows_done"] == 0
    return f"the CSV download of export {export_id} of feed {api.feed_ids[0]}"


@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_download_failing_on_the_wire_stops_in_one_line_and_leaks_nothing(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, tmp_path: Path, kind: str
) -> None:
    failure = FAILURES[kind]
    # Each of the 8 tries of a timeout waits request_timeout_seconds (1 s at least), so
    # that kind runs in process only, where the exception, its traceback, the records,
    # the state and every log line at DEBUG are read; the command adds its own output
    # path, the same for every kind, which the other kinds cover.
    levels = {} if failure.raised is requests.ConnectTimeout else COMMAND_LEVELS
    with broken_storage(kind) as (origin, server):
        api.download_origin = origin
        config = config_for(api)

        with caplog.at_level(logging.DEBUG):
            in_process = run_tap(config, streams=["export_rows"], raise_errors=False)
        # Run as Meltano runs it, resuming the export the first run left in flight.
        commands = {
            level: run_command(
                [],
                tmp_path,
                config=config,
                state=in_process.last_state,
                env=env,
                tap_command=FAST_RETRIES_COMMAND,
            )
            for level, env in levels.items()
        }

    # The fault hit the download, as meant: each run tried it as often as the retry
    # policy allows, each try with a new signed URL, failing as `kind` says, and nothing else.
    runs = 1 + len(commands)
    assert api.count_requests("POST", DOWNLOAD_URL) == runs * retry.MAX_TRIES
    assert len(api.issued_signatures) == runs * retry.MAX_TRIES
    assert not any(r.path.startswith("/files/") for r in api.requests)
    error = in_process.error
    assert isinstance(error, EXPECTED_FAILURES)
    assert type(error.__context__) is failure.raised  # what requests raised, hidden
    if server is not None:
        assert len(server.received) == runs * retry.MAX_TRIES
        assert all(data.startswith(TLS_HANDSHAKE) for data in server.received)

    # One line, the export kept in flight for the next run.
    what = stopped_on_the_download(api, in_process)
    assert str(error).startswith(what)
    assert failure.reason in str(error)
    assert "\n" not in str(error)
    written = [exception_text(error), in_process.stdout_text(), caplog.text]
    for level, result in commands.items():
        assert result.returncode == 1, level
        assert stopped_on_the_download(api, result) == what
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"tap-contactbased: error: {what}"), level
        assert failure.reason in last
        assert ("Traceback" in result.stderr) is (level == "DEBUG")
        written += [result.stdout, result.stderr]

    # Nothing written holds a secret; debug output was scanned.
    assert "DEBUG" in caplog.text
    if "DEBUG" in commands:
        assert "DEBUG" in commands["DEBUG"].stderr
    assert leaks(api, "\n".join(written)) == []
