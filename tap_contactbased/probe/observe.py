"""The probe's requests: only free ones (`FREE_REQUESTS`), through the tap's own `ApiClient`.

A request outside the list is refused before it leaves, so a change here cannot create an
export or spend enrichments; the client's messages never hold the key or a signed URL.
"""

from __future__ import annotations

import datetime
import json
import typing as t
from dataclasses import dataclass, field
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_contactbased import endpoints, lifecycle
from tap_contactbased.api_client import check_status, is_retriable, sending, transport_error
from tap_contactbased.errors import ApiError, ContactBasedError, TransientApiError
from tap_contactbased.run import feed_cap
from tap_contactbased.summary import ExportOptions, ExportStatus

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tap_contactbased.api_client import ApiClient
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


class ProbeClient:
    """The tap's client, limited to free requests; answers keep the API's id spelling."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def get(self, path: str, params: Mapping[str, t.Any] | None = None) -> t.Any:
        check_free("GET", path, None)
        return self._answer(self.client.prepare("GET", path, params=params))

    def post(self, path: str, body: Mapping[str, t.Any]) -> t.Any:
        check_free("POST", path, body)
        return self._answer(self.client.prepare("POST", path, body=body))

    def _answer(self, prepared: requests.PreparedRequest) -> t.Any:
        client = self.client
        return client.retrying(sending(prepared), lambda: client.send_decoded(prepared, json.loads))

    def refusal(self, path: str, body: Mapping[str, t.Any]) -> Answer:
        """POST a request the API should refuse: its status and JSON body (None if not JSON)."""
        check_free("POST", path, body)
        client = self.client
        prepared = client.prepare("POST", path, body=body)

        def attempt() -> requests.Response:
            response = client.send(prepared)
            if is_retriable(response.status_code):
                check_status(response)  # raises a retriable error
            return response

        response = client.retrying(sending(prepared), attempt)
        try:
            return Answer(response.json(), status=response.status_code)
        except ValueError:
            return Answer(status=response.status_code)

    def csv_sample(self, url: str, what: str) -> CsvSample:
        """The first `CSV_SAMPLE_BYTES` of a download; the rest is never fetched."""
        client = self.client
        response = client.retrying(f"Opening {what}", lambda: client.open_download(url, what))
        data = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=16 * 1024):
                data.extend(chunk)
                if len(data) >= CSV_SAMPLE_BYTES:
                    break
        except requests.RequestException as exc:
            # requests' own message holds the URL, which is a secret.
            raise transport_error(exc, what) from None
        finally:
            response.close()
        complete = len(data) < CSV_SAMPLE_BYTES  # the whole file fitted in the sample
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


def attempt(request: Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> Answer:
    """Make one request; a failure becomes the reason the point was not checked."""
    try:
        answer = request(*args, **kwargs)
    except (ContactBasedError, RetriableAPIError) as exc:  # an expired URL too
        return Answer(error=str(exc))
    return answer if isinstance(answer, Answer) else Answer(answer)


@dataclass(frozen=True)
class FeedProbe:
    """The free requests about one feed: a preview and a count with the run's options."""

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


def feed_items(answer: Answer) -> list[Mapping[str, t.Any]]:
    """The objects of a list envelope's `items`, if it has any."""
    items = answer.body.get("items") if isinstance(answer.body, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def collect(api: ProbeClient, settings: Settings) -> Observations:
    """Make every free request of the probe and keep what came back."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    try:  # the first request tells whether the API answers at all
        obs = Observations(settings, today, Answer(api.get(endpoints.CREDITS)))
    except TransientApiError as exc:
        msg = f"cannot reach the API ({exc}). Check api_url and the network, then try again."
        raise ProbeUnavailable(msg) from None
    except ApiError as exc:
        if exc.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise ProbeUnavailable(f"the API refused the key ({exc})") from None
        raise
    obs.feeds = attempt(
        api.get, endpoints.FEEDS, {"page": 1, "page_size": endpoints.FEEDS_PAGE_SIZE}
    )
    obs.feed_limit = attempt(api.get, endpoints.FEED_LIMIT)
    obs.bundles = attempt(api.get, endpoints.BUNDLES)
    obs.filter_fields = attempt(api.post, endpoints.FILTER_FIELDS, {})
    # The configured feeds, or the first feed when none is: a preview and a count each.
    listed = {str(f.get("feed_id", "")).lower(): f for f in feed_items(obs.feeds)}
    targets = [(f, True) for f in settings.feed_ids] or [(f, False) for f in list(listed)[:1]]
    for feed_id, configured in targets:
        asked = settings.lookback_days if configured else 1
        # A window longer than the feed's cap would only be refused (403).
        lookback = min(asked, feed_cap(listed.get(feed_id.lower(), {})) or asked)
        options = ExportOptions.from_settings(settings, feed_id, lookback)
        preview = attempt(lifecycle.preview, api, options, rows=PREVIEW_ROWS, skip_count=False)
        count = attempt(api.post, endpoints.EXPORTS_COUNT, options.body())
        obs.feed_probes.append(FeedProbe(configured, preview, count))
    if targets:
        one_day = {"feed_id": targets[0][0], "lookback_days": 1, "include_daily_counts": True}
        obs.search = attempt(api.post, endpoints.SEARCH, one_day)
    page_size = endpoints.EXPORTS_LIST_PAGE_SIZE
    obs.exports = attempt(api.post, endpoints.EXPORTS_LIST, {"page": 1, "page_size": page_size})
    # A ready export to sample, of a configured feed and with rows if there is one: its page 1,
    # a download URL and the first bytes of its CSV.
    wanted = {f.lower() for f in settings.feed_ids}
    ready = [
        item
        for item in feed_items(obs.exports)
        if ExportStatus.parse(item.get("status")) is ExportStatus.READY and item.get("export_id")
    ]
    obs.ready = min(
        ready,
        key=lambda i: (
            bool(wanted) and str(i.get("feed_id", "")).lower() not in wanted,
            i.get("total_rows") == 0,
        ),
        default=None,
    )
    if obs.ready is not None:
        export_id = str(obs.ready["export_id"])
        obs.page = attempt(api.post, endpoints.EXPORTS_PAGE, {"export_id": export_id, "page": 1})
        obs.download = attempt(api.post, endpoints.EXPORTS_DOWNLOAD_URL, {"export_id": export_id})
        url = obs.download.body.get("url") if isinstance(obs.download.body, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            obs.csv = attempt(api.csv_sample, url, f"the CSV download of export {export_id}")
    missing = {"export_id": MISSING_EXPORT_ID, "page": 1}
    obs.missing_export = attempt(api.refusal, endpoints.EXPORTS_PAGE, missing)
    obs.invalid_body = attempt(api.refusal, endpoints.EXPORTS_COUNT, {})
    return obs
