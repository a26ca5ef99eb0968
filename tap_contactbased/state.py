"""The state's format (`InFlight`, a feed's export in flight) and the checks of a state.

A state is what a target echoed from an earlier run. If it does not have the shape this tap
writes, resuming from it could skip or repeat days, so the run stops and says which value is
wrong instead of guessing. Before anything is spent, the values the run would act on are
checked against the API as well (`StateMismatchError`): nothing is delivered or enriched on
the state's word alone.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import typing as t
from dataclasses import asdict, dataclass

from tap_contactbased.errors import ConfigError, StateError
from tap_contactbased.snapshot import KEY as SNAPSHOT_KEY
from tap_contactbased.snapshot import check_snapshot
from tap_contactbased.values import date_or_none, is_int

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tap_contactbased.summary import ExportSummary

PENDING_WHERE = "bookmarks.enrichment.pending_exports"
PROOF_LENGTH = 32


def check_date(value: t.Any, where: str) -> str:
    """`value` if it is a date YYYY-MM-DD."""
    if date_or_none(value) is None:
        raise StateError(where, f"expected a date YYYY-MM-DD, found {value!r}")
    return str(value)


def day_or_none(value: str | None) -> str | None:
    """`value` if it is a date YYYY-MM-DD, else None."""
    day = date_or_none(value)
    return None if day is None else day.isoformat()


@dataclass
class InFlight:
    """The export a feed's state names while it is delivered: the record the next run resumes.

    `expected_rows` (the count before creation) and `page_size` are newer than the other
    fields: states written before them resume without them.
    """

    export_id: str
    start_date: str | None
    end_date: str | None
    deliver_through: str | None
    rows_done: int = 0
    expected_rows: int | None = None
    page_size: int | None = None

    @classmethod
    def from_state(cls, value: t.Any, where: str) -> InFlight:
        """Read and check an in-flight record; raise `StateError` naming a wrong value."""
        if not isinstance(value, dict) or not isinstance(value.get("export_id"), str):
            raise StateError(where, "expected an object with an export_id")
        fields: dict[str, t.Any] = {}
        for name in ("start_date", "end_date", "deliver_through"):
            raw = value.get(name)
            fields[name] = None if raw is None else check_date(raw, f"{where}.{name}")
        for name in ("rows_done", "expected_rows", "page_size"):  # only rows_done is required
            raw = fields[name] = value.get(name)
            if (raw is not None or name == "rows_done") and (not is_int(raw) or raw < 0):
                raise StateError(f"{where}.{name}", f"expected a count of rows, found {raw!r}")
        return cls(export_id=value["export_id"], **fields)

    def to_state(self) -> dict[str, t.Any]:
        """The record as the state holds it (fields without a value are left out)."""
        always = {"export_id", "start_date", "end_date", "deliver_through", "rows_done"}
        return {k: v for k, v in asdict(self).items() if v is not None or k in always}


class StateMismatchError(ConfigError):
    """A state whose values the API contradicts: nothing is spent on its word."""

    def __init__(self, problems: Sequence[str]) -> None:
        """Name every value that does not fit, each with what to do about it."""
        super().__init__(
            f"The state does not fit the API, so nothing was created or enriched: "
            f"{'; '.join(problems)}."
        )


def _check_export_rows(partition: t.Any, where: str) -> None:
    if not isinstance(partition, dict) or not isinstance(partition.get("context"), dict):
        raise StateError(where, "expected an object with a context")
    if "delivered_through" in partition:
        check_date(partition["delivered_through"], f"{where}.delivered_through")
    if partition.get("in_flight") is not None:
        InFlight.from_state(partition["in_flight"], f"{where}.in_flight")


def check_state(state: t.Any) -> None:
    """Raise a `ConfigError` naming the first value of `state` this tap could not have written."""
    if not isinstance(state, dict):
        raise StateError("the top level", f"expected an object, found {type(state).__name__}")
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError("bookmarks", "expected an object")
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            raise StateError(f"bookmarks.{stream}", "expected an object")
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            raise StateError(f"bookmarks.{stream}.partitions", "expected a list")
        if stream == "export_rows":
            for index, partition in enumerate(partitions):
                _check_export_rows(partition, f"bookmarks.export_rows.partitions[{index}]")
            if SNAPSHOT_KEY in stream_state:
                check_snapshot(stream_state[SNAPSHOT_KEY])
    pending = bookmarks.get("enrichment", {}).get("pending_exports", [])
    if not isinstance(pending, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("export_id"), str) for entry in pending
    ):
        raise StateError(PENDING_WHERE, "expected a list of exports")


# Against the API


def flight_misfits(flight: InFlight, summary: ExportSummary, where: str) -> list[str]:
    """What the export's summary contradicts in an in-flight record, each with what to do.

    The window must be the export's where the summary echoes it, and the counts must fit in
    the rows it holds: a resume past its end would read it again and again. Whose export it
    is, is checked by the caller (it may take a request).
    """
    problems = []
    mine = (flight.start_date, flight.end_date)
    theirs = (day_or_none(summary.start_date), day_or_none(summary.end_date))
    if any(m and s and m != s for m, s in zip(mine, theirs, strict=True)):
        problems.append(
            f"{where} says export {flight.export_id} covers {mine[0]}..{mine[1]}, but the API "
            f"says {theirs[0] or '?'}..{theirs[1] or '?'}: remove that in_flight entry"
        )
    most, source = summary.total_rows, "total_rows"
    page_size = summary.page_size or flight.page_size
    if most is None and summary.total_pages is not None and page_size:
        most, source = summary.total_pages * page_size, "total_pages x page_size"
    if most is None:
        return problems
    holds = f"export {flight.export_id} holds {most:,} rows ({source})"
    if flight.rows_done > most:
        problems.append(
            f"{where}.rows_done is {flight.rows_done:,} but {holds}: set it to the rows the "
            "target holds, or remove that in_flight entry"
        )
    if flight.expected_rows is not None and flight.expected_rows > most:
        problems.append(
            f"{where}.expected_rows (the count before the export was created) is "
            f"{flight.expected_rows:,} but {holds}: remove expected_rows from that entry"
        )
    return problems


def future_bookmark(day: str | None, today: datetime.date, where: str) -> str | None:
    """The problem with a day delivered after the API's today (a clock cannot deliver it)."""
    if day is None or day <= today.isoformat():
        return None
    return (
        f"{where} is {day}, after the API's today ({today}): set it to the last day the "
        "target holds, or remove it to start the feed again from lookback_days"
    )


def pending_proof(key: bytes, export_id: str, feed_id: str, deliver_through: str | None) -> str:
    """What proves that this tap, holding `key`, wrote a pending enrichment entry."""
    message = f"{export_id}\n{feed_id}\n{deliver_through or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:PROOF_LENGTH]


def proof_key(api_key: t.Any) -> bytes:
    """The key of the proofs, derived from the API key (which itself is never stored)."""
    return hashlib.sha256(
        b"tap-contactbased pending enrichment\x00" + str(api_key).encode()
    ).digest()


def pending_misfits(
    entries: Sequence[Mapping[str, t.Any]],
    *,
    feed_ids: Sequence[str],
    key: bytes,
    last_export_id: Callable[[str], str | None],
    summaries: Mapping[str, ExportSummary],
    is_export_of: Callable[[ExportSummary, str], bool],
) -> list[str]:
    """What is wrong with the exports the state says await enrichment, each with what to do.

    An entry is enriched only for a configured feed, when the API says the export is that
    feed's, and when this tap wrote it: its proof matches, or (states written before the
    proof) it is the export the feed's own state delivered last.
    """
    problems = []
    fix = "remove that entry (list its contacts in enrichment_contact_ids to enrich them)"
    for index, entry in enumerate(entries):
        where = f"{PENDING_WHERE}[{index}]"
        export_id = entry["export_id"]
        feed_id = str(entry.get("feed_id") or "").lower()
        proof = entry.get("proof")
        if feed_id not in feed_ids:
            problems.append(
                f"{where} names export {export_id} of feed {feed_id or '(none)'}, which is not "
                f"in feed_ids: {fix}"
            )
        elif proof is None and last_export_id(feed_id) != export_id:
            problems.append(
                f"{where} names export {export_id}, which the state of feed {feed_id} never "
                f"delivered (its last_export_id is {last_export_id(feed_id)}): {fix}"
            )
        elif proof is not None and not (
            isinstance(proof, str)
            and hmac.compare_digest(
                proof, pending_proof(key, export_id, feed_id, entry.get("deliver_through"))
            )
        ):
            problems.append(
                f"{where}: export {export_id} carries a proof this tap, with this api_key, did "
                f"not write: {fix}"
            )
        elif (summary := summaries.get(export_id)) is not None and not is_export_of(
            summary, feed_id
        ):
            problems.append(
                f"{where} names export {export_id} for feed {feed_id}, but the API says it "
                f"is an export of feed {summary.feed_id}: {fix}"
            )
    return problems
