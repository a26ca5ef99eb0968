"""TapContactBased: the config schema and the explicit list of streams."""

from __future__ import annotations

import copy
import typing as t
from functools import cached_property
from pathlib import PurePath

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_contactbased import redaction
from tap_contactbased.connection_settings import (
    api_key_of,
    check_api_key,
    check_api_url,
    without_key_value,
)
from tap_contactbased.run import CONNECTION_TEST, RunContext
from tap_contactbased.sdk_internals import move_to_end
from tap_contactbased.settings import CONFIG_SCHEMA, Settings
from tap_contactbased.state import check_state, proof_key
from tap_contactbased.streams.enrichment import EnrichmentStream
from tap_contactbased.streams.export_rows import ExportRowsStream
from tap_contactbased.streams.feed_totals import FeedTotalsStream
from tap_contactbased.streams.organization import (
    BundlesStream,
    CreditsStream,
    ExportsStream,
    FeedLimitStream,
    FeedsStream,
    FilterFieldsStream,
)
from tap_contactbased.writer import RecordBufferingWriter

if t.TYPE_CHECKING:
    from collections.abc import MutableMapping

    import click


class TapContactBased(Tap):
    """Singer tap for the ContactBased Data API."""

    name = "tap-contactbased"
    package_name = "tap-contactbased"
    # The SDK appends its built-in settings to this dict in place; CONFIG_SCHEMA stays ours.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    message_writer_class = RecordBufferingWriter

    def __init__(self, *, state: t.Any = None, **kwargs: t.Any) -> None:
        """Refuse a state that is no object before the SDK reads it as a path; hide the key."""
        if state is not None and not isinstance(state, (dict, str, PurePath)):
            check_state(state)
        redaction.install()
        self._settings_checked = False
        try:
            super().__init__(state=state, **kwargs)
        except ConfigValidationError as exc:
            redaction.register_secret(self.config.get("api_key"))
            raise without_key_value(exc, self.config) from None
        self._check_connection_settings()

    def _check_connection_settings(self) -> None:
        """Register the secrets and check `api_key` and `api_url`, once, before any request.

        The SDK discovers the streams (and discovery previews the feeds) inside its own
        constructor, as soon as the config is read: `discover_streams` calls this first.
        """
        if self._settings_checked:
            return
        self._settings_checked = True
        redaction.register_secret(self.config.get("api_key"))
        warning = check_api_key(self.config)
        check_api_url(self.config)
        if warning:
            self.logger.warning(warning)

    @cached_property
    def run(self) -> RunContext:
        return RunContext(
            Settings.from_config(self.config),
            enrichment_state=self._enrichment_state,
            enrichment_selected=lambda: self.streams[EnrichmentStream.name].selected,
            api_key=api_key_of(self.config),
            proof_key=proof_key(self.config.get("api_key")),
            last_export_id=self.last_export_id,
        )

    def last_export_id(self, feed_id: str) -> str | None:
        """The export the state says a feed delivered last."""
        state = self.streams[ExportRowsStream.name].get_context_state({"feed_id": feed_id})
        value = state.get("last_export_id")
        return None if value is None else str(value)

    def _enrichment_state(self) -> MutableMapping[str, t.Any]:
        bookmarks: dict[str, t.Any] = self.state.setdefault("bookmarks", {})
        state: MutableMapping[str, t.Any] = bookmarks.setdefault(EnrichmentStream.name, {})
        return state

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        check_state(state)
        super().load_state(state)

    @override
    def discover_streams(self) -> list[Stream]:
        self._check_connection_settings()
        run = self.run
        return [
            FeedsStream(self, run),
            CreditsStream(self, run),
            FeedLimitStream(self, run),
            BundlesStream(self, run),
            FilterFieldsStream(self, run),
            ExportRowsStream(self, run),
            ExportsStream(self, run),
            FeedTotalsStream(self, run),
            EnrichmentStream(self, run),
        ]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """The SDK syncs streams by name; enrichment needs what export_rows produced first."""
        return move_to_end(super().streams, EnrichmentStream.name)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: every stream is checked for free; nothing is created or enriched."""
        token = CONNECTION_TEST.set(value != CliTestOptionValue.Disabled.value)
        try:
            super().cb_test(ctx, param, value)
        finally:
            CONNECTION_TEST.reset(token)
