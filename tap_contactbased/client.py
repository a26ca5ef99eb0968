"""The one base stream of the tap: the run it shares, and the run's `ApiClient` for requests.

The SDK's own requests go out on the client's session, auth, timeout and answer cap, and
through its one retry loop (`request_decorator`).
"""

from __future__ import annotations

import typing as t

import requests
from singer_sdk import RESTStream
from singer_sdk.batch import Batcher
from singer_sdk.helpers.jsonpath import extract_jsonpath
from typing_extensions import override

from tap_contactbased.answers import decoded_answer, endpoint_of, with_body_cap
from tap_contactbased.api_client import check_status, sending, transport_error
from tap_contactbased.batch_files import owner_only
from tap_contactbased.errors import ConfigError
from tap_contactbased.sdk_internals import (
    VERSION_COLUMN,
    ActivatedAtEnd,
    mapped_records,
    records_to_batch,
    stream_version,
    write_state_now,
)
from tap_contactbased.spelling import normalise_id_spelling

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, RequestFunc

    from tap_contactbased.api_client import ApiClient, KeyAuth
    from tap_contactbased.run import RunContext
    from tap_contactbased.sdk_internals import BaseBatchFileEncoding, BatchConfig
    from tap_contactbased.settings import Settings


class ContactBasedStream(ActivatedAtEnd, RESTStream[t.Any]):
    """A stream of one run: its settings, and the run's client for every request."""

    records_jsonpath = "$[*]"
    # A redirect could carry the key header to another host; the API never redirects.
    allow_redirects = False

    def __init__(self, tap: Tap, run: RunContext, schema: dict[str, t.Any] | None = None) -> None:
        self.run = run
        super().__init__(tap, schema=schema)

    @property
    def settings(self) -> Settings:
        return self.run.settings

    @property
    def client(self) -> ApiClient:
        return self.run.client

    @property
    @override
    def url_base(self) -> str:
        return self.client.base_url

    @property
    @override
    def authenticator(self) -> KeyAuth:
        return self.client.auth

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.client.session

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @property
    @override
    def timeout(self) -> int:
        return int(self.client.timeout)

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """The SDK's retry hook: each request under one budget of the client's retry loop.

        Transport errors, which the SDK lets through, become the client's one-line errors.
        """
        client = self.client

        def send(prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
            def attempt() -> requests.Response:
                try:
                    return func(prepared, context)
                except requests.RequestException as exc:
                    raise transport_error(exc, endpoint_of(prepared)) from None

            return client.retrying(sending(prepared), attempt)

        return send

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
        return with_body_cap(super().build_prepared_request(*args, **kwargs))

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

    def write_checkpoint(self) -> None:
        """A STATE message now; in BATCH mode the SDK's, after each file, confirms the rows."""
        if self.get_batch_config(self.config) is None:
            write_state_now(self)

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """The SDK's batcher, fed what RECORD messages would carry (maps, selection, version)."""
        if len(self.stream_maps) > 1:
            aliases = ", ".join(self.stream_aliases())
            msg = (
                f"The stream maps copy {self.name} into several streams ({aliases}), which the "
                f"SDK's BATCH files cannot tell apart; only export_rows can be copied so in "
                "BATCH mode. Remove batch_config or the copy."
            )
            raise ConfigError(msg)
        records = (record for _, record in mapped_records(self, records_to_batch(self, context)))
        version = stream_version(self)
        if version is not None:
            records = ({**record, VERSION_COLUMN: version} for record in records)
        batcher = Batcher(self.tap_name, self.name, batch_config)
        with owner_only():
            for manifest in batcher.get_batches(records):
                yield batch_config.encoding, manifest

    def stream_aliases(self) -> list[str]:
        """The names this stream's records go out under, one per stream map."""
        return [m.stream_alias for m in self.stream_maps]
