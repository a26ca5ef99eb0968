"""What the tap takes of an answer's body: no more bytes, depth or digits than `limits` allow.

The cap on bytes is a response hook (`with_body_cap`), so the SDK's own requests are held to
it too. Past a cap an answer is refused in one line and not asked for again: the same request
would get the same answer; a body that is not JSON is asked for again.
"""

from __future__ import annotations

import typing as t

import msgspec

from tap_contactbased import endpoints, limits
from tap_contactbased.errors import RefusedAnswerError, TransientApiError

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import requests
    from urllib3 import HTTPResponse

_decoder = msgspec.json.Decoder()
PAGE_ADVICE = "Read this export with read_mode csv, or lower page_size for the next exports."
ANSWER_ADVICE = "No answer of the contract comes near it: report this difference."


class BadAnswer(Exception):  # noqa: N818 - a verdict on the answer, turned into an error above
    """A body beyond a cap; the message says which one, the caller names the request."""


def too_deep() -> BadAnswer:
    return BadAnswer(
        f"nests JSON deeper than {limits.MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), which no "
        "answer of the contract comes near"
    )


def decode_answer(content: bytes) -> t.Any:
    """A JSON answer; `ValueError` when it is not JSON, `BadAnswer` past a cap.

    A number beyond a float (`1e999`) is a `BadAnswer` here, not an infinity later.
    """
    value = _decoded(_decoder, content)
    if limits.deeper_than(value, limits.MAX_JSON_DEPTH):
        raise too_deep()
    return value


def _decoded(decoder: msgspec.json.Decoder[t.Any], content: bytes) -> t.Any:
    try:
        return decoder.decode(content)
    except msgspec.ValidationError as exc:
        raise BadAnswer(f"holds a value the tap cannot read ({exc})") from None
    except RecursionError:
        raise too_deep() from None


class UnreadableBodyError(ValueError):
    """A body that arrived whole but cannot be read as what it should be."""


class PageBody(msgspec.Struct):
    """The part of a page answer the reader needs; the summary fields are skipped unread.

    Every value of a row is text or null, as the contract says: nothing in it can nest.
    """

    rows: list[dict[str, str | None]] | None = None


class LoosePageBody(msgspec.Struct):
    """A page whose rows hold other values too (numbers, objects): read, then checked."""

    rows: list[dict[str, t.Any]] | None = None


_page_decoder = msgspec.json.Decoder(PageBody)
_loose_page_decoder = msgspec.json.Decoder(LoosePageBody)


def decode_page(body: bytes) -> tuple[list[dict[str, t.Any]], int]:
    """The rows of a page answer, and how many NUL bytes were dropped from it.

    A body that is not JSON is a `ValueError` (read again); valid JSON past a cap of
    `limits` (nesting, a number beyond a float) is a `BadAnswer`.
    """
    nul_bytes = body.count(b"\x00")
    if nul_bytes:
        body = body.replace(b"\x00", b"")
    rows: list[dict[str, t.Any]] | None
    try:
        rows = _page_decoder.decode(body).rows
    except msgspec.ValidationError:
        rows = _loose_rows(body)
    except RecursionError:
        raise too_deep() from None
    if rows is None:
        raise UnreadableBodyError("the page answer has no rows")
    return rows, nul_bytes


def _loose_rows(body: bytes) -> list[dict[str, t.Any]] | None:
    rows: list[dict[str, t.Any]] | None = _decoded(_loose_page_decoder, body).rows
    if rows is not None and limits.deeper_than(rows, limits.MAX_JSON_DEPTH):
        raise too_deep()
    return rows


class BodyCap:
    """A response hook that refuses a body of more than `limit` bytes, decompressed."""

    def __init__(self, limit: int, what: str, advice: str) -> None:
        """`what` names the request in the refusal; `advice` says what to do."""
        self.limit = limit
        self.what = what
        self.advice = advice

    def __call__(self, response: requests.Response, *_: t.Any, **__: t.Any) -> requests.Response:
        """Refuse an announced length past the cap; count what is read of any other body."""
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.limit:
            response.close()
            raise self.refusal()
        response.raw = t.cast("HTTPResponse", CappedBody(response.raw, self))
        return response

    def refusal(self) -> RefusedAnswerError:
        return RefusedAnswerError(
            f"{self.what}: the answer is larger than {limits.size_text(self.limit)}, which "
            f"the tap does not hold; it is not asked for again. {self.advice}"
        )


class CappedBody:
    """A response's `raw`, counting the decompressed bytes requests reads from it."""

    def __init__(self, raw: t.Any, cap: BodyCap) -> None:
        self._raw = raw
        self._cap = cap
        self._seen = 0

    def _count(self, data: bytes) -> bytes:
        self._seen += len(data)
        if self._seen > self._cap.limit:
            self._raw.close()
            raise self._cap.refusal()
        return data

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Iterator[bytes]:
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            yield self._count(chunk)

    def read(self, *args: t.Any, **kwargs: t.Any) -> bytes:
        return self._count(self._raw.read(*args, **kwargs))

    def __getattr__(self, name: str) -> t.Any:
        """Everything else of the response's `raw` (closing, releasing the connection)."""
        return getattr(self._raw, name)


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


def with_body_cap(prepared: requests.PreparedRequest) -> requests.PreparedRequest:
    prepared.hooks["response"].append(body_cap(prepared))
    return prepared
