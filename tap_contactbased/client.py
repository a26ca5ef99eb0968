"""The one base stream for the ContactBased API: its settings, its client, its retries.

Streams driven by the SDK request through the SDK's own path with the policies set here;
everything else requests through `api`, the `ContactBasedApi` built on the same policies.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from functools import cached_property

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.batch import Batcher
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.jsonpath import extract_jsonpath

from tap_contactbased.api_client import (
    ContactBasedApi,
    RetryPolicy,
    body_cap,
    check_status,
    decoded_answer,
    endpoint_of,
    status_error_message,
)
from tap_contactbased.batch_files import owner_only
from tap_contactbased.errors import ConfigError
from tap_contactbased.sdk_internals import (
    VERSION_COLUMN,
    ActivatedAtEnd,
    mapped_records,
    passes_records_unchanged,
    records_to_batch,
    stream_version,
)
from tap_contactbased.settings import api_key_of
from tap_contactbased.spelling import normalise_id_spelling

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_contactbased.sdk_internals import BaseBatchFileEncoding, BatchConfig

API_KEY_HEADER = "X-API-Key"


class ContactBasedStream(ActivatedAtEnd, RESTStream[t.Any]):
    """Base stream: `X-API-Key` auth, bounded retries honouring `Retry-After`, clear errors.

    Versioned (`replaced_by_each_sync`) streams activate their version after their last
    STATE, never at their start (`ActivatedAtEnd`).
    """

    records_jsonpath = "$[*]"
    # A redirect could carry the key header to another host; the API never redirects.
    allow_redirects = False

    retry_initial_wait = 1.0
    retry_max_wait = 60.0
    retry_max_tries = 8

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of every request and re-read of this stream."""
        return RetryPolicy(self.retry_initial_wait, self.retry_max_wait, self.retry_max_tries)

    @property
    @override
    def url_base(self) -> str:
        """The API root from the `api_url` setting."""
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    @override
    def authenticator(self) -> APIKeyAuthenticator:
        """Every API request carries the key in the `X-API-Key` header."""
        return APIKeyAuthenticator(key=API_KEY_HEADER, value=api_key_of(self.config))

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        """The API speaks JSON."""
        return {"Accept": "application/json"}

    @property
    @override
    def timeout(self) -> int:
        """Seconds to wait for an answer before the request counts as failed."""
        return int(self.config["request_timeout_seconds"])

    @cached_property
    def api(self) -> ContactBasedApi:
        """Requests outside the SDK's record flow, under this stream's policies."""
        return ContactBasedApi(self)

    @override
    def generate_child_contexts(
        self, record: dict[str, t.Any], context: Context | None
    ) -> t.Iterable[Context | None]:
        """No child streams here; the SDK would still copy the context for every record."""
        if self.child_streams:
            yield from super().generate_child_contexts(record, context)

    @override
    def build_prepared_request(self, *args: t.Any, **kwargs: t.Any) -> requests.PreparedRequest:
        """Every request of the tap, the SDK's included, reads at most a capped answer."""
        prepared = super().build_prepared_request(*args, **kwargs)
        prepared.hooks["response"].append(body_cap(prepared))
        return prepared

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Check the status, then the JSON: a garbled answer is retried, one past a cap not."""
        check_status(response)
        decoded_answer(response)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Records from the answer, with the contact id spelled `contact_id` in field names."""
        yield from extract_jsonpath(
            self.records_jsonpath, input=normalise_id_spelling(response.json())
        )

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The SDK's default message holds the whole body; ours holds only the detail."""
        return status_error_message(endpoint_of(response.request), response)

    @override
    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Wait as the retry policy says: what `Retry-After` asks for, else exponentially."""
        policy = self.retry_policy
        attempt = 0
        exception = yield 0.0  # backoff primes the generator; this value is unused
        while True:
            response = exception.response if isinstance(exception, RetriableAPIError) else None
            attempt += 1
            exception = yield policy.wait(attempt, response)

    @override
    def backoff_jitter(self, value: float) -> float:
        """Spread retries as the retry policy says."""
        return self.retry_policy.jitter(value)

    @override
    def backoff_max_tries(self) -> int:
        """Tries per request, the first included."""
        return self.retry_max_tries

    @override
    def backoff_handler(self, details: Details) -> None:
        """Log each retry with the endpoint and the reason, never the arguments."""
        exception = details.get("exception")
        self.log(
            "Retrying in %.2f s (try %d of %d): %s",
            details.get("wait", 0.0),
            details.get("tries", 0),
            self.retry_max_tries,
            exception if isinstance(exception, RetriableAPIError) else type(exception).__name__,
            level=logging.WARNING,
        )

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """The SDK's batcher, fed what RECORD messages would carry.

        The SDK batches records as the stream produces them: its stream maps (the README's
        PII map among them) and its selection would not apply to the files. A versioned
        sync's records carry the version in the files (`VERSION_COLUMN`).
        """
        version = stream_version(self)
        if passes_records_unchanged(self) and version is None:
            with owner_only():
                yield from super().get_batches(batch_config, context)
            return
        if len(self.stream_maps) > 1:
            aliases = ", ".join(self.stream_aliases())
            msg = (
                f"The stream maps copy {self.name} into several streams ({aliases}), which the "
                f"SDK's BATCH files cannot tell apart; only export_rows can be copied so in "
                "BATCH mode. Remove batch_config or the copy."
            )
            raise ConfigError(msg)
        records = (record for _, record in mapped_records(self, records_to_batch(self, context)))
        if version is not None:
            records = ({**record, VERSION_COLUMN: version} for record in records)
        batcher = Batcher(self.tap_name, self.name, batch_config)
        with owner_only():
            for manifest in batcher.get_batches(records):
                yield batch_config.encoding, manifest

    def stream_aliases(self) -> list[str]:
        """The names this stream's records go out under, one per stream map."""
        return [m.stream_alias for m in self.stream_maps]
