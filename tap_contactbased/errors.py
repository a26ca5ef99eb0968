"""Errors a user can act on.

Every error here carries one line that says what happened and what to do. The command-line
entry point prints that line instead of a traceback. None of them may hold the API key or
a signed download URL: messages are built from endpoint paths, statuses and API details.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class ContactBasedError(Exception):
    """A failure that ends the run with one readable line."""


class ConfigError(ContactBasedError):
    """The configuration cannot work against this organization (unknown feed, bundle, ...)."""


class ApiError(ContactBasedError, FatalAPIError):
    """The API refused a request in a way that retrying cannot fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status so callers can react to a particular refusal."""
        super().__init__(message)
        self.status = status


class TransientApiError(RetriableAPIError):
    """A failure worth retrying: rate limit, server error, dropped or cut connection."""


class ContractError(ContactBasedError):
    """The API answered in a shape the tap cannot work with safely: the run stops."""


class ExportError(ContactBasedError):
    """An export failed, stalled, timed out or reported something the tap cannot trust."""


class CreditError(ContactBasedError):
    """Creating an export would spend more records credits than are left or allowed."""


class RefusedAnswerError(ContractError):
    """An answer beyond a cap of `limits` (size, nesting, a number): asked for only once."""


class TargetStoppedReadingError(ContactBasedError):
    """The target closed the pipe (it crashed, or `| head` had enough): the run ends."""

    def __init__(self) -> None:
        """Say what it means for the rows already sent and for the next run."""
        super().__init__(
            "the target stopped reading (broken pipe); rows after the last STATE were not "
            "confirmed, and the next run resumes from there"
        )
