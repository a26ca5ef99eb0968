"""The one base stream for the ContactBased API: auth, retries and error classification.

Every request of the tap goes through here, whether the SDK drives it (the paginated
organization streams) or the export and enrichment code does (through `ContactBasedApi`):
the same session, the same `X-API-Key` auth, the same bounded retries that honour
`Retry-After`, and the same one-line errors. Messages name the endpoint by method and path
only: never a query string, a header or a signed download URL.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
import typing as t
from functools import cached_property
from http import HTTPStatus

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import RetriableAPIError

from tap_contactbased.errors import ApiError, TransientApiError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

API_KEY_HEADER = "X-API-Key"

# What a user should do about each refusal; the API's own `detail` is added to it.
STATUS_ADVICE: Mapping[int, str] = {
    HTTPStatus.UNAUTHORIZED: "the API key was refused: check the api_key setting",
    HTTPStatus.PAYMENT_REQUIRED: (
        "not enough records credits: lower lookback_days or max_rows, or add credits"
    ),
    HTTPStatus.FORBIDDEN: (
        "not permitted for this organization: check feed_ids, lookback_days and the "
        "bundles enabled on your plan"
    ),
    HTTPStatus.NOT_FOUND: "not found: check the ids in your settings",
    HTTPStatus.CONFLICT: "the API refused the request in the current state of the object",
    HTTPStatus.UNPROCESSABLE_ENTITY: "the API rejected the request: check the settings named",
}

MAX_RETRY_AFTER_SECONDS = 300.0
QUERY_STRING = re.compile(r"\?\S*")


class RedactQueryStrings(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included.

    The query string of a signed download URL is its secret, so it never reaches a log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace query strings in the record's arguments; keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                QUERY_STRING.sub("?<redacted>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_request_logs() -> None:
    """Install the redaction on urllib3's request log, once."""
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactQueryStrings) for f in urllib3_log.filters):
        urllib3_log.addFilter(RedactQueryStrings())


def endpoint_of(request: requests.PreparedRequest | None, fallback: str = "request") -> str:
    """Name a request by method and path, never by its query string or host."""
    if request is None or request.path_url is None:
        return fallback
    return f"{request.method} {request.path_url.split('?', 1)[0]}"


def api_detail(response: requests.Response) -> str:
    """The API's FastAPI-style `detail`, flattened to one line; empty for non-JSON bodies.

    Non-JSON error bodies (proxy pages, object-storage XML) are never echoed: some of
    them repeat the signature of the request they refuse.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                continue
            location = ".".join(str(part) for part in item.get("loc", []) if part != "body")
            parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
        return "; ".join(parts)
    return "" if detail is None else " ".join(str(detail).split())


def status_error_message(endpoint: str, response: requests.Response) -> str:
    """One line for a refused request: endpoint, status, the API's detail, the advice."""
    status = response.status_code
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = response.reason or "Error"
    message = f"{endpoint}: {status} {reason}"
    if detail := api_detail(response):
        message += f" ({detail})"
    if advice := STATUS_ADVICE.get(status):
        message += f": {advice}"
    return message


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta or HTTP date), capped."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def describe_transport_error(exc: requests.RequestException) -> str:
    """Say what went wrong on the wire without echoing requests' message (it holds the URL)."""
    if isinstance(exc, requests.Timeout):
        return "no answer before the timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped in the middle of the response"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed or was dropped"
    return f"the request failed ({type(exc).__name__})"


def has_more_pages(answer: Mapping[str, t.Any], page: int, page_size: int) -> bool:
    """Whether a list envelope `{"items", "page", "page_size", "total"}` has another page.

    Without `total` [assumed possible], a short page is the last one.
    """
    items = answer.get("items") or []
    total = answer.get("total")
    if not items:
        return False
    if total is None:
        return len(items) >= page_size
    return page * page_size < int(total)


def envelope_items(
    fetch: Callable[[int], Mapping[str, t.Any]], page_size: int
) -> Iterator[dict[str, t.Any]]:
    """Every item of a paginated list, `fetch(page)` returning one envelope (pages from 1)."""
    page = 1
    while True:
        answer = fetch(page)
        yield from answer.get("items") or []
        if not has_more_pages(answer, page, page_size):
            return
        page += 1


class ContactBasedStream(RESTStream[t.Any]):
    """Base stream: `X-API-Key` auth, bounded retries honouring `Retry-After`, clear errors."""

    records_jsonpath = "$[*]"
    # A redirect could carry the key header to another host; the API never redirects.
    allow_redirects = False

    retry_initial_wait = 1.0
    retry_max_wait = 60.0
    retry_max_tries = 8

    @property
    def url_base(self) -> str:
        """The API root from the `api_url` setting."""
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        """Every API request carries the key in the `X-API-Key` header."""
        return APIKeyAuthenticator(key=API_KEY_HEADER, value=self.config["api_key"])

    @property
    def http_headers(self) -> dict[str, str]:
        """The API speaks JSON."""
        return {"Accept": "application/json"}

    @property
    def timeout(self) -> int:
        """Seconds to wait for an answer before the request counts as failed."""
        return int(self.config["request_timeout_seconds"])

    @cached_property
    def api(self) -> ContactBasedApi:
        """Requests outside the SDK's record flow, under this stream's policies."""
        return ContactBasedApi(self)

    def generate_child_contexts(
        self, record: dict[str, t.Any], context: Context | None
    ) -> t.Iterable[Context | None]:
        """No child streams here; the SDK would still copy the context for every record."""
        if self.child_streams:
            yield from super().generate_child_contexts(record, context)

    def check_status(self, response: requests.Response) -> None:
        """Classify a response by status: retriable, fatal with one line, or fine."""
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise TransientApiError(
                status_error_message(endpoint_of(response.request), response), response
            )
        if status >= HTTPStatus.MULTIPLE_CHOICES:
            raise ApiError(status_error_message(endpoint_of(response.request), response), status)

    def validate_response(self, response: requests.Response) -> None:
        """Check the status, then that the body is JSON, so a garbled answer is retried."""
        self.check_status(response)
        try:
            response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "no content type")
            msg = (
                f"{endpoint_of(response.request)}: answered {response.status_code} with a "
                f"body that is not JSON ({content_type})"
            )
            raise TransientApiError(msg, response) from None

    def response_error_message(self, response: requests.Response) -> str:
        """The SDK's default message holds the whole body; ours holds only the detail."""
        return status_error_message(endpoint_of(response.request), response)

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Wait what `Retry-After` asks for, else back off exponentially up to a cap."""
        attempt = 0
        exception = yield 0.0  # backoff primes the generator; this value is unused
        while True:
            response = exception.response if isinstance(exception, RetriableAPIError) else None
            asked = retry_after_seconds(response)
            exponential = min(self.retry_max_wait, self.retry_initial_wait * 2**attempt)
            attempt += 1
            exception = yield exponential if asked is None else asked

    def backoff_jitter(self, value: float) -> float:
        """Spread retries by up to a quarter of the wait, never below what was asked."""
        return value * (1 + random.random() / 4)  # noqa: S311 - jitter, not cryptography

    def backoff_max_tries(self) -> int:
        """Tries per request, the first included."""
        return self.retry_max_tries

    def backoff_handler(self, details: Details) -> None:
        """Log each retry with the endpoint and the reason, never the arguments."""
        exception = details.get("exception")
        self.log(
            "Retrying in %.2f s (try %d of %d): %s",
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.retry_max_tries,
            exception if isinstance(exception, RetriableAPIError) else type(exception).__name__,
            level=logging.WARNING,
        )


class ContactBasedApi:
    """JSON requests and streamed downloads for the export and enrichment code.

    They share the stream's session, auth, timeout and retry policy. Transport errors are
    re-raised as `TransientApiError` with a message of our own, because requests' messages
    contain the URL, and a signed download URL is a secret.
    """

    def __init__(self, stream: ContactBasedStream) -> None:
        """Serve requests for `stream`."""
        self._stream = stream
        redact_request_logs()

    def get(self, path: str, params: Mapping[str, t.Any] | None = None) -> t.Any:
        """GET a JSON document."""
        return self._json("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, t.Any]) -> t.Any:
        """POST a JSON body and return the JSON answer."""
        return self._json("POST", path, body=body)

    def open_post(self, path: str, body: Mapping[str, t.Any]) -> requests.Response:
        """POST and return the response unread, for bodies parsed as they arrive."""
        prepared = self._prepare("POST", path, body=body)
        return self._stream.request_decorator(self._send_streamed)(prepared, None)

    def open_download(self, url: str, what: str) -> requests.Response:
        """GET a signed URL without the API key and return the response unread.

        `what` names the download in messages instead of the URL. A 403 means the URL
        expired: it raises `ExpiredDownloadUrl` so that the caller asks for a new one.
        """
        prepared = requests.Request("GET", url, headers={"Accept": "text/csv"}).prepare()

        def send(request: requests.PreparedRequest, _: Context | None) -> requests.Response:
            return self._send_download(request, what)

        return self._stream.request_decorator(send)(prepared, None)

    def _prepare(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, t.Any] | None = None,
        body: Mapping[str, t.Any] | None = None,
    ) -> requests.PreparedRequest:
        return self._stream.build_prepared_request(
            method=method,
            url=f"{self._stream.url_base}{path}",
            params=dict(params or {}),
            json=None if body is None else dict(body),
            headers=self._stream.http_headers,
        )

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, t.Any] | None = None,
        body: Mapping[str, t.Any] | None = None,
    ) -> t.Any:
        prepared = self._prepare(method, path, params=params, body=body)
        return self._stream.request_decorator(self._send_checked)(prepared, None).json()

    def _send(self, prepared: requests.PreparedRequest, *, stream: bool) -> requests.Response:
        try:
            return self._stream.requests_session.send(
                prepared,
                timeout=self._stream.timeout,
                stream=stream,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            msg = f"{endpoint_of(prepared)}: {describe_transport_error(exc)}"
            raise TransientApiError(msg) from None

    def _send_checked(
        self, prepared: requests.PreparedRequest, _: Context | None
    ) -> requests.Response:
        response = self._send(prepared, stream=False)
        self._stream.validate_response(response)
        return response

    def _send_streamed(
        self, prepared: requests.PreparedRequest, _: Context | None
    ) -> requests.Response:
        response = self._send(prepared, stream=True)
        try:
            self._stream.check_status(response)
        except Exception:
            response.close()
            raise
        return response

    def _send_download(self, prepared: requests.PreparedRequest, what: str) -> requests.Response:
        try:
            response = self._stream.requests_session.send(
                prepared, timeout=self._stream.timeout, stream=True
            )
        except requests.RequestException as exc:
            raise TransientApiError(f"{what}: {describe_transport_error(exc)}") from None
        status = response.status_code
        if status < HTTPStatus.MULTIPLE_CHOICES:
            return response
        response.close()
        if status == HTTPStatus.FORBIDDEN:
            raise ExpiredDownloadUrl(f"{what}: the signed URL was refused (403), it has expired")
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise TransientApiError(f"{what}: {status} {response.reason}", response)
        raise ApiError(f"{what}: {status} {response.reason}", status)


class ExpiredDownloadUrl(Exception):  # noqa: N818 - a condition, not an error of the user
    """The signed URL no longer works; ask the API for a new one."""
