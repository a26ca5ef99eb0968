"""Fault knobs and the engine that decides, request by request, which fault to inject.

"Every Nth" knobs count eligible requests from the moment the knob gets its current value,
so setting `rate_limit_every = 2` always lets the next request pass and fails the one after.
Countdown knobs (`truncate_downloads`, `expire_urls`, `page_not_found`, `short_pages`) are
decremented in place, so a test can read how many are left.

Faults can also be aimed at one endpoint (`aimed`): the next requests to it get them in
order, whatever the "every Nth" counters say, and each one that strikes is logged in
`FaultEngine.hits`, so a test can prove that the fault hit what it was meant to hit. So is
each strike of `failing_page`, which fails one page of every export for as long as it is set.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Mutable fault settings; all off by default. See the module docstring for counting.

    A request that gets an error fault never reaches its endpoint: nothing is created or
    charged. "API request" means every request except the GETs on signed download URLs.
    """

    # Answers replaced by an error (API requests).
    rate_limit_every: int | None = None  # 429 {"detail": "Rate limit exceeded"}
    retry_after: float | None = 1  # Retry-After seconds of those 429s; None: no header
    server_error_every: int | None = None  # 503
    drop_connection_every: int | None = None  # socket closed, no answer at all
    bad_json_every: int | None = None  # 200 whose body is cut-off JSON
    wrong_content_type: bool = False  # 200 with a text/html page instead of JSON
    # Answers spoiled on the way.
    cut_page_every: int | None = None  # POST /exports/page: full Content-Length, half the body
    truncate_downloads: int = 0  # next N CSV downloads stop halfway, without the last chunk
    csv_rows_missing: int = 0  # CSV downloads end cleanly this many rows early (no error)
    latency_seconds: float = 0.0  # delay before answering (API requests and downloads)
    latency_every: int | None = 1  # every Nth request is delayed; None also means every one
    page_not_found: int = 0  # next N page reads of a ready export answer 404
    expire_urls: int = 0  # next N download URLs are issued already expired
    short_pages: int = 0  # next N page reads of a ready export lack the last row they had
    page_rows_missing: int = 0  # page answers end this many rows before the export (no error)
    # Faults aimed at one endpoint, "METHOD /path" -> the faults of its next requests, in
    # order (consumed): "hold" (answered after `hold_seconds`, the request still served),
    # "429" (with Retry-After `retry_after`), "409" (the limit of exports building at once),
    # "403" (a refusal no retry mends; on a download, the signed URL's expiry), "503",
    # "drop" (closed before it is served).
    aimed: dict[str, list[str]] = field(default_factory=dict)
    hold_seconds: float = 0.0
    # Faults that never heal, for the retry budget of a read. `failing_page`: (k, fault),
    # page k of every export always answers "503", "404" (as if it were missing), "short"
    # (its last row left out) or "cut" (half its body, then the connection closes).
    failing_page: tuple[int, str] | None = None
    csv_cut_at_row: int | None = None  # every CSV download breaks off before this row (1-based)
    # The API dies mid-read: after the first page answer, or halfway through the first CSV
    # download (cut there), every request and download is dropped without an answer.
    dies_mid_read: bool = False
    malformed_download_urls: bool = False  # signed URLs that cannot be parsed (a lone "[")
    # Builds, fixed when an export is created.
    fail_exports: bool = False  # builds fail at half progress with a build_error
    fail_export_feeds: set[str] = field(default_factory=set)  # ... only for these feed ids
    build_error: str | None = None  # the build_error text of those failures
    stall_exports: bool = False  # progress stops at 0.4; set `export.stalled = False` to resume
    unknown_status: str | None = None  # reported instead of "ready"; rows stay readable
    # Columns, fixed when an export is created (preview and search counters follow them live).
    id_column: str = "contact_id"  # "cb_id": the older spelling
    extra_columns: tuple[str, ...] = ()  # string columns added before the bundle_ columns
    drop_columns: tuple[str, ...] = ()  # contract columns the export lacks
    # Contract drift, applied when answers are served (see drift.py for the families).
    # family -> {field: new name, or None to drop it}; "payload:<bundle>" for bundle data,
    # whose bundle_<key> export columns are fixed when the export is created.
    drift: dict[str, dict[str, str | None]] = field(default_factory=dict)
    status_spelling: dict[str, str] = field(default_factory=dict)  # {"ready": "READY"}
    # Concurrent builds: a create while this many exports build is refused (nothing charged).
    max_building_exports: int | None = None
    building_limit_status: int = 429  # 429 with Retry-After: 1, or 409
    # Row content, applied when rows are served.
    nul_in_csv: bool = False  # a NUL byte inside the first CSV row's company_name
    huge_field_bytes: int = 0  # first row's company_name this long (pages and CSV)
    # First row's column -> the text served there instead (pages and CSV): a value that
    # does not fit its column's type, such as "n/a" for intent_score.
    first_row_texts: dict[str, str] = field(default_factory=dict)
    # Error answers that repeat the request they refuse, as a careless API or proxy does:
    # "text", "list" or "object" is the shape of `detail`; `message`, `error` and `request`
    # repeat it too (the key, the URL with its query string, every header). Downloads'
    # object-storage errors repeat the signed URL in their message.
    echo_request: str | None = None
    error_detail: object = None  # any JSON value: the `detail` of every JSON error answer
    # Hostile answers. `raw_json`: family (drift.py) -> {field: JSON text served as its value,
    # verbatim, e.g. "1e999" or a deep nesting}; `hostile_feeds`, when not empty, keeps it,
    # and the two knobs below, to answers about those feeds' exports (count, page, CSV).
    raw_json: dict[str, dict[str, str]] = field(default_factory=dict)
    hostile_feeds: set[str] = field(default_factory=set)
    bundle_cell_text: str | None = None  # first row's first bundle_ column (pages and CSV)
    gzip_endless_line_bytes: int = 0  # CSV downloads: gzip, the header, then a line this long
    json_without_length: bool = False  # JSON answers sent chunked, without Content-Length
    # Fields a newer API adds to every organization object (feeds, credits, feed limit,
    # bundles, filter fields) and to the export summaries of /exports/list.
    new_fields: dict[str, object] = field(default_factory=dict)
    # Random faults: one seeded draw per request, so a seed and a request order replay exactly.
    random_rate: float = 0.0  # probability of 429 (with/without Retry-After), 503, drop, slow
    random_seed: int = 0  # ... or, for pages and downloads, a cut body
    random_latency_seconds: float = 0.05  # the delay of a "slow" draw


class Action(enum.Enum):
    """What replaces (or spoils) the normal answer."""

    RATE_LIMIT = "429 with Retry-After"
    RATE_LIMIT_BARE = "429 without Retry-After"
    SERVER_ERROR = "503"
    CONFLICT = "409, the organization's limit of exports building at once"
    FORBIDDEN = "403, outside what the organization may do"
    DROP = "connection closed without an answer"
    BAD_JSON = "200 with a body that is not JSON"
    HTML = "200 with a text/html page"
    CUT = "body cut in the middle"


@dataclass(frozen=True)
class Decision:
    """The faults for one request: a delay first, then at most one action."""

    delay: float = 0.0
    action: Action | None = None
    retry_after: float | None = None


PAGE_FAULTS = ("503", "404", "short", "cut")
# The faults of `failing_page` that replace or spoil the answer; the others are the page's.
PAGE_ACTIONS = {"503": Action.SERVER_ERROR, "cut": Action.CUT}

AIMED_ACTIONS: dict[str, Action | None] = {
    "hold": None,
    "429": Action.RATE_LIMIT,
    "503": Action.SERVER_ERROR,
    "409": Action.CONFLICT,
    "403": Action.FORBIDDEN,
    "drop": Action.DROP,
}


@dataclass(frozen=True)
class Hit:
    """An aimed fault that struck: the endpoint ("METHOD /path") and the fault."""

    endpoint: str
    fault: str


_RANDOM_ACTIONS = (
    Action.RATE_LIMIT,
    Action.RATE_LIMIT_BARE,
    Action.SERVER_ERROR,
    Action.DROP,
    None,  # a slow but otherwise normal answer
)


def format_retry_after(seconds: float) -> str:
    """Return a Retry-After value; fractions are kept so tests stay fast."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class FaultEngine:
    """Applies a `Faults` to the stream of requests, thread-safely."""

    def __init__(self, faults: Faults | None = None) -> None:
        """Start with the given knobs (default: all off)."""
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int | None, int]] = {}
        self._rng_seed: int | None = None
        self._rng = random.Random(0)
        self.delayed_answers = 0  # answers held back by a latency fault, so far
        self.hits: list[Hit] = []  # the aimed faults that struck, in order
        self.died = threading.Event()  # set when `dies_mid_read` struck

    def _every(self, knob: str, every: int | None) -> bool:
        """Count one eligible request for a knob; True on every `every`-th one."""
        if every is None or every < 1:
            self._counts.pop(knob, None)
            return False
        value, count = self._counts.get(knob, (None, 0))
        count = count + 1 if value == every else 1
        self._counts[knob] = (every, count)
        return count % every == 0

    def _random(self, cut_allowed: bool) -> tuple[bool, Action | None]:
        f = self.faults
        if f.random_rate <= 0:
            return False, None
        if self._rng_seed != f.random_seed:
            self._rng_seed, self._rng = f.random_seed, random.Random(f.random_seed)
        if self._rng.random() >= f.random_rate:
            return False, None
        choices = (*_RANDOM_ACTIONS, Action.CUT) if cut_allowed else _RANDOM_ACTIONS
        return True, self._rng.choice(choices)

    def _aimed(self, endpoint: str | None) -> tuple[float, Action | None] | None:
        """The next fault aimed at `endpoint`, consumed and logged; None when there is none."""
        queue = self.faults.aimed.get(endpoint) if endpoint else None
        if not endpoint or not queue:
            return None
        fault = queue.pop(0)
        if fault not in AIMED_ACTIONS:
            raise ValueError(f"unknown aimed fault {fault!r}: one of {sorted(AIMED_ACTIONS)}")
        self.hits.append(Hit(endpoint, fault))
        delay = self.faults.hold_seconds if fault == "hold" else 0.0
        return delay, AIMED_ACTIONS[fault]

    def decide(
        self,
        *,
        download: bool = False,
        page: bool = False,
        endpoint: str | None = None,
        page_number: object = None,
    ) -> Decision:
        """Decide the faults of one request (an API call, or a download when `download`).

        `endpoint` ("METHOD /path") is matched with the faults aimed at an endpoint; one
        that strikes replaces what the other knobs drew (their counters still count).
        `page_number` is the page a page request asks for, matched with `failing_page`.
        """
        with self._lock:
            if self.faults.dies_mid_read and self.died.is_set():
                return Decision(action=Action.DROP)
            aimed = self._aimed(endpoint)
            decision = self._drawn(download=download, page=page)
            if aimed is not None:
                delay, action = aimed
                decision = Decision(delay, action, self.faults.retry_after)
            fault = self._page_fault(endpoint, page_number, PAGE_ACTIONS) if page else None
            if fault is not None:
                decision = Decision(decision.delay, PAGE_ACTIONS[fault])
            if self.faults.dies_mid_read and (download or page):
                self.died.set()  # this answer is the last one; a download is cut halfway
                if download:
                    decision = Decision(decision.delay, Action.CUT)
            self.delayed_answers += decision.delay > 0
            return decision

    def page_fails(self, endpoint: str, page_number: object, fault: str) -> bool:
        """True, logged as a hit, when `failing_page` fails this page with `fault`."""
        with self._lock:
            return self._page_fault(endpoint, page_number, (fault,)) is not None

    def _page_fault(
        self, endpoint: str | None, page_number: object, faults: Iterable[str]
    ) -> str | None:
        """The fault of `failing_page` among `faults` for this page, logged as a hit."""
        failing = self.faults.failing_page
        if failing is None or failing[0] != page_number:
            return None
        page, fault = failing
        if fault not in PAGE_FAULTS:
            raise ValueError(f"unknown page fault {fault!r}: one of {PAGE_FAULTS}")
        if fault not in faults:
            return None
        self.hits.append(Hit(endpoint or "", f"page {page}: {fault}"))
        return fault

    def _drawn(self, *, download: bool, page: bool) -> Decision:
        """The faults the knobs draw for one request."""
        f = self.faults
        delay = 0.0
        if f.latency_seconds > 0 and self._every("latency", f.latency_every or 1):
            delay += f.latency_seconds
        hit, action = self._random(cut_allowed=download or page)
        if hit and action is None:
            delay += f.random_latency_seconds
        if download:
            if action is None and f.truncate_downloads > 0:
                f.truncate_downloads -= 1
                action = Action.CUT
            return Decision(delay, action, f.retry_after)
        # Every counter sees every API request, whichever fault wins.
        knobs = [
            (Action.DROP, self._every("drop", f.drop_connection_every)),
            (Action.RATE_LIMIT, self._every("rate_limit", f.rate_limit_every)),
            (Action.SERVER_ERROR, self._every("server_error", f.server_error_every)),
            (Action.BAD_JSON, self._every("bad_json", f.bad_json_every)),
            (Action.HTML, f.wrong_content_type),
            (Action.CUT, page and self._every("cut_page", f.cut_page_every)),
        ]
        if action is None:
            action = next((a for a, fired in knobs if fired), None)
        if action is Action.RATE_LIMIT and f.retry_after is None:
            action = Action.RATE_LIMIT_BARE
        return Decision(delay, action, f.retry_after)

    def take(self, knob: str) -> bool:
        """Consume one unit of a countdown knob; True when there was one."""
        with self._lock:
            left = getattr(self.faults, knob)
            if left > 0:
                setattr(self.faults, knob, left - 1)
                return True
            return False
