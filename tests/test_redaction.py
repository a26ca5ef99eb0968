"""The one redaction: each of its rules alone, and the log filter that applies them all."""

from __future__ import annotations

import logging
import sys
import typing as t

import pytest

from tap_contactbased import redaction
from tap_contactbased.redaction import (
    RedactingFilter,
    api_text,
    clean,
    escape_controls,
    redact,
    register_secret,
    register_url_secrets,
)

KEY = "cbk_live_SECRET_r3d4ct_11aa"


@pytest.fixture(autouse=True)
def no_secrets() -> t.Iterator[None]:
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


@pytest.mark.parametrize(
    "form",
    [KEY, f"b'{KEY}\\n'", "cbk_live_SECRET_r3d4ct_11aa%0A", '"cbk_live_SECRET_r3d4ct_11aa\\r\\n"'],
    ids=["plain", "bytes repr", "url-encoded", "json"],
)
def test_a_registered_key_is_redacted_in_the_forms_it_is_echoed_in(form: str) -> None:
    register_secret(KEY + "\n")

    assert KEY not in redact(f"Invalid header value {form} sent")
    assert "<redacted>" in redact(f"Invalid header value {form} sent")


def test_a_key_of_another_type_is_registered_by_its_text() -> None:
    register_secret([731255907319, {"k": "cbk_in_an_object_77"}])

    assert redact("731255907319 is not of type 'string'; cbk_in_an_object_77") == (
        "<redacted> is not of type 'string'; <redacted>"
    )


def test_urls_lose_their_userinfo_and_query_strings() -> None:
    text = "GET https://user:p@ss@host.example/files/x.csv?expires=1&signature=abc HTTP/1.1"

    assert redact(text) == "GET https://<redacted>@host.example/files/x.csv?<redacted> HTTP/1.1"
    assert redact("a question? yes") == "a question? yes"


def test_the_long_values_of_a_signed_url_are_redacted_alone_too() -> None:
    register_url_secrets("https://h/f.csv?expires=1700000000&signature=0123456789abcdef0123")

    assert redact("signature 0123456789abcdef0123 expired") == "signature <redacted> expired"
    assert redact("expires 1700000000") == "expires 1700000000"  # short: not a secret


def test_control_characters_line_ends_and_ansi_escapes_are_escaped() -> None:
    assert escape_controls("a\nb\r\tc\x1b[31md\x00\u2028\u202e") == (
        "a\\nb\\r\\tc\\x1b[31md\\x00\\u2028\\u202e"
    )


def test_api_text_is_one_capped_line_and_never_an_object() -> None:
    assert api_text("x\n  y\x1b") == "x y\\x1b"
    assert len(api_text("w" * 1000)) == redaction.API_TEXT_LIMIT
    assert api_text({"detail": KEY}) == ""
    assert api_text(["a"]) == ""


def test_the_filter_cleans_the_message_its_arguments_and_the_traceback() -> None:
    register_secret(KEY)
    try:
        raise ValueError(f"Invalid header value b'{KEY}\\n'")
    except ValueError:
        failure = sys.exc_info()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "%s and %s", (KEY, "forged\nline"), exc_info=failure
    )

    assert RedactingFilter().filter(record)
    line = logging.Formatter().format(record)

    assert KEY not in line
    assert line.startswith("<redacted> and forged\\nline\nTraceback")
    assert "ValueError: Invalid header value b'<redacted>\\n'" in line


def test_install_puts_one_filter_on_each_root_handler() -> None:
    handler = logging.NullHandler()
    logging.getLogger().addHandler(handler)
    try:
        redaction.install()
        redaction.install()

        assert [type(f) for f in handler.filters] == [RedactingFilter]
    finally:
        logging.getLogger().removeHandler(handler)


def test_clean_redacts_before_it_escapes() -> None:
    register_secret(KEY)

    assert clean(f"{KEY}\n") == "<redacted>\\n"
