"""Microsoft's tracing headers on the Azure ML routes (serving/azureml_headers.py). The
same behaviour is compared with Microsoft's own server in
tests/integration/test_azureml_dropin.py; these are the rules one by one."""

from __future__ import annotations

import pytest

from shipml.errors import InvalidInput, ModelError
from shipml.scoring.azureml.deadline import ScoringTimeout, WorkerTimeout
from shipml.serving.azureml_headers import RequestIdTooLong, run_failed, tracing


def test_without_ids_the_request_id_is_microsofts_request_id() -> None:
    assert tracing([(b"content-type", b"application/json")], "abc") == [
        (b"x-ms-request-id", b"abc")
    ]


def test_a_client_id_is_both_ids_and_the_legacy_id_wins_x_ms_request_id() -> None:
    client = [(b"x-ms-client-request-id", b"c1"), (b"traceid", b"t9")]
    assert tracing(client, "abc") == [
        (b"x-ms-request-id", b"c1"),
        (b"x-ms-client-request-id", b"c1"),
        (b"traceid", b"t9"),
    ]
    legacy = [(b"x-ms-request-id", b"old")]
    assert tracing(legacy, "abc") == [
        (b"x-ms-request-id", b"old"),
        (b"x-ms-client-request-id", b"old"),
    ]
    both = [(b"x-ms-request-id", b"old"), (b"x-ms-client-request-id", b"c1")]
    assert tracing(both, "abc") == [
        (b"x-ms-request-id", b"old"),
        (b"x-ms-client-request-id", b"c1"),
    ]


def test_a_repeated_header_is_its_values_joined_by_commas() -> None:
    sent = [(b"x-ms-client-request-id", b"a"), (b"x-ms-client-request-id", b"b")]
    assert (b"x-ms-client-request-id", b"a,b") in tracing(sent, "abc")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (b"x-request-id", "x-request-id must not exceed 100 characters"),
        (b"x-ms-request-id", "x-ms-request-id and x-ms-client-request-id must not exceed"),
        (b"x-ms-client-request-id", "x-ms-request-id and x-ms-client-request-id must not"),
    ],
)
def test_ids_over_100_characters_are_refused_with_431(name: bytes, message: str) -> None:
    assert tracing([(name, b"x" * 100)], "abc")  # at the limit: answered
    with pytest.raises(RequestIdTooLong, match=message) as refused:
        tracing([(name, b"x" * 101)], "abc")
    assert refused.value.status == 431
    joined = [(name, b"x" * 50), (name, b"x" * 50)]  # 101 once joined
    with pytest.raises(RequestIdTooLong):
        tracing(joined, "abc")


def test_a_value_that_cannot_be_written_back_is_not_echoed() -> None:
    sent = [(b"x-ms-client-request-id", b"a\x01b"), (b"traceid", b"t\x7f")]
    assert tracing(sent, "abc") == [(b"x-ms-request-id", b"abc")]


def test_run_failed_only_when_run_raised_or_ran_out_of_time() -> None:
    assert run_failed(ModelError("boom")) == (b"x-ms-run-function-failed", b"True")
    assert run_failed(ScoringTimeout(5)) == (b"x-ms-run-function-failed", b"True")
    assert run_failed(WorkerTimeout(300)) == (b"x-ms-run-function-failed", b"True")
    assert run_failed(InvalidInput("bad")) == (b"x-ms-run-function-failed", b"False")


def test_run_answers_carry_microsofts_headers_about_the_call() -> None:
    from werkzeug.wrappers import Response

    from shipml.scoring.azureml.aml_response import AMLResponse
    from shipml.scoring.azureml.answers import Ran, answer

    value = answer(Ran({"label": "a"}, 5.98765))
    assert value.headers == [
        ("x-ms-run-function-failed", "False"),
        ("x-ms-run-fn-exec-ms", "5.988"),
    ]
    failed = answer(Ran(AMLResponse("broken", 503), 1.0))  # its own header said False
    assert [v for n, v in failed.headers if n == "x-ms-run-function-failed"] == ["True"]
    own = answer(Ran(AMLResponse("teapot", 418, run_function_failed=True), 0.25))
    assert ("x-ms-run-function-failed", "True") in own.headers  # kept below 500
    plain = answer(Ran(Response("ok"), 0.0004))
    assert [n for n, _ in plain.headers] == ["x-ms-run-fn-exec-ms"]  # Flask's has none
    assert plain.headers == [("x-ms-run-fn-exec-ms", "0.000")]
