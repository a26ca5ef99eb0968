"""Errors a user can act on.

Every error here carries one line that says what happened and what to do. None of them may
hold the API key or a signed download URL: messages are built from endpoint paths, statuses
and API details.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


def tried(tries: int) -> str:
    """`1 try`, `8 tries`."""
    return f"{tries} {'try' if tries == 1 else 'tries'}"


class ContactBasedError(Exception):
    """A failure that ends the run with one readable line."""


class ConfigError(ContactBasedError):
    """The configuration cannot work against this organization (unknown feed, bundle, ...)."""


class StateError(ConfigError):
    """A state this tap could not have written."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(
            f"The state is malformed at {where}: {problem}. Fix the state, or remove it to "
            "start again from lookback_days."
        )


class ApiError(ContactBasedError, FatalAPIError):
    """The API refused a request in a way that retrying cannot fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientApiError(RetriableAPIError):
    """A failure worth retrying: rate limit, server error, dropped or cut connection."""

    def given_up(self, tries: int, seconds: float, *, why: str | None = None) -> Exception:
        """The error that ends the retries: this failure, with the tries it took."""
        return self.hiding_the_same_cause(
            TransientApiError(self.tried_for(tries, seconds, why), self.response)
        )

    def tried_for(self, tries: int, seconds: float, why: str | None = None) -> str:
        """This failure's line, with the tries it took (and why it gave up early)."""
        spent = f"{tried(tries)} in {seconds:.0f} s"
        return f"{self} ({why}; {spent})" if why else f"{self} ({spent})"

    def named(self, what: str) -> Exception:
        """This failure after `what` names it: the request's own line names only the endpoint."""
        return self.hiding_the_same_cause(TransientApiError(f"{what}: {self}", self.response))

    def hiding_the_same_cause(self, error: Exception) -> Exception:
        """`error`, chained to what this failure hides (what requests raised, say)."""
        error.__context__ = self.__context__
        error.__suppress_context__ = True
        return error


class ContractError(ContactBasedError):
    """The API answered in a shape the tap cannot work with safely: the run stops."""


def left_out(endpoint: str, missing: str, consequence: str) -> ContractError:
    """The API's answer lacks what the contract promises: `consequence`, and a request to report."""
    return ContractError(
        f"{endpoint} answered without {missing}, so {consequence}. Report this difference."
    )


class ExportError(ContactBasedError):
    """An export failed, stalled, timed out or reported something the tap cannot trust."""


class CreditError(ContactBasedError):
    """Creating an export would spend more records credits than are left or allowed."""


class RefusedAnswerError(ContractError):
    """An answer beyond a cap of `limits` (size, nesting, a number): asked for only once."""


class RereadNeeded(TransientApiError):  # noqa: N818 - a condition the loop handles
    """A part of a ready export to read again: short page, 404 or 409, CSV cut, counts off."""

    def __init__(self, problem: str, *, what: str) -> None:
        super().__init__(problem)
        self.what = what

    def given_up(self, tries: int, seconds: float, *, why: str | None = None) -> Exception:
        """Only this feed fails once the part was read as often as the budget allows."""
        problem = f"{self}; {why}" if why else str(self)
        return self.hiding_the_same_cause(
            ExportError(
                f"Could not read {self.what}: {problem} ({tried(tries)} in {seconds:.0f} s). "
                "Rows up to the last confirmed page are saved; the next run resumes there"
            )
        )


class ExpiredDownloadUrl(TransientApiError):  # noqa: N818 - a condition the loop handles
    """The signed URL was refused as expired: the next try asks the API for a new one."""

    def given_up(self, tries: int, seconds: float, *, why: str | None = None) -> Exception:
        """Only this feed fails once as many URLs as the budget allows were refused."""
        return self.hiding_the_same_cause(ExportError(self.tried_for(tries, seconds, why)))


class TargetStoppedReadingError(ContactBasedError):
    """The target closed the pipe (it crashed, or `| head` had enough): the run ends."""

    def __init__(self) -> None:
        super().__init__(
            "the target stopped reading (broken pipe); rows after the last STATE were not "
            "confirmed, and the next run resumes from there"
        )
