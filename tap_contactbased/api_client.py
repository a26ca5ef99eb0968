"""The HTTP client of the tap, built from the settings alone: `ApiClient`.

Every request of the tap goes through it, whether the SDK drives it (the paginated
organization streams send on its session, with its auth, and retry in its loop) or the
export, enrichment and probe code does: the same `X-API-Key` auth, the same answer caps,
the same classification of answers (retriable, refused in one line, or fine), the same
one retry loop (`retry.Attempts`), and the same one-line errors. Messages name the
endpoint by method and path only: never a query string, a header or a signed URL.
"""

from __future__ import annotations

import logging
import threading
import typing as t
import urllib.parse
from http import HTTPStatus

import requests
import requests.auth

from tap_contactbased import retry
from tap_contactbased.answers import (
    BadAnswer,
    UnreadableBodyError,
    decode_answer,
    decoded_answer,
    endpoint_of,
    refused,
    too_deep,
    with_body_cap,
)
from tap_contactbased.errors import ApiError, ConfigError, ExpiredDownloadUrl, TransientApiError
from tap_contactbased.redaction import api_text, register_url_secrets
from tap_contactbased.retry import Attempts, RetryPolicy
from tap_contactbased.spelling import normalise_id_spelling

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tap_contactbased.settings import Settings

T = t.TypeVar("T")
LOGGER = "tap-contactbased"
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

MAX_DOWNLOAD_REDIRECTS = 5
# The one field of an error body the tap repeats: FastAPI's `detail` [assumed].
DETAIL_KEY = "detail"


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
        steps = loc if isinstance(loc, list) else []
        location = ".".join(str(p) for p in steps if isinstance(p, (str, int)) and p != "body")
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


def is_retriable(status: int) -> bool:
    """A status worth asking again for: a rate limit or a server error."""
    return status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR


def check_status(response: requests.Response) -> None:
    """Classify an answer by status: retriable, refused with one line, or fine."""
    status = response.status_code
    if status < HTTPStatus.MULTIPLE_CHOICES:
        return
    message = status_error_message(endpoint_of(response.request), response)
    if is_retriable(status):
        raise TransientApiError(message, response)
    raise ApiError(message, status)


def transport_error(exc: requests.RequestException, what: str) -> TransientApiError:
    """The retriable error of a request that failed on the wire, named after `what`."""
    # Never requests' own message: it holds the URL.
    problem = f"the request failed ({type(exc).__name__})"
    if isinstance(exc, requests.Timeout):
        problem = "no answer before the timeout"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        problem = "the connection dropped in the middle of the response"
    elif isinstance(exc, requests.ConnectionError):
        problem = "the connection failed or was dropped"
    return TransientApiError(f"{what}: {problem}")


def sending(prepared: requests.PreparedRequest) -> str:
    """What the retry warnings call a request: `Sending POST /intent/feeds/exports/list`."""
    return f"Sending {endpoint_of(prepared)}"


class KeyAuth(requests.auth.AuthBase):
    """Every API request carries the key in the `X-API-Key` header."""

    def __init__(self, api_key: str) -> None:
        """Send `api_key` (never shown: `redaction` knows it once the tap has started)."""
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[API_KEY_HEADER] = self._api_key
        return request


class ApiClient:
    """The ContactBased API as the tap speaks to it, built from the settings alone.

    Each thread gets its own `requests.Session` with the key's auth; requests are prepared
    on the calling thread and may be sent from another. `json`, `get` and `post` retry
    under one `retry.Attempts` each; `send`, `send_decoded` and `open_download` make one
    try, for callers that put them under a budget of their own (`retrying`).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float, policy: RetryPolicy) -> None:
        """Speak to the API at `base_url` with `api_key`."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy
        self.auth = KeyAuth(api_key)
        self._local = threading.local()

    @classmethod
    def from_settings(
        cls, settings: Settings, api_key: str, *, max_tries: int | None = None
    ) -> ApiClient:
        """The client of a run (or of the probe, which tries fewer times)."""
        return cls(
            settings.api_url,
            api_key,
            timeout=settings.request_timeout_seconds,
            policy=RetryPolicy.from_settings(settings, max_tries=max_tries),
        )

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.auth = self.auth
        return session

    def attempts(self, what: str) -> Attempts:
        """A fresh budget for `what` (a verb phrase: "Reading page 3 of ...")."""
        # The clock is looked up at each budget: a test swaps in a virtual one with monkeypatch.
        return Attempts(what, self.policy, logging.getLogger(LOGGER), retry.SYSTEM_CLOCK)

    def retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """What `attempt` returns, tried again under one budget while it fails transiently."""
        return retry.retrying(self.attempts(what), attempt)

    def get(self, path: str, params: Mapping[str, t.Any] | None = None) -> t.Any:
        return self.json("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, t.Any]) -> t.Any:
        return self.json("POST", path, body=body)

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, t.Any] | None = None,
        body: Mapping[str, t.Any] | None = None,
        retry: bool = True,
    ) -> t.Any:
        """The JSON answer to a request, the id's spelling normalised."""
        prepared = self.prepare(method, path, params=params, body=body)

        def attempt() -> t.Any:
            response = self.send(prepared)
            check_status(response)
            return decoded_answer(response)

        answer = self.retrying(sending(prepared), attempt) if retry else attempt()
        return normalise_id_spelling(answer)

    def prepare(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, t.Any] | None = None,
        body: Mapping[str, t.Any] | None = None,
    ) -> requests.PreparedRequest:
        """An authenticated request to the API, its answer capped (built on the calling thread)."""
        request = requests.Request(
            method,
            f"{self.base_url}{path}",
            params=dict(params or {}),
            json=None if body is None else dict(body),
            headers={"Accept": "application/json"},
        )
        return with_body_cap(self.session.prepare_request(request))

    def send(
        self, prepared: requests.PreparedRequest, *, stream: bool = False, what: str | None = None
    ) -> requests.Response:
        """Send once on this thread's session, never following a redirect.

        The only sending of the package. `what` names a download, whose signed URL is its
        own authorization: a download that cannot be sent is the API's fault, not a setting's.
        """
        try:
            return self.session.send(
                prepared, timeout=self.timeout, stream=stream, allow_redirects=False
            )
        except ValueError as exc:
            # Not even sendable: a URL or header value that requests (its InvalidURL, ...Schema
            # and InvalidHeader are ValueErrors) or http.client refuses. Sending it again cannot
            # help, and the error's text holds the value.
            if what is not None:
                raise ApiError(
                    f"{what}: the request cannot be sent ({type(exc).__name__})"
                ) from None
            msg = (
                f"{endpoint_of(prepared)}: the request cannot be sent ({type(exc).__name__}): "
                "check the api_url and api_key settings"
            )
            raise ConfigError(msg) from None
        except requests.RequestException as exc:
            raise transport_error(exc, what or endpoint_of(prepared)) from None

    def send_decoded(self, prepared: requests.PreparedRequest, decode: Callable[[bytes], T]) -> T:
        """Send once, read the whole body and decode it.

        A body cut on the way, or one that `decode` cannot read, is a `TransientApiError`:
        the API's exports are frozen, so asking again brings the same answer.
        """
        response = self.send(prepared, stream=True)
        try:
            check_status(response)
            content = response.content
        except requests.RequestException as exc:
            raise transport_error(exc, endpoint_of(prepared)) from None
        finally:
            response.close()
        try:
            return decode(content)
        except BadAnswer as verdict:
            raise refused(endpoint_of(prepared), verdict) from None
        except RecursionError:
            raise refused(endpoint_of(prepared), too_deep()) from None
        except ValueError as exc:
            reason = str(exc) if isinstance(exc, UnreadableBodyError) else type(exc).__name__
            msg = f"{endpoint_of(prepared)}: the answer could not be read ({reason})"
            raise TransientApiError(msg) from None

    def open_download(self, url: str, what: str) -> requests.Response:
        """GET a signed URL once, without the API key, and return the response unread.

        `what` names the download in messages instead of the URL. A 403 means the URL
        expired: it raises `ExpiredDownloadUrl` so that the caller asks for a new one.
        Redirects are followed by hand, never from https to a plain connection.
        """
        register_url_secrets(url)
        prepared = download_request(url, what)
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            response = self.send(prepared, stream=True, what=what)
            if not response.is_redirect:
                return download_answer(response, what)
            target = urllib.parse.urljoin(
                prepared.url or "", self.session.get_redirect_target(response) or ""
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
            prepared = download_request(target, what)
        raise ApiError(f"{what}: more than {MAX_DOWNLOAD_REDIRECTS} redirects")


def download_request(url: str, what: str) -> requests.PreparedRequest:
    """A GET of a signed URL, prepared without any session: the key never goes there."""
    try:
        return requests.Request("GET", url, headers={"Accept": "text/csv"}).prepare()
    except (requests.RequestException, ValueError) as exc:
        msg = f"{what}: the API gave a download URL that cannot be used ({type(exc).__name__})"
        raise ApiError(msg) from None


def download_answer(response: requests.Response, what: str) -> requests.Response:
    """The response of a download, or the error its status means (403: expired)."""
    status = response.status_code
    if status < HTTPStatus.MULTIPLE_CHOICES:
        return response
    response.close()
    reason = api_text(response.reason)
    if status == HTTPStatus.FORBIDDEN:
        raise ExpiredDownloadUrl(f"{what}: the signed URL was refused (403), it has expired")
    if is_retriable(status):
        raise TransientApiError(f"{what}: {status} {reason}", response)
    raise ApiError(f"{what}: {status} {reason}", status)
