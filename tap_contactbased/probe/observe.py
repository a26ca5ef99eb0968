"""The probe's requests: only free ones, through the tap's own client.

`ProbeApi` refuses any request outside `FREE_REQUESTS` before it leaves, so a change here
cannot create an export or call an enrichment endpoint by mistake. Every request goes
through the tap's stream (same session, `X-API-Key` auth, retries honouring
`Retry-After`, and messages that never hold the key or a signed URL).
"""

from __future__ import annotations

import datetime
import json
import sys
import typing as t
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_contactbased import endpoints
from tap_contactbased.api_client import (
    ContactBasedApi,
    ExpiredDownloadUrl,
    check_status,
    describe_transport_error,
)
from tap_contactbased.errors import ApiError, ContactBasedError, TransientApiError
from tap_contactbased.probe.shapes import is_int
from tap_contactbased.summary import ExportOptions, ExportStatus

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tap_contactbased.client import ContactBasedStream
    from tap_contactbased.settings import Settings

FREE_REQUESTS = frozenset(
    {
        ("GET", endpoints.CREDITS),
        ("GET", endpoints.FEEDS),
        ("GET", endpoints.FEED_LIMIT),
        ("GET", endpoints.BUNDLES),
        ("POST", endpoints.FILTER_FIELDS),
        ("POST", endpoints.SEARCH),
        ("POST", endpoints.EXPORTS_PREVIEW),
        ("POST", endpoints.EXPORTS_COUNT),
        ("POST", endpoints.EXPORTS_LIST),
        ("POST", endpoints.EXPORTS_PAGE),
        ("POST", endpoints.EXPORTS_DOWNLOAD_URL),
    }
)
# TODO(core): use endpoints.FEEDS_PAGE_SIZE and endpoints.EXPORTS_LIST_PAGE_SIZE once they land
FEEDS_PAGE_SIZE = 200
EXPORTS_PAGE_SIZE = 50
PREVIEW_ROWS = 10
CSV_SAMPLE_BYTES = 64 * 1024
MISSING_EXPORT_ID = "exp_probe_no_such_export"


class CostlyRequestError(RuntimeError):
    """The probe tried a request that is not free: a bug in the probe, never sent."""


class ProbeUnavailable(Exception):  # noqa: N818 - a condition the user acts on
    """The API cannot be reached or refuses the key: nothing can be checked."""


def check_free(method: str, path: str, body: Mapping[str, t.Any] | None) -> None:
    """Refuse anything that could create an export, a feed, or spend enrichments."""
    if (method, path) not in FREE_REQUESTS or (body or {}).get("auto_export"):
        msg = f"the probe makes only free requests; {method} {path} is not one of them"
        raise CostlyRequestError(msg)


class ProbeApi(ContactBasedApi):
    """The tap's client, limited to free requests, reading answers as the API sent them.

    The tap's own `get` and `post` normalise the id's spelling in every answer; the probe
    must see the API's spelling, so it decodes the bodies itself (same request path, same
    retries).
    """

    def __init__(self, stream: ContactBasedStream) -> None:
        """Serve requests for `stream`, on its session."""
        super().__init__(stream)
        self.stream = stream

    @override
    def get(self, path: str, params: Mapping[str, t.Any] | None = None) -> t.Any:
        check_free("GET", path, None)
        return self.send_decoded(self.prepare("GET", path, params=params), json.loads)

    @override
    def post(self, path: str, body: Mapping[str, t.Any], *, retry: bool = True) -> t.Any:
        check_free("POST", path, body)
        return self.send_decoded(self.prepare("POST", path, body=body), json.loads)

    def refusal(self, path: str, body: Mapping[str, t.Any]) -> tuple[int, t.Any]:
        """POST a request the API should refuse: its status and JSON body (None if not JSON).

        Rate limits and server errors are still retried like any request.
        """
        check_free("POST", path, body)

        def send(request: requests.PreparedRequest, _: t.Any) -> requests.Response:
            response = self._send(request, stream=False)
            status = response.status_code
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                check_status(response)  # raises a retriable error
            return response

        response = self.stream.request_decorator(send)(self.prepare("POST", path, body=body), None)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def csv_sample(self, url: str, what: str) -> CsvSample:
        """The first `CSV_SAMPLE_BYTES` of a download; the rest is never fetched."""
        response = self.open_download(url, what)
        data = bytearray()
        complete = True
        try:
            for chunk in response.iter_content(chunk_size=16 * 1024):
                data.extend(chunk)
                if len(data) >= CSV_SAMPLE_BYTES:
                    complete = False
                    break
        except requests.RequestException as exc:
            # requests' own message holds the URL, which is a secret.
            raise TransientApiError(f"{what}: {describe_transport_error(exc)}") from None
        finally:
            response.close()
        content_type = response.headers.get("Content-Type", "")
        return CsvSample(bytes(data[:CSV_SAMPLE_BYTES]), complete, content_type)


@dataclass(frozen=True)
class CsvSample:
    """The first bytes of an export's CSV."""

    data: bytes
    complete: bool  # the whole file fitted in the sample
    content_type: str


@dataclass(frozen=True)
class Answer:
    """What one request gave: its JSON body, or one line on why there is none."""

    body: t.Any = None
    error: str | None = None
    status: int | None = None  # of a deliberately provoked refusal


def attempt(request: Callable[[], t.Any]) -> Answer:
    """Make one request; a failure becomes the reason the point was not checked."""
    try:
        return Answer(request())
    except (ContactBasedError, RetriableAPIError, ExpiredDownloadUrl) as exc:
        return Answer(error=str(exc))


def refusal(request: Callable[[], tuple[int, t.Any]]) -> Answer:
    """Provoke one refusal; its status and body, or why there is none."""
    try:
        status, body = request()
    except (ContactBasedError, RetriableAPIError) as exc:
        return Answer(error=str(exc))
    return Answer(body, status=status)


@dataclass(frozen=True)
class FeedProbe:
    """The free requests about one feed: a preview and a count with the run's options."""

    feed_id: str
    configured: bool
    preview: Answer
    count: Answer


@dataclass
class Observations:
    """Everything the probe saw; the checks judge it."""

    settings: Settings
    machine_today: datetime.date
    credits: Answer
    feeds: Answer = field(default_factory=Answer)
    feed_limit: Answer = field(default_factory=Answer)
    bundles: Answer = field(default_factory=Answer)
    filter_fields: Answer = field(default_factory=Answer)
    search: Answer | None = None
    feed_probes: list[FeedProbe] = field(default_factory=list)
    exports: Answer = field(default_factory=Answer)
    ready: Mapping[str, t.Any] | None = None  # the ready export whose data was sampled
    page: Answer | None = None
    download: Answer | None = None
    csv: Answer | None = None
    missing_export: Answer = field(default_factory=Answer)  # a 404
    invalid_body: Answer = field(default_factory=Answer)  # a 422


def first_request(api: ProbeApi) -> t.Any:
    """The credits: the first request, which tells whether the API answers at all."""
    try:
        return api.get(endpoints.CREDITS)
    except TransientApiError as exc:
        msg = f"cannot reach the API ({exc}). Check api_url and the network, then try again."
        raise ProbeUnavailable(msg) from None
    except ApiError as exc:
        if exc.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise ProbeUnavailable(f"the API refused the key ({exc})") from None
        raise


def options_body(settings: Settings, feed_id: str, lookback_days: int) -> dict[str, t.Any]:
    """The export options of the run for one feed, as preview and count take them."""
    return ExportOptions.from_settings(settings, feed_id, lookback_days).body()


def feed_items(answer: Answer) -> list[Mapping[str, t.Any]]:
    """The objects of a list envelope's `items`, if it has any."""
    items = answer.body.get("items") if isinstance(answer.body, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def probe_feeds(api: ProbeApi, obs: Observations) -> None:
    """Preview and count the configured feeds (or the first feed, when none is)."""
    settings = obs.settings
    listed = {str(f.get("feed_id", "")).lower(): f for f in feed_items(obs.feeds)}
    targets = [(f, True) for f in settings.feed_ids]
    if not targets and listed:
        targets = [(next(iter(listed)), False)]
    for feed_id, configured in targets:
        cap = listed.get(feed_id.lower(), {}).get("max_lookback_days")
        lookback = settings.lookback_days if configured else 1
        # TODO(core): use run.feed_cap(feed) once it lands
        if is_int(cap) and cap > 0:
            lookback = min(lookback, cap)  # a longer window would only be refused (403)
        body = options_body(settings, feed_id, lookback)
        # TODO(core): use lifecycle.preview(..., rows=PREVIEW_ROWS, skip_count=False) once it lands
        preview = attempt(
            partial(api.post, endpoints.EXPORTS_PREVIEW, {**body, "preview_rows": PREVIEW_ROWS})
        )
        count = attempt(partial(api.post, endpoints.EXPORTS_COUNT, body))
        obs.feed_probes.append(FeedProbe(feed_id, configured, preview, count))
    if targets:
        one_day = {"feed_id": targets[0][0], "lookback_days": 1, "include_daily_counts": True}
        obs.search = attempt(lambda: api.post(endpoints.SEARCH, one_day))


def pick_ready(exports: Answer, feed_ids: t.Collection[str]) -> Mapping[str, t.Any] | None:
    """The ready export to sample: of a configured feed and with rows, if there is one."""
    ready = [
        item
        for item in feed_items(exports)
        if ExportStatus.parse(item.get("status")) is ExportStatus.READY and item.get("export_id")
    ]
    wanted = {f.lower() for f in feed_ids}

    def preference(item: Mapping[str, t.Any]) -> tuple[bool, bool]:
        feed = str(item.get("feed_id", "")).lower()
        return (bool(wanted) and feed not in wanted, item.get("total_rows") == 0)

    return min(ready, key=preference) if ready else None


def probe_ready_export(api: ProbeApi, obs: Observations) -> None:
    """Page 1, a download URL and the first bytes of the CSV of a ready export."""
    obs.ready = pick_ready(obs.exports, obs.settings.feed_ids)
    if obs.ready is None:
        return
    export_id = str(obs.ready["export_id"])
    obs.page = attempt(
        lambda: api.post(endpoints.EXPORTS_PAGE, {"export_id": export_id, "page": 1})
    )
    obs.download = attempt(
        lambda: api.post(endpoints.EXPORTS_DOWNLOAD_URL, {"export_id": export_id})
    )
    url = obs.download.body.get("url") if isinstance(obs.download.body, dict) else None
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        what = f"the CSV download of export {export_id}"
        obs.csv = attempt(lambda: api.csv_sample(url, what))


def collect(api: ProbeApi, settings: Settings) -> Observations:
    """Make every free request of the probe and keep what came back."""
    obs = Observations(
        settings=settings,
        machine_today=datetime.datetime.now(datetime.timezone.utc).date(),
        credits=Answer(first_request(api)),
    )
    obs.feeds = attempt(lambda: api.get(endpoints.FEEDS, {"page": 1, "page_size": FEEDS_PAGE_SIZE}))
    obs.feed_limit = attempt(lambda: api.get(endpoints.FEED_LIMIT))
    obs.bundles = attempt(lambda: api.get(endpoints.BUNDLES))
    obs.filter_fields = attempt(lambda: api.post(endpoints.FILTER_FIELDS, {}))
    probe_feeds(api, obs)
    obs.exports = attempt(
        lambda: api.post(endpoints.EXPORTS_LIST, {"page": 1, "page_size": EXPORTS_PAGE_SIZE})
    )
    probe_ready_export(api, obs)
    missing = {"export_id": MISSING_EXPORT_ID, "page": 1}
    obs.missing_export = refusal(lambda: api.refusal(endpoints.EXPORTS_PAGE, missing))
    obs.invalid_body = refusal(lambda: api.refusal(endpoints.EXPORTS_COUNT, {}))
    return obs
