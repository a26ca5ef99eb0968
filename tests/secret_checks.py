"""What the tap must never write (the API key, signed download URLs), and the scan for it."""

from __future__ import annotations

import traceback

from tests.conftest import API_KEY
from tests.fake_api import FakeContactBased

WRONG_KEY = "cbk_live_SECRET_refused_99d1c0"
DEBUG = {"TAP_CONTACTBASED_LOGLEVEL": "DEBUG"}
# The query-string parameters of the local API's signed URLs: any of them in the output
# means a signed URL, or its query string, got out.
SIGNED_QUERY_PARAMETERS = ("signature=", "expires=")


def leaks(api: FakeContactBased, written: str) -> list[str]:
    """The secrets of `api` found in `written`: keys, URL signatures, signed query strings."""
    secrets = [API_KEY, WRONG_KEY, *api.issued_signatures, *SIGNED_QUERY_PARAMETERS]
    return [secret for secret in secrets if secret in written]


def exception_text(error: BaseException) -> str:
    """Everything an exception shows: its repr, and its traceback as Python prints it."""
    return repr(error) + "\n" + "".join(traceback.format_exception(error))
