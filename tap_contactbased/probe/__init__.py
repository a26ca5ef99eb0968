"""The probe: check a ContactBased API against the contract with free requests only.

`tap-contactbased --config config.json --probe` makes the requests of `observe` (nothing
that creates, reserves or enriches), judges each contract point of `table` with `engine`
and prints the table of `report`. `run_probe` is the whole of it for a configured tap.
"""

from __future__ import annotations

import importlib.metadata
import typing as t
import urllib.parse

from tap_contactbased.client import ContactBasedStream
from tap_contactbased.probe import engine
from tap_contactbased.probe.observe import Observations, ProbeApi, ProbeUnavailable, collect
from tap_contactbased.probe.report import Check, ProbeReport, Verdict
from tap_contactbased.probe.table import POINTS
from tap_contactbased.settings import Settings

if t.TYPE_CHECKING:
    from singer_sdk import Tap

__all__ = ["Check", "ProbeReport", "ProbeUnavailable", "Verdict", "judge", "run_probe"]

# An interactive check should answer within seconds when the API is down; the waits between
# tries (and Retry-After) are the tap's own.
PROBE_MAX_TRIES = 3


def judge(obs: Observations) -> list[Check]:
    """Every contract point, in the order of the report."""
    return [engine.judge(point, obs) for point in POINTS]


def probe_api(tap: Tap) -> ProbeApi:
    """The tap's client, on one of its streams, limited to free requests."""
    stream = next(s for s in tap.streams.values() if isinstance(s, ContactBasedStream))
    stream.retry_max_tries = PROBE_MAX_TRIES
    return ProbeApi(stream)


def tap_version() -> str:
    """The installed version of the tap."""
    try:
        return importlib.metadata.version("tap-contactbased")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def api_host(api_url: str) -> str:
    """The API's host (and port), without any credentials or path."""
    parts = urllib.parse.urlsplit(api_url)
    host = parts.hostname or "unknown"
    return f"{host}:{parts.port}" if parts.port else host


def run_probe(tap: Tap) -> ProbeReport:
    """Probe the API the tap is configured for; raises `ProbeUnavailable` if it cannot."""
    settings = Settings.from_config(tap.config)
    observations = collect(probe_api(tap), settings)
    return ProbeReport(judge(observations), tap_version(), api_host(settings.api_url))
