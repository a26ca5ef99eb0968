"""Requests: retries that end in a complete sync, and one clear line for each refusal."""

from __future__ import annotations

import io
import json
import typing as t

import pytest
import requests

from tap_contactbased import endpoints, redaction, retry
from tap_contactbased.answers import UnreadableBodyError
from tap_contactbased.api_client import (
    ApiClient,
    api_detail,
    check_status,
    download_answer,
    is_retriable,
    sending,
    status_error_message,
    transport_error,
)
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.errors import (
    ApiError,
    ConfigError,
    ExpiredDownloadUrl,
    RefusedAnswerError,
    TransientApiError,
)
from tap_contactbased.retry import RetryPolicy
from tap_contactbased.settings import Settings
from tap_contactbased.tap import TapContactBased
from tests.clocks import VirtualClock, virtual_retry_clock
from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased
from tests.fake_api.faults import Hit
from tests.singer_run import run_command, run_tap, selected_catalog
from tests.tls_server import CERT, CSV, RedirectingServer

ORGANIZATION_STREAMS = ["feeds", "credits", "feed_limit", "bundles", "filter_fields"]


def statuses(api: FakeContactBased) -> list[int]:
    return [r.status for r in api.requests]


@pytest.mark.parametrize(
    ("knob", "value", "seen"),
    [
        ("rate_limit_every", 2, 429),
        ("server_error_every", 2, 503),
        ("drop_connection_every", 2, 0),
        ("bad_json_every", 2, 200),
    ],
)
def test_sync_completes_through_transient_failures(
    api: FakeContactBased, config: dict[str, t.Any], knob: str, value: int, seen: int
) -> None:
    clean = run_tap(config, streams=ORGANIZATION_STREAMS)
    api.requests.clear()
    api.faults.retry_after = 0.01
    setattr(api.faults, knob, value)

    faulty = run_tap(config, streams=ORGANIZATION_STREAMS)

    for stream in ORGANIZATION_STREAMS:
        assert faulty.records(stream) == clean.records(stream)
    assert statuses(api).count(seen) >= 2


def test_rate_limit_without_retry_after_backs_off_and_completes(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    api.faults.rate_limit_every = 2
    api.faults.retry_after = None

    result = run_tap(config, streams=["feeds", "credits"])

    assert result.records("feeds") == api.feeds
    assert 429 in statuses(api)


@pytest.fixture
def virtual_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The retry loop on a virtual clock, with the real waits and no jitter."""
    clock = virtual_retry_clock(monkeypatch)
    monkeypatch.setattr(RetryPolicy, "jitter", staticmethod(lambda seconds: seconds))
    return clock


def credits_given_up(api: FakeContactBased, config: dict[str, t.Any], **faults: t.Any) -> str:
    """The error a credits sync with `retry_max_seconds: 10` ends in, the API failing so."""
    config = {**config, "retry_max_seconds": 10}
    catalog = selected_catalog(config, ["credits"])
    api.requests.clear()
    for knob, value in faults.items():
        setattr(api.faults, knob, value)
    with pytest.raises(TransientApiError) as raised:
        run_tap(config, catalog=catalog)
    return str(raised.value)


def test_the_sdk_streams_retry_in_the_clients_loop_until_retry_max_seconds(
    api: FakeContactBased, config: dict[str, t.Any], virtual_clock: VirtualClock
) -> None:
    error = credits_given_up(api, config, server_error_every=1)

    assert error.endswith("(5 tries in 10 s)")
    assert virtual_clock.waits == [1.0, 2.0, 4.0, 3.0]  # exponential, the last cut to 10 s
    assert len(api.requests) == 5


def test_the_sdk_streams_honour_retry_after_within_retry_max_seconds(
    api: FakeContactBased, config: dict[str, t.Any], virtual_clock: VirtualClock
) -> None:
    error = credits_given_up(api, config, rate_limit_every=1, retry_after=7)

    assert virtual_clock.waits == [7.0]  # as asked; the second ask is past the budget
    assert error.endswith(
        "(the API asked to wait 7 s, more than retry_max_seconds allows; 2 tries in 7 s)"
    )
    assert len(api.requests) == 2


def test_retries_are_bounded(api: FakeContactBased, config: dict[str, t.Any]) -> None:
    catalog = selected_catalog(config, ["credits"])
    api.requests.clear()
    api.faults.server_error_every = 1

    with pytest.raises(TransientApiError, match=r"GET /organization/credits: 503"):
        run_tap(config, catalog=catalog)

    assert len(api.requests) == retry.MAX_TRIES


def _api_of(config: dict[str, t.Any]) -> t.Any:
    stream = TapContactBased(config=config).streams["feeds"]
    assert isinstance(stream, ContactBasedStream)
    return stream.client


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            lambda api, fake: api.post("/enrich/auto", {"contact_ids": ["id_0123456789abcdef"]}),
            r"POST /enrich/auto: 403 Forbidden \(.+\): not permitted for this organization",
        ),
        (
            lambda api, fake: api.post(
                "/intent/feeds/exports/page", {"export_id": "exp_missing", "page": 1}
            ),
            r"POST /intent/feeds/exports/page: 404 Not Found \(.+\): not found",
        ),
        (
            lambda api, fake: api.post(
                "/intent/feeds/exports",
                {"feed_id": fake.feed_ids[0], "lookback_days": 30, "page_size": 10},
            ),
            r"POST /intent/feeds/exports: 422 Unprocessable Entity \(page_size: .+\): the API "
            r"rejected the request",
        ),
    ],
)
def test_refusals_raise_one_line_naming_endpoint_status_and_detail(
    api: FakeContactBased, config: dict[str, t.Any], call: t.Any, expected: str
) -> None:
    with pytest.raises(ApiError, match=expected) as raised:
        call(_api_of(config), api)

    message = str(raised.value)
    assert "\n" not in message
    assert API_KEY not in message


def test_payment_required_names_both_numbers() -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY, credits_total=10) as api:
        client = _api_of(make_config(api))
        with pytest.raises(ApiError, match=r"402 Payment Required \(.*\d.*\d.*\): not enough"):
            client.post("/intent/feeds/exports", {"feed_id": api.feed_ids[0], "lookback_days": 30})


def assert_one_line_failure(result: t.Any, *fragments: str) -> str:
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-contactbased: error: "), result.stderr
    for fragment in fragments:
        assert fragment in last
    assert "Traceback" not in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    return str(last)


def test_refused_key_is_one_line_and_never_printed(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: t.Any
) -> None:
    wrong_key = "cbk_live_SECRET_wrong_0000"
    result = run_command([], tmp_path, config={**config, "api_key": wrong_key})

    assert_one_line_failure(result, "401 Unauthorized", "check the api_key setting")
    assert wrong_key not in result.stderr + result.stdout


def test_unknown_feed_is_one_line(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: t.Any
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    result = run_command([], tmp_path, config={**config, "feed_ids": [unknown]})

    assert_one_line_failure(result, unknown, "not a feed of this organization", "feed_ids")


def test_filter_the_api_rejects_is_one_line(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: t.Any
) -> None:
    bad_filter = [{"field": "shoe_size", "op": "eq", "value": "42"}]
    result = run_command([], tmp_path, config={**config, "consumer_filters": bad_filter})

    assert_one_line_failure(result, "422", "consumer_filters")
    assert api.created_exports == []


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"api_key": None}, "api_key"),
        ({"page_size": 10}, "page_size"),
        ({"lookback_days": "thirty"}, "lookback_days"),
        ({"feed_ids": ["not-a-uuid"]}, "feed_ids"),
        ({"export_mode": "sometimes"}, "export_mode"),
    ],
)
def test_invalid_config_fails_before_any_request(
    api: FakeContactBased,
    config: dict[str, t.Any],
    tmp_path: t.Any,
    overrides: dict[str, t.Any],
    setting: str,
) -> None:
    bad = {**config, **overrides}
    bad = {k: v for k, v in bad.items() if v is not None}

    result = run_command([], tmp_path, config=bad)

    assert result.returncode != 0
    assert setting in result.stderr
    assert "Traceback" not in result.stderr
    assert api.requests == []


def _download_client(config: dict[str, t.Any]) -> ApiClient:
    """The tap's client on a session that trusts the local HTTPS server's certificate."""
    client = ApiClient.from_settings(Settings.from_config(config), API_KEY)
    client.session.verify = str(CERT)
    return client


def test_a_download_redirected_from_https_to_http_is_refused_in_one_line(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    plain = f"{api.url}/files/exp_1.csv?expires=9999999999&signature=0123456789abcdef0123"
    with RedirectingServer() as tls:
        client = _download_client(config)
        with pytest.raises(ApiError) as raised:
            client.open_download(f"{tls.url}/redirect?to={plain}", "the CSV download of exp_1")

    message = str(raised.value)
    assert "the CSV download of exp_1: the download was redirected from https to http" in message
    assert "\n" not in message
    assert "signature" not in message
    assert tls.paths == [f"/redirect?to={plain}"]  # asked once: a refusal is not retried
    assert not [r for r in api.requests if r.path.startswith("/files/")]  # never followed


def test_a_download_redirected_from_https_to_https_is_followed(config: dict[str, t.Any]) -> None:
    with RedirectingServer() as tls:
        client = _download_client(config)
        response = client.open_download(
            f"{tls.url}/redirect?to={tls.url}/file", "the CSV download of exp_1"
        )

        assert response.content == CSV
    assert tls.paths == [f"/redirect?to={tls.url}/file", "/file"]


def test_a_downloads_signature_is_redacted_once_it_is_opened(config: dict[str, t.Any]) -> None:
    signature = "0123456789abcdef0123456789abcdef"
    redirected = "fedcba9876543210fedcba9876543210"  # the signature of the URL redirected to
    with RedirectingServer() as tls:
        client = _download_client(config)
        client.open_download(f"{tls.url}/file?signature={signature}", "the download").close()
        redirect = f"{tls.url}/redirect?to={tls.url}/file?signature={redirected}"
        client.open_download(redirect, "the download").close()

    for secret in (signature, redirected):
        assert secret not in redaction.redact(f"a message that repeats {secret} alone")
    redaction.forget_secrets()


def redirects_to_the_file(url: str, redirects: int) -> str:
    target = f"{url}/file"
    for _ in range(redirects):
        target = f"{url}/redirect?to={target}"
    return target


def test_a_download_follows_five_redirects_and_refuses_a_sixth(config: dict[str, t.Any]) -> None:
    with RedirectingServer() as tls:
        client = _download_client(config)
        followed = client.open_download(redirects_to_the_file(tls.url, 5), "the download")
        assert followed.content == CSV
        with pytest.raises(ApiError, match=r"^the download: more than 5 redirects$"):
            client.open_download(redirects_to_the_file(tls.url, 6), "the download")


def answer(status: int, body: bytes, reason: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response._content = body
    response.raw = io.BytesIO(body)
    return response


def test_only_the_msg_items_of_a_fastapi_detail_list_are_echoed() -> None:
    detail = [
        {"loc": ["body", "feed_id"], "msg": "field required"},
        "not an item",
        {"loc": ["body", "page"]},  # no msg
        {"loc": ["body", "page_size"], "msg": "too large"},
    ]
    body = json.dumps({"detail": detail}).encode()

    assert api_detail(answer(422, body)) == "feed_id: field required; page_size: too large"
    assert api_detail(answer(502, b"<html>Bad gateway</html>")) == ""


def test_a_status_without_a_standard_phrase_is_named_by_its_reason_or_as_an_error() -> None:
    assert status_error_message("POST /x", answer(599, b"", "Proxy Gave Up")) == (
        "POST /x: 599 Proxy Gave Up"
    )
    assert status_error_message("POST /x", answer(599, b"")) == "POST /x: 599 Error"


def test_a_rate_limit_and_every_server_error_are_asked_again() -> None:
    # One test, not variants: the mutation run would keep only one of variants alike.
    statuses = (429, 500, 503, 499, 404)
    assert [is_retriable(status) for status in statuses] == [True, True, True, False, False]


def test_a_download_redirected_to_a_path_of_the_same_host_is_followed(
    config: dict[str, t.Any],
) -> None:
    with RedirectingServer() as tls:
        client = _download_client(config)
        assert client.open_download(f"{tls.url}/redirect?to=/file", "the download").content == CSV


def test_a_downloads_status_says_whether_to_renew_retry_or_stop() -> None:
    with pytest.raises(ExpiredDownloadUrl):
        download_answer(answer(403, b""), "the download")
    with pytest.raises(TransientApiError, match=r"^the download: 503"):
        download_answer(answer(503, b"", "Slow Down"), "the download")
    with pytest.raises(ApiError, match=r"^the download: 404") as refused:
        download_answer(answer(404, b"", "Not Found"), "the download")
    assert not isinstance(refused.value, TransientApiError)
    # 300 without a Location is no redirect to follow, and no file either.
    ready = answer(299, b"x")
    assert download_answer(ready, "the download") is ready
    with pytest.raises(ApiError, match=r"^the download: 300 Multiple Choices$"):
        download_answer(answer(300, b"", "Multiple Choices"), "the download")


def test_an_answer_the_decoder_cannot_read_is_named_without_echoing_it(
    config: dict[str, t.Any],
) -> None:
    def unreadable(_: bytes) -> t.NoReturn:
        raise UnreadableBodyError("the page answer has no rows")

    def garbled(_: bytes) -> t.NoReturn:
        raise ValueError("the text of the body, which may hold anything")

    def too_deep(_: bytes) -> t.NoReturn:
        raise RecursionError

    with RedirectingServer() as tls:
        client = _download_client(config)
        prepared = requests.Request("GET", f"{tls.url}/file").prepare()
        with pytest.raises(TransientApiError) as read_again:
            client.send_decoded(prepared, unreadable)
        with pytest.raises(TransientApiError) as garbled_body:
            client.send_decoded(prepared, garbled)
        with pytest.raises(RefusedAnswerError, match="nests JSON deeper than"):
            client.send_decoded(prepared, too_deep)

    assert str(read_again.value) == (
        "GET /file: the answer could not be read (the page answer has no rows)"
    )
    assert str(garbled_body.value) == "GET /file: the answer could not be read (ValueError)"


def test_a_redirect_the_api_sends_is_refused_not_read() -> None:
    check_status(answer(299, b"{}"))
    with pytest.raises(ApiError, match=r"^request: 300 Multiple Choices$"):
        check_status(answer(300, b""))


def test_a_download_that_cannot_be_sent_is_the_apis_fault_and_a_request_the_settings(
    config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _api_of(config)

    def refuse(*_: t.Any, **__: t.Any) -> t.NoReturn:
        raise requests.exceptions.InvalidURL("https://files.example.com/x?signature=secret")

    monkeypatch.setattr(client.session, "send", refuse)
    prepared = requests.Request("GET", "https://files.example.com/x").prepare()
    with pytest.raises(
        ApiError, match=r"^the download: the request cannot be sent \(InvalidURL\)$"
    ):
        client.send(prepared, what="the download")
    with pytest.raises(ConfigError, match="check the api_url and api_key settings"):
        client.send(prepared)


def test_a_request_is_named_in_retry_warnings_without_its_query_or_host() -> None:
    prepared = requests.Request(
        "POST", "https://api.example.com/intent/feeds/exports/list?key=secret"
    ).prepare()
    assert sending(prepared) == "Sending POST /intent/feeds/exports/list"


def test_a_transport_error_of_another_kind_is_named_by_its_class_only() -> None:
    exc = requests.exceptions.TooManyRedirects("https://api.example.com/?key=secret")
    assert str(transport_error(exc, "GET /x")) == "GET /x: the request failed (TooManyRedirects)"


@pytest.mark.parametrize(
    ("detail", "echoed"),
    [
        ("word " * 2000, "word word"),
        ({"request": {"X-API-Key": API_KEY}}, None),
        ([{"loc": ["body", "page"], "msg": "must be\n\x1b[2Jpositive", "type": "x"}], "page: "),
    ],
    ids=["long text", "object", "FastAPI list"],
)
def test_an_error_body_is_echoed_as_one_short_clean_line(
    api: FakeContactBased, config: dict[str, t.Any], detail: t.Any, echoed: str | None
) -> None:
    api.faults.error_detail = detail

    with pytest.raises(ApiError) as raised:
        _api_of(config).post("/intent/feeds/exports/page", {"export_id": "exp_no", "page": 1})

    message = str(raised.value)
    assert message.startswith("POST /intent/feeds/exports/page: 404 Not Found")
    assert len(message) < 400
    assert "\n" not in message
    assert "\x1b" not in message
    assert API_KEY not in message
    if echoed is None:
        assert "(" not in message  # nothing of the object
    else:
        assert f"({echoed}" in message


def test_a_json_answer_cut_in_the_middle_is_asked_again_as_a_dropped_connection(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    # Any JSON answer may be cut on the way; the fake cuts only pages, so a page read as JSON.
    export_id = api.make_ready_export(api.feed_ids[0], 7, page_size=1000)
    api.faults.failing_page = (1, "cut")  # half the body, then the connection closes; always
    client = _api_of(config)

    with pytest.raises(TransientApiError) as raised:
        client.post(endpoints.EXPORTS_PAGE, {"export_id": export_id, "page": 1})

    assert str(raised.value).startswith(
        f"POST {endpoints.EXPORTS_PAGE}: the connection dropped in the middle of the response ("
    )
    hit = Hit(f"POST {endpoints.EXPORTS_PAGE}", "page 1: cut")
    assert api.fault_engine.hits == [hit] * retry.MAX_TRIES  # asked again, as a transport error
