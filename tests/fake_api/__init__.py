"""The local ContactBased API: a faithful fake of docs/contactbased-api.md.

Start it with `FakeContactBased(...).start()` (or as a context manager), point the client at
`api.url`, and turn the knobs of `api.faults` to inject failures.
"""

from .data import CONTRACT_COLUMNS
from .enrichment import BUNDLE_KEYS
from .exports import Export
from .fake import DEFAULT_BUNDLES, FakeContactBased
from .faults import Faults
from .routes import RequestRecord
from .validation import ApiError

__all__ = [
    "BUNDLE_KEYS",
    "CONTRACT_COLUMNS",
    "DEFAULT_BUNDLES",
    "ApiError",
    "Export",
    "FakeContactBased",
    "Faults",
    "RequestRecord",
]
