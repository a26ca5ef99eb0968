"""The HTTP client of the tap: one request path, one retry policy, one-line errors.

Every request of the tap goes through the same policies, whether the SDK drives it (the
paginated organization streams) or the export and enrichment code does (through
`ContactBasedApi`): the same `X-API-Key` auth, the same bounded retries that honour
`Retry-After`, the same classification of answers, and the same one-line errors. Messages
name the endpoint by method and path only: never a query string, a header or a signed URL.
"""

from __future__ import annotations

import email.utils
import random
import time
import typing as t
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus

import requests

from tap_contactbased import endpoints, limits
from tap_contactbased.answers import BadAnswer, BodyCap, decode_answer, too_deep
from tap_contactbased.errors import ApiError, ConfigError, RefusedAnswerError, TransientApiError
from tap_contactbased.redaction import api_text, register_url_secrets
from tap_contactbased.spelling import normalise_id_spelling

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from singer_sdk.helpers.types import Context

    from tap_contactbased.client import ContactBasedStream

T = t.TypeVar("T")
Sender = t.Callable[[requests.PreparedRequest, "Context | None"], requests.Response]

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
MAX_DOWNLOAD_REDIRECTS = 5
# Errors of a request that cannot even be sent (a URL or header value requests or
# http.client refuses): sending it again cannot help, and their text holds the value.
UNSENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    ValueError,
)
PAGE_ADVICE = "Read this export with read_mode csv, or lower page_size for the next exports."
ANSWER_ADVICE = "No answer of the contract comes near it: report this difference."
# The one field of an error body the tap repeats: FastAPI's `detail` [assumed].
DETAIL_KEY = "detail"


def endpoint_of(request: requests.PreparedRequest | None, fallback: str = "request") -> str:
    """Name a request by method and path, never by its query string or host."""
    if request is None or request.path_url is None:
        return fallback
    return f"{request.method} {request.path_url.split('?', 1)[0]}"


def body_cap(request: requests.PreparedRequest) -> BodyCap:
    """The most of an answer to `request` the tap reads: a page may be larger than the rest."""
    what = endpoint_of(request)
    if what.startswith("POST ") and what.endswith(endpoints.EXPORTS_PAGE):
        return BodyCap(limits.MAX_PAGE_BYTES, what, PAGE_ADVICE)
    return BodyCap(limits.MAX_ANSWER_BYTES, what, ANSWER_ADVICE)


def refused(what: str, verdict: BadAnswer) -> RefusedAnswerError:
    """The one line for an answer past a cap of `limits`."""
    return RefusedAnswerError(
        f"{what}: the answer {verdict}; it is not asked for again. {ANSWER_ADVICE}"
    )


def decoded_answer(response: requests.Response) -> t.Any:
    """The JSON of an answer: a body that is not JSON is retried, one past a cap refused."""
    what = endpoint_of(response.request)
    try:
        return decode_answer(response.content)
    except BadAnswer as verdict:
        raise refused(what, verdict) from None
    except ValueError:
        content_type = response.headers.get("Content-Type", "no content type")
        msg = (
            f"{what}: answered {response.status_code} with a body that is not JSON ({content_type})"
        )
        raise TransientApiError(msg, response) from None


def api_detail(response: requests.Response) -> str:
    """The API's FastAPI-style `detail` as one short line; empty for anything else.

    Only `detail` when it is a text, or the `msg` texts (with their `loc`) of FastAPI's
    validation list, are repeated, cleaned and capped (`redaction.api_text`): other fields
    and shapes (objects, `message`, `error`) and non-JSON bodies are never echoed, because
    an API or a proxy may repeat there what it was sent, key and signed URL included.
    """
    try:
        body = decode_answer(response.content)
    except (ValueError, BadAnswer):
        return ""
    detail = body.get(DETAIL_KEY) if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return api_text(detail)
    parts = []
    for item in detail:
        if not isinstance(item, dict) or not isinstance(item.get("msg"), str):
            continue
        loc = item.get("loc")
        where = (
            [p for p in loc if isinstance(p, (str, int)) and p != "body"]
            if isinstance(loc, list)
            else []
        )
        location = ".".join(str(p) for p in where)
        parts.append(f"{location}: {item['msg']}" if location else item["msg"])
    return api_text("; ".join(parts))


def status_error_message(endpoint: str, response: requests.Response) -> str:
    """One line for a refused request: endpoint, status, the API's detail, the advice."""
    status = response.status_code
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = api_text(response.reason) or "Error"
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


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before trying again, and how often: one policy for every retry.

    Requests, re-reads of a cut body and repeated creates all wait this way.
    """

    initial_wait: float
    max_wait: float
    max_tries: int

    def wait(self, attempt: int, response: requests.Response | None = None) -> float:
        """Seconds before the try after failed try number `attempt` (from 1).

        What `Retry-After` asks for, else an exponential wait up to `max_wait`.
        """
        asked = retry_after_seconds(response)
        if asked is not None:
            return asked
        return min(self.max_wait, self.initial_wait * 2.0 ** (attempt - 1))

    @staticmethod
    def jitter(seconds: float) -> float:
        """Spread retries by up to a quarter of the wait, never below what was asked."""
        return seconds * (1 + random.random() / 4)  # noqa: S311 - jitter, not cryptography


def describe_transport_error(exc: requests.RequestException) -> str:
    """Say what went wrong on the wire without echoing requests' message (it holds the URL)."""
    if isinstance(exc, requests.Timeout):
        return "no answer before the timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped in the middle of the response"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed or was dropped"
    return f"the request failed ({type(exc).__name__})"


def check_status(response: requests.Response) -> None:
    """Classify an answer by status: retriable, refused with one line, or fine."""
    status = response.status_code
    if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        raise TransientApiError(
            status_error_message(endpoint_of(response.request), response), response
        )
    if status >= HTTPStatus.MULTIPLE_CHOICES:
        raise ApiError(status_error_message(endpoint_of(response.request), response), status)


class UnreadableBodyError(ValueError):
    """A body that arrived whole but cannot be read as what it should be."""


class ContactBasedApi:
    """JSON requests, whole bodies and streamed downloads for the export and enrichment code.

    They share the stream's auth, timeout and retry policy. Each instance has one
    `requests.Session`, used from one thread: `with_own_session` gives a thread its own.
    Transport errors are re-raised as `TransientApiError` with a message of our own,
    because requests' messages contain the URL, and a signed download URL is a secret.
    """

    def __init__(self, stream: ContactBasedStream, session: requests.Session | None = None) -> None:
        """Serve requests for `stream`, on its session unless given another."""
        self._stream = stream
        self._session = session or stream.requests_session

    def with_own_session(self) -> ContactBasedApi:
        """The same client on a session of its own, for another thread."""
        session = requests.Session()
        session.auth = self._stream.authenticator
        return ContactBasedApi(self._stream, session)

    def get(self, path: str, params: Mapping[str, t.Any] | None = None) -> t.Any:
        """GET a JSON document."""
        return self._json(self.prepare("GET", path, params=params), retry=True)

    def post(self, path: str, body: Mapping[str, t.Any], *, retry: bool = True) -> t.Any:
        """POST a JSON body and return the JSON answer.

        `retry=False` sends it once: for a billed request whose failure the caller checks.
        """
        return self._json(self.prepare("POST", path, body=body), retry=retry)

    def prepare(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, t.Any] | None = None,
        body: Mapping[str, t.Any] | None = None,
    ) -> requests.PreparedRequest:
        """An authenticated request to the API (built on the calling thread)."""
        return self._stream.build_prepared_request(
            method=method,
            url=f"{self._stream.url_base}{path}",
            params=dict(params or {}),
            json=None if body is None else dict(body),
            headers=self._stream.http_headers,
        )

    def send_decoded(self, prepared: requests.PreparedRequest, decode: Callable[[bytes], T]) -> T:
        """Send, read the whole body and decode it, under the retry policy.

        A body cut on the way, or one that `decode` cannot read, is asked for again like a
        failed request: the API's exports are frozen, so the same answer comes back.
        """

        def attempt(request: requests.PreparedRequest, _: Context | None) -> T:
            response = self._send(request, stream=True)
            try:
                check_status(response)
                content = response.content
            except requests.RequestException as exc:
                msg = f"{endpoint_of(request)}: {describe_transport_error(exc)}"
                raise TransientApiError(msg) from None
            finally:
                response.close()
            try:
                return decode(content)
            except BadAnswer as verdict:
                raise refused(endpoint_of(request), verdict) from None
            except RecursionError:
                raise refused(endpoint_of(request), too_deep()) from None
            except ValueError as exc:
                reason = str(exc) if isinstance(exc, UnreadableBodyError) else type(exc).__name__
                msg = f"{endpoint_of(request)}: the answer could not be read ({reason})"
                raise TransientApiError(msg) from None

        # The SDK types its retry decorator for responses; it returns what the function does.
        retried = self._stream.request_decorator(t.cast("Sender", attempt))
        return t.cast("T", retried(prepared, None))

    def open_download(self, url: str, what: str) -> requests.Response:
        """GET a signed URL without the API key and return the response unread.

        `what` names the download in messages instead of the URL. A 403 means the URL
        expired: it raises `ExpiredDownloadUrl` so that the caller asks for a new one.
        """
        register_url_secrets(url)
        prepared = self._download_request(url, what)

        def send(request: requests.PreparedRequest, _: Context | None) -> requests.Response:
            return self._send_download(request, what)

        return self._stream.request_decorator(send)(prepared, None)

    @staticmethod
    def _download_request(url: str, what: str) -> requests.PreparedRequest:
        # Prepared without the session: the signed URL is its own authorization, and the
        # API key must not travel to object storage.
        try:
            return requests.Request("GET", url, headers={"Accept": "text/csv"}).prepare()
        except (requests.RequestException, ValueError) as exc:
            msg = f"{what}: the API gave a download URL that cannot be used ({type(exc).__name__})"
            raise ApiError(msg) from None

    def _json(self, prepared: requests.PreparedRequest, *, retry: bool) -> t.Any:
        def attempt(request: requests.PreparedRequest, _: Context | None) -> t.Any:
            response = self._send(request, stream=False)
            check_status(response)
            return decoded_answer(response)

        # The SDK types its retry decorator for responses; it returns what the function does.
        send = self._stream.request_decorator(t.cast("Sender", attempt)) if retry else attempt
        return normalise_id_spelling(send(prepared, None))

    def _send(self, prepared: requests.PreparedRequest, *, stream: bool) -> requests.Response:
        try:
            return self._session.send(
                prepared,
                timeout=self._stream.timeout,
                stream=stream,
                allow_redirects=False,
            )
        except UNSENDABLE as exc:
            msg = (
                f"{endpoint_of(prepared)}: the request cannot be sent ({type(exc).__name__}): "
                "check the api_url and api_key settings"
            )
            raise ConfigError(msg) from None
        except requests.RequestException as exc:
            msg = f"{endpoint_of(prepared)}: {describe_transport_error(exc)}"
            raise TransientApiError(msg) from None

    def _send_download(self, prepared: requests.PreparedRequest, what: str) -> requests.Response:
        """Send, following redirects by hand: never from https to a plain connection."""
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            try:
                response = self._session.send(
                    prepared, timeout=self._stream.timeout, stream=True, allow_redirects=False
                )
            except UNSENDABLE as exc:
                msg = f"{what}: the request cannot be sent ({type(exc).__name__})"
                raise ApiError(msg) from None
            except requests.RequestException as exc:
                raise TransientApiError(f"{what}: {describe_transport_error(exc)}") from None
            if not response.is_redirect:
                return self._download_answer(response, what)
            target = urllib.parse.urljoin(
                prepared.url or "", self._session.get_redirect_target(response) or ""
            )
            response.close()
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            if urllib.parse.urlsplit(prepared.url or "").scheme == "https" and scheme != "https":
                msg = (
                    f"{what}: the download was redirected from https to {api_text(scheme)}; "
                    "refused, so that the signed URL and the contacts never travel unencrypted"
                )
                raise ApiError(msg)
            register_url_secrets(target)
            prepared = self._download_request(target, what)
        raise ApiError(f"{what}: more than {MAX_DOWNLOAD_REDIRECTS} redirects")

    @staticmethod
    def _download_answer(response: requests.Response, what: str) -> requests.Response:
        status = response.status_code
        if status < HTTPStatus.MULTIPLE_CHOICES:
            return response
        response.close()
        reason = api_text(response.reason)
        if status == HTTPStatus.FORBIDDEN:
            raise ExpiredDownloadUrl(f"{what}: the signed URL was refused (403), it has expired")
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise TransientApiError(f"{what}: {status} {reason}", response)
        raise ApiError(f"{what}: {status} {reason}", status)


class ExpiredDownloadUrl(Exception):  # noqa: N818 - a condition, not an error of the user
    """The signed URL no longer works; ask the API for a new one."""
