"""One redaction for every text that leaves the tap: log lines, the last error line, the probe.

Text from the API can neither hold a secret nor forge or colour a log line. The filter is on
the handlers, so it cleans whoever logs (the tap, the SDK, urllib3, backoff); `api_text` is
the only way an API's own words get into a message.
"""

from __future__ import annotations

import logging
import re
import threading
import typing as t
import urllib.parse

if t.TYPE_CHECKING:
    from collections.abc import Iterable

REDACTED = "<redacted>"
# The longest text of an API (an error's detail, a build error) that a message repeats.
API_TEXT_LIMIT = 300
# A query string (plain or percent-encoded) runs to the next blank or quote.
QUERY_STRING = re.compile(r"(?:\?|%3[Ff])[^\s\"'<>]+")
# Greedy to the last `@` before the path: a password may hold an `@` of its own.
USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:(?://|%2[Ff]%2[Ff]))[^/\s\"'<>]*@")
# C0 and C1 controls (line ends and ESC of ANSI sequences among them), DEL, the Unicode
# line and paragraph separators and the bidirectional overrides.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Query values this long in a signed URL are its signature (or as good as one).
SIGNATURE_MIN_LENGTH = 16
# Shorter values are no key worth the name, and redacting them would garble every line.
SECRET_MIN_LENGTH = 4

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: object) -> None:
    """Redact `value` from now on, in the forms an API or a library may print it in.

    Strings inside lists and objects count too: a mistyped key (`["cbk_..."]`) is as secret
    as a well-typed one.
    """
    forms: set[str] = set()
    for text in _strings_in(value):
        for form in (text, text.strip()):
            forms |= {form, repr(form)[1:-1], escape_controls(form)}
            forms |= {urllib.parse.quote(form, safe=""), urllib.parse.quote_plus(form, safe="")}
    with _lock:
        _secrets.update(f for f in forms if len(f) >= SECRET_MIN_LENGTH)


def register_url_secrets(url: str) -> None:
    """Redact the long query values of a signed URL wherever they turn up alone."""
    try:
        query = urllib.parse.urlsplit(url).query
    except ValueError:
        return
    values = [v for _, v in urllib.parse.parse_qsl(query) if len(v) >= SIGNATURE_MIN_LENGTH]
    register_secret(values)


def forget_secrets() -> None:
    """Redact no registered value any more (for tests that configure several keys)."""
    with _lock:
        _secrets.clear()


def _strings_in(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (dict, list, tuple, set)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings_in(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def redact(text: str) -> str:
    """`text` without the registered secrets, URL userinfo and query strings."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a longer form first
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    return QUERY_STRING.sub(f"?{REDACTED}", text)


def escape_controls(text: str) -> str:
    r"""`text` on one line: control characters written as escapes (`\n`, `\x1b`, `\u2028`)."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def clean(text: str) -> str:
    """`text` redacted and on one line: safe for a log line, a message or a report."""
    return escape_controls(redact(text))


def api_text(value: object) -> str:
    """A text of the API's (a detail, an id, a column name) as a message may repeat it.

    Anything but a string (an object, a list) is not repeated at all: its repr could hold
    whatever the API chose to echo. Cleaned, blanks collapsed, at most API_TEXT_LIMIT characters.
    """
    if not isinstance(value, str):
        return ""
    text = clean(" ".join(value.split()))
    return text if len(text) <= API_TEXT_LIMIT else text[: API_TEXT_LIMIT - 1] + "…"


class RedactingFilter(logging.Filter):
    """Cleans every record a handler emits: its message, and its traceback of redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args}"
        record.msg, record.args = clean(message), ()
        if record.exc_info:
            traceback = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(traceback)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install() -> None:
    """Put the filter on every handler configured now (the root logger's first), once each."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
