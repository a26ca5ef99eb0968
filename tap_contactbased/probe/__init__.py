"""The probe: check a ContactBased API against the contract with free requests only.

`tap-contactbased --config config.json --probe` makes the requests of `observe` (nothing that
creates, reserves or enriches), judges each point of `table` with `engine` and prints the
table of `report`, from the settings and the key alone: no tap and no stream take part.
"""

from __future__ import annotations

import importlib.metadata
import typing as t
import urllib.parse

from tap_contactbased.api_client import ApiClient
from tap_contactbased.probe import engine
from tap_contactbased.probe.observe import ProbeClient, ProbeUnavailable, collect
from tap_contactbased.probe.report import Check, ProbeReport, Verdict
from tap_contactbased.probe.table import POINTS

if t.TYPE_CHECKING:
    from tap_contactbased.settings import Settings

__all__ = ["Check", "ProbeReport", "ProbeUnavailable", "Verdict", "run_probe"]

# An interactive check should answer within seconds when the API is down; the waits between
# tries (and Retry-After) are the tap's own.
PROBE_MAX_TRIES = 3


def probe_client(settings: Settings, api_key: str) -> ProbeClient:
    """A client of the API the settings name, limited to free requests."""
    return ProbeClient(ApiClient.from_settings(settings, api_key, max_tries=PROBE_MAX_TRIES))


def run_probe(settings: Settings, api_key: str) -> ProbeReport:
    """Probe the API the settings name; raises `ProbeUnavailable` if it cannot."""
    obs = collect(probe_client(settings, api_key), settings)
    try:
        version = importlib.metadata.version("tap-contactbased")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    parts = urllib.parse.urlsplit(settings.api_url)  # the host, never credentials or a path
    host = parts.hostname or "unknown"
    host = f"{host}:{parts.port}" if parts.port else host
    return ProbeReport([engine.judge(point, obs) for point in POINTS], version, host)
