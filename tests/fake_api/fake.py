"""`FakeContactBased`: the state of the local ContactBased API and its server's lifecycle."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from .data import Dataset, iso_timestamp
from .drift import Drift, bundle_text_with_drift
from .enrichment import BUNDLE_KEYS, Enricher
from .exports import (
    BuildFate,
    ColumnLayout,
    CreditPool,
    Export,
    ExportOptions,
    RowPlan,
    as_objects,
    build_plan,
    make_layout,
    plan_values,
    read_export_options,
)
from .faults import FaultEngine, Faults
from .routes import RequestRecord
from .server import FakeServer, make_server
from .validation import ApiError, BodyReader

DEFAULT_BUNDLES = ("individual-core", "emails", "phones", "location", "professional")


class FakeContactBased:
    """The local ContactBased API: deterministic data, real HTTP on 127.0.0.1, fault knobs."""

    def __init__(
        self,
        *,
        api_key: str = "cbk_test_key",
        seed: int = 7,
        feed_count: int = 3,
        rows_per_day: int | tuple[int, int] = (5, 40),
        today: dt.date | None = None,
        today_fraction: float = 0.5,
        build_seconds: float = 0.2,
        credits_total: int = 1_000_000,
        enabled_bundles: Iterable[str] = DEFAULT_BUNDLES,
        contact_pool: int = 2_000,
        url_ttl_seconds: float = 3600,
        feed_limit: int = 3,
        port: int = 0,
    ) -> None:
        """Describe the API; nothing listens until `start()`."""
        self.api_key = api_key
        self.seed = seed
        self.dataset = Dataset(seed, rows_per_day, contact_pool)
        self.enricher = Enricher(self.dataset)
        self.feeds: list[dict[str, Any]] = [self.dataset.make_feed(i) for i in range(feed_count)]
        self.foreign_feed_id = self.dataset.feed_uuid("foreign")
        self.today_fraction = today_fraction
        self.build_seconds = build_seconds
        self.url_ttl_seconds = url_ttl_seconds
        # Where signed URLs point ("scheme://host:port"); None: this server. A test points
        # them at a closed port, a silent socket or a wrong scheme to fail the transport.
        self.download_origin: str | None = None
        self.enabled_bundles = tuple(enabled_bundles)
        unknown = set(self.enabled_bundles) - set(BUNDLE_KEYS)
        if unknown:
            raise ValueError(f"unknown bundles: {sorted(unknown)}")
        self.feed_limit = feed_limit
        self.feeds_created = 0
        self.withdrawn_bundles: set[str] = set()  # no longer offered: not listed at all
        self.credit_pool = CreditPool(credits_total)
        self.exports: dict[str, Export] = {}
        self.created_exports: list[str] = []
        self.max_building_seen = 0  # most exports building at once, counted at each create
        self.enrichment_charged: dict[str, set[str]] = {key: set() for key in BUNDLE_KEYS}
        self.enrichment_ids_sent: dict[str, int] = dict.fromkeys(BUNDLE_KEYS, 0)
        self.requests: list[RequestRecord] = []
        self.issued_signatures: list[str] = []  # of every signed URL, to prove none leaks
        self.fault_engine = FaultEngine()
        self.secret = secrets.token_bytes(32)  # signs download URLs; new per server
        self._today = today
        self._port = port
        self._lock = threading.RLock()
        self._serving = 0  # requests being served now, held answers included
        self._idle = threading.Condition()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeContactBased:
        """Serve on 127.0.0.1 in a daemon thread."""
        if self._server is None:
            self._server = make_server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
                name="fake-contactbased",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server, self._thread = None, None

    def __enter__(self) -> FakeContactBased:
        """Start serving."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT."""
        if self._server is None:
            raise RuntimeError("the fake API is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # Observable state

    @property
    def today(self) -> dt.date:
        """The API's clock (a UTC date); real UTC today unless set."""
        return self._today or dt.datetime.now(dt.timezone.utc).date()

    @today.setter
    def today(self, value: dt.date) -> None:
        self._today = value

    @property
    def faults(self) -> Faults:
        """The live fault knobs."""
        return self.fault_engine.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.fault_engine.faults = value

    @property
    def drift(self) -> Drift:
        """The contract-drift knobs of the live faults, as answers apply them."""
        return Drift(self.faults)

    @property
    def feed_ids(self) -> list[str]:
        """Ids of the accessible feeds."""
        return [feed["feed_id"] for feed in self.feeds]

    @property
    def credits(self) -> dict[str, Any]:
        """GET /organization/credits as it would answer now."""
        for export in list(self.exports.values()):
            export.state()  # settles the credits of builds that have ended
        return self.credit_pool.snapshot(self.today)

    def record(self, entry: RequestRecord) -> None:
        """Log a received request."""
        with self._lock:
            self.requests.append(entry)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a request as being served until the block ends (the server's side)."""
        with self._idle:
            self._serving += 1
        try:
            yield
        finally:
            with self._idle:
                self._serving -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being served: an answer held back has been given."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._serving == 0, timeout):
                raise TimeoutError(f"{self._serving} request(s) still served after {timeout} s")

    def count_requests(self, method: str, path: str) -> int:
        """Count received requests by method and path (without query string)."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    # Feeds and windows

    def remove_feed(self, feed_id: str) -> None:
        """The feed is deleted upstream: no longer listed or exportable (its exports stay)."""
        with self._lock:
            self.feeds = [feed for feed in self.feeds if feed["feed_id"] != feed_id]

    def remove_bundle(self, key: str) -> None:
        """The API no longer offers the bundle: it leaves GET /enrich/bundles, disabled."""
        with self._lock:
            self.withdrawn_bundles.add(key)
            self.enabled_bundles = tuple(b for b in self.enabled_bundles if b != key)

    def feed(self, feed_id: str) -> dict[str, Any]:
        """Return an accessible feed, or fail with 404 / 403."""
        for feed in self.feeds:
            if feed["feed_id"] == feed_id:
                return feed
        if feed_id == self.foreign_feed_id:
            raise ApiError(403, f"Feed {feed_id} belongs to another organization")
        raise ApiError(404, f"Feed {feed_id} not found")

    def window(self, lookback_days: int) -> list[dt.date]:
        """Days of a lookback window ending today, oldest first."""
        today = self.today
        return [today - dt.timedelta(days=k) for k in range(lookback_days - 1, -1, -1)]

    def visible_count(self, feed_id: str, day: dt.date) -> int:
        """Rows of a feed's day that exist now: today is not over yet."""
        today = self.today
        if day > today:
            return 0
        count = self.dataset.day_count(feed_id, day)
        return int(count * self.today_fraction) if day == today else count

    def check_window(self, feed_id: str, lookback_days: int) -> dict[str, Any]:
        """Return the feed after checking access and its lookback cap (403)."""
        feed = self.feed(feed_id)
        cap = feed["max_lookback_days"]
        if lookback_days > cap:
            raise ApiError(
                403,
                f"lookback_days {lookback_days} exceeds this feed's max_lookback_days {cap}",
            )
        return feed

    def check_options(self, options: ExportOptions) -> None:
        """Check what the organization may do with these export options (404 / 403)."""
        self.check_window(options.feed_id, options.lookback_days)
        for key in options.enrichment_bundles:
            self.check_bundle(key)

    def check_bundle(self, key: str) -> None:
        """Fail with 403 when a bundle is not enabled."""
        if key not in self.enabled_bundles:
            raise ApiError(403, f"Bundle '{key}' is not enabled for this organization")

    def save_feed(self, query: str, name: str | None) -> dict[str, Any]:
        """Create a free-text feed from the builder, within the feed limit."""
        with self._lock:
            if self.feeds_created >= self.feed_limit:
                raise ApiError(
                    403,
                    f"Feed limit reached: {self.feeds_created} of {self.feed_limit} feeds created",
                )
            self.feeds_created += 1
            now = iso_timestamp(self.now())
            preview = self.dataset.builder_preview(query)
            feed = self.dataset.register_feed(
                {
                    "feed_id": self.dataset.feed_uuid(f"saved:{self.feeds_created}"),
                    "name": name or query[:80],
                    "kind": "free_text",
                    "query": query,
                    "topics": [],
                    "domain_count": preview["domain_count"],
                    "max_lookback_days": 30,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.feeds.append(feed)
            return feed

    def feed_limit_info(self) -> dict[str, int]:
        """GET /organization/feed-limit."""
        with self._lock:
            return {
                "feed_limit": self.feed_limit,
                "feeds_created": self.feeds_created,
                "feeds_remaining": max(self.feed_limit - self.feeds_created, 0),
            }

    def now(self) -> dt.datetime:
        """Current time on the API's clock: its date, the real time of day."""
        real = dt.datetime.now(dt.timezone.utc)
        return dt.datetime.combine(self.today, real.time(), tzinfo=dt.timezone.utc)

    # Exports

    def plan(self, options: ExportOptions) -> RowPlan:
        """The rows an export with these options would hold now."""
        days = self.window(options.lookback_days)
        counts = [self.visible_count(options.feed_id, day) for day in days]
        return build_plan(self.dataset, options.feed_id, days, counts, options)

    def layout(self, bundles: Iterable[str] = ()) -> ColumnLayout:
        """Columns of an export created now (the column fault knobs apply)."""
        f = self.faults
        bundle_text = bundle_text_with_drift(
            self.enricher.payload_json, self.enricher.payload, f.drift
        )
        bundles = tuple(bundles)
        return make_layout(f.id_column, f.extra_columns, f.drop_columns, bundles, bundle_text)

    def _fate(self, feed_id: str) -> BuildFate:
        f = self.faults
        failing = f.fail_exports or feed_id in f.fail_export_feeds
        error = (
            (f.build_error or "Export build failed: upstream query timed out (injected)")
            if failing
            else None
        )
        return BuildFate(error, f.stall_exports, f.unknown_status)

    def create_export(
        self, options: ExportOptions, *, by_client: bool = True, export_id: str | None = None
    ) -> Export:
        """Create an export (options already checked); 402 when credits are short.

        `created_exports` lists only exports that clients created through the API; only
        they are held to `max_building_exports` and counted in `max_building_seen`.
        """
        plan = self.plan(options)
        layout = self.layout(options.enrichment_bundles)
        with self._lock:
            building = self.building_count() if by_client else 0
            if by_client:
                self._check_building_limit(building)
            self.credit_pool.reserve(plan.total)
            # Unique across servers too, as a real API's ids are: a restarted fake must not
            # hand out an earlier one's ids again.
            digest = hashlib.blake2b(secrets.token_bytes(16), digest_size=12)
            export = Export(
                export_id=export_id or f"exp_{digest.hexdigest()}",
                options=options,
                plan=plan,
                layout=layout,
                dataset=self.dataset,
                credits=self.credit_pool,
                created_at=self.now(),
                build_seconds=self.build_seconds,
                fate=self._fate(options.feed_id),
            )
            self.exports[export.export_id] = export
            if by_client:
                self.created_exports.append(export.export_id)
                self.max_building_seen = max(self.max_building_seen, building + 1)
            return export

    def building_count(self) -> int:
        """Exports of the organization that are building now."""
        return sum(1 for e in list(self.exports.values()) if e.state()[0] == "building")

    def _check_building_limit(self, building: int) -> None:
        """Refuse a create while `max_building_exports` exports build (429 or 409)."""
        f = self.faults
        limit = f.max_building_exports
        if limit is None or building < limit:
            return
        status = f.building_limit_status
        headers = {"Retry-After": "1"} if status == 429 else {}
        raise ApiError(
            status,
            f"Concurrent export limit reached: {building} exports are building "
            f"(at most {limit}); retry when one of them is ready",
            headers,
        )

    def make_ready_export(
        self, feed_id: str, lookback_days: int, *, export_id: str | None = None, **options: Any
    ) -> str:
        """Create an export that is ready at once, charging credits like a create.

        Options are the body fields of POST /intent/feeds/exports; errors raise ApiError.
        The export is listed by the API but not in `created_exports`, which holds what
        clients created. `export_id` chooses its id (to resume a state written elsewhere).
        """
        export = self._make_export(feed_id, lookback_days, export_id, options)
        export.finish_now()
        export.state()
        return export.export_id

    def make_building_export(self, feed_id: str, lookback_days: int, **options: Any) -> str:
        """Create an export that stays building until a test sets its `stalled` to False.

        Like `make_ready_export` otherwise: charged like a create, not in `created_exports`.
        """
        export = self._make_export(feed_id, lookback_days, None, options)
        export.stalled = True
        return export.export_id

    def _make_export(
        self, feed_id: str, lookback_days: int, export_id: str | None, options: dict[str, Any]
    ) -> Export:
        reader = BodyReader({"feed_id": feed_id, "lookback_days": lookback_days, **options})
        parsed = read_export_options(reader, self.faults.id_column)
        reader.check()
        self.check_options(parsed)
        return self.create_export(parsed, by_client=False, export_id=export_id)

    def expected_rows(
        self,
        feed_id: str,
        start_date: dt.date | str,
        end_date: dt.date | str,
        *,
        require_contact_id: bool = False,
    ) -> list[dict[str, str | None]]:
        """Rows an export of that window would hold now, as pages serve them."""
        start = dt.date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
        end = dt.date.fromisoformat(end_date) if isinstance(end_date, str) else end_date
        days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
        counts = [self.visible_count(feed_id, day) for day in days]
        options = ExportOptions(feed_id, len(days), require_contact_id=require_contact_id)
        plan = build_plan(self.dataset, feed_id, days, counts, options)
        layout = self.layout()
        return as_objects(layout.columns, plan_values(self.dataset, plan, layout))

    # Downloads

    def sign(self, export_id: str, page: int | None, expires: int) -> str:
        """HMAC-SHA256 signature of a download URL."""
        message = f"{export_id}\n{page or ''}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    # Enrichment

    def enrich(self, key: str, contact_ids: list[str]) -> dict[str, Any]:
        """Look contacts up in a bundle and charge the ids not charged before."""
        results = []
        for contact_id in contact_ids:
            data = self.enricher.payload(key, contact_id)
            results.append({"contact_id": contact_id, "found": data is not None, "data": data})
        with self._lock:
            self.enrichment_charged[key].update(contact_ids)
            self.enrichment_ids_sent[key] += len(contact_ids)
        found = sum(1 for r in results if r["found"])
        return {
            "bundle": key,
            "requested": len(contact_ids),
            "found": found,
            "not_found": len(contact_ids) - found,
            "results": results,
        }
