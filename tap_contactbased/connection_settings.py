"""The two settings that decide what is sent where: `api_key` and `api_url`.

Both are checked in every mode, discovery included, before any request, each in one line
that never shows the key or a password.
"""

from __future__ import annotations

import ipaddress
import typing as t
import urllib.parse

from singer_sdk.exceptions import ConfigValidationError

from tap_contactbased.errors import ConfigError
from tap_contactbased.settings import default_of


def json_kind(value: object) -> str:
    """What a config value is, in JSON's words, without showing it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "a text"


def api_key_refusal(value: object) -> str:
    """The one line refusing an api_key that is no text (or empty), wherever it is found.

    A sync finds it in the SDK's schema check (`without_key_value`); discovery, which does
    not enforce the schema, in `check_api_key`.
    """
    if value == "":
        return "The api_key setting is empty: set it to your API key"
    return (
        f"The api_key setting is {json_kind(value)}, not a text (its value is not shown): "
        "set it to the key as a text"
    )


def without_key_value(
    exc: ConfigValidationError, config: t.Mapping[str, t.Any]
) -> ConfigValidationError:
    """The SDK's config errors, the one about api_key in the tap's words (the SDK's shows it)."""
    errors = [
        api_key_refusal(config.get("api_key")) if "in config['api_key']" in error else error
        for error in exc.errors
    ]
    return ConfigValidationError(str(exc), errors=errors, schema=exc.schema)


def api_key_of(config: t.Mapping[str, t.Any]) -> str:
    """The key as it is sent: a trailing line end (a secret file's last newline) removed."""
    key = config.get("api_key")
    if not isinstance(key, str):
        return ""
    return key.removesuffix("\r\n") if key.endswith("\r\n") else key.removesuffix("\n")


def check_api_key(config: t.Mapping[str, t.Any]) -> str | None:
    """Refuse a key that cannot be sent, in one line that never shows it.

    Returns a warning when a trailing line end was removed (see `api_key_of`). No key at
    all is left to the config schema: discovery works without one, offline.
    """
    raw = config.get("api_key")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ConfigError(api_key_refusal(raw))
    key = api_key_of(config)
    if not key:
        raise ConfigError("The api_key setting is only a line end. Set it to your API key.")
    # What an HTTP header value can carry unchanged: visible ASCII, no blank.
    bad = next((i for i, c in enumerate(key) if not "!" <= c <= "~"), None)
    if bad is not None:
        msg = (
            "The api_key setting holds a blank, line end, control or non-ASCII character "
            f"(character {bad + 1}); its value is not shown. Set it to the key alone."
        )
        raise ConfigError(msg)
    if key != raw:
        return (
            "The api_key setting ended in a line end (as a key file often does); the tap "
            "sends the key without it."
        )
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(config: t.Mapping[str, t.Any]) -> None:
    """Refuse an api_url the key must not go to, in one line that never shows a password.

    https:// to any host, or http:// to this machine only (the local API of the demo and
    the tests): the key travels in a header, in clear over http.
    """
    value = config.get("api_url", default_of("api_url"))
    if not isinstance(value, str):
        raise ConfigError(f"The api_url setting is {json_kind(value)}; set it to an https:// URL.")
    try:
        parts = urllib.parse.urlsplit(value.strip())
    except ValueError:  # an unbalanced [ of an IPv6 address
        parts = urllib.parse.SplitResult("", "", "", "", "")
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:  # a port that is no number
        host = None
    scheme = parts.scheme.lower()
    problem = None
    if scheme not in ("https", "http"):
        problem = "does not start with https://"
    elif "@" in parts.netloc:
        problem = "holds a user or password: give the key in api_key, never in the URL"
    elif not host:
        problem = "has no valid host (or port)"
    elif scheme == "http" and not is_loopback(host):
        problem = (
            "is http:// to another machine, which would send the key unencrypted: use "
            "https:// (http:// is only for a loopback address such as 127.0.0.1)"
        )
    elif parts.query or parts.fragment:
        problem = "holds a query string or fragment"
    if problem is not None:
        raise ConfigError(f"The api_url setting {problem}. Fix api_url (the tap refused it).")
