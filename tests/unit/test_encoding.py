"""Compressed request bodies (serving/encoding.py): decoded as Python's own gzip and zlib
decode them, held to the body limit once decoded, and refused with a status that says
what to send when they cannot be read. Triton's real client sends them in
tests/integration/test_oip_clients.py."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import shipml
from shipml.errors import InvalidJSON, PayloadTooLarge
from shipml.serving.encoding import UnsupportedEncoding, decoded
from tests.unit.test_app import call, make_app
from tests.unit.test_azureml_runtime import make_app as make_score_app
from tests.unit.test_azureml_runtime import register

BODY = json.dumps([{"a": 1.5, "b": 2}, {"a": -1, "b": 0.25}] * 50).encode()


@pytest.fixture
def regressor() -> str:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    model = LinearRegression().fit(x, x.sum(axis=1))
    return shipml.save_model(model, training_data=x, feature_names=["a", "b"], name="sum")


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        (b"gzip", gzip.compress(BODY)),
        (b"x-gzip", gzip.compress(BODY)),
        (b"GZIP", gzip.compress(BODY)),
        (b"gzip", gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])),  # two members
        (b"deflate", zlib.compress(BODY)),  # zlib's format: what HTTP's deflate means
        (b"deflate", raw_deflate(BODY)),  # raw deflate, which some clients send instead
        (b"identity", BODY),
        (b"deflate, gzip", gzip.compress(zlib.compress(BODY))),  # applied in that order
        (b"gzip,identity", gzip.compress(BODY)),
    ],
)
def test_codings_are_undone_as_the_standard_library_undoes_them(
    coding: bytes, packed: bytes
) -> None:
    assert decoded(packed, coding, len(BODY)) == BODY


def test_a_body_over_the_limit_once_decoded_is_413_without_decoding_it_all() -> None:
    bomb = gzip.compress(b"0" * 50_000_000)  # 50 MB of zeros in ~50 KB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge, match="larger than 1048576 bytes"):
        decoded(bomb, b"gzip", 1_048_576)
    with pytest.raises(PayloadTooLarge):
        decoded(zlib.compress(BODY), b"deflate", len(BODY) - 1)
    assert decoded(zlib.compress(BODY), b"deflate", len(BODY)) == BODY  # the limit itself


@pytest.mark.parametrize(
    ("coding", "packed", "message"),
    [
        (b"gzip", BODY, "not valid gzip"),
        (b"gzip", gzip.compress(BODY)[:-20], "cut short"),
        (b"deflate", zlib.compress(BODY)[:30], "cut short"),
        (b"gzip", gzip.compress(BODY) + b"garbage", "not valid gzip"),
        (b"deflate", zlib.compress(BODY) + b"garbage", "data after its end"),
    ],
)
def test_a_body_that_does_not_decode_is_400(coding: bytes, packed: bytes, message: str) -> None:
    with pytest.raises(InvalidJSON, match=message) as caught:
        decoded(packed, coding, 10 * len(BODY))
    assert caught.value.status == 400


@pytest.mark.parametrize("coding", [b"br", b"zstd", b"gzip, compress"])
def test_other_codings_are_415_naming_them(coding: bytes) -> None:
    with pytest.raises(UnsupportedEncoding, match=r"'(br|zstd|compress)'") as caught:
        decoded(gzip.compress(BODY), coding, 10 * len(BODY))
    assert caught.value.status == 415


def test_predict_answers_a_compressed_body_as_the_same_body_sent_plain(regressor: str) -> None:
    app = make_app(regressor)
    plain = call(app, "POST", "/predict", content=BODY)
    assert plain.status_code == 200
    for coding, packed in (("gzip", gzip.compress(BODY)), ("deflate", zlib.compress(BODY))):
        answer = call(app, "POST", "/predict", content=packed, headers={"Content-Encoding": coding})
        assert answer.status_code == 200, answer.text
        assert answer.json() == plain.json()


def test_predict_refusals_say_what_to_send(regressor: str) -> None:
    app = make_app(regressor, max_body_bytes=len(BODY) - 1)
    too_large = call(
        app, "POST", "/predict", content=gzip.compress(BODY), headers={"Content-Encoding": "gzip"}
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    small = b'{"a": 1, "b": 2}'
    unsupported = call(app, "POST", "/predict", content=small, headers={"Content-Encoding": "br"})
    assert unsupported.status_code == 415
    assert unsupported.headers["accept-encoding"] == "gzip, deflate, identity"
    assert unsupported.json()["error"]["code"] == "unsupported_encoding"
    assert "send it uncompressed" in unsupported.json()["error"]["message"]
    corrupt = call(app, "POST", "/predict", content=BODY[:99], headers={"Content-Encoding": "gzip"})
    assert corrupt.status_code == 400
    assert corrupt.json()["error"]["code"] == "invalid_json"


RAW = """
from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    data = request.get_data()
    return AMLResponse(f"{len(data)} {data[:2].hex()}", 200)
"""


def test_score_py_gets_the_body_as_the_client_sent_it(tmp_path: Path) -> None:
    # Microsoft's server does not decode it (checked by hand with azureml-inference-server-http
    # 1.5.1: a @rawhttp run() reads the gzip bytes, "27 1f8b" for this body), and a script
    # that decodes it itself must keep working.
    app = make_score_app(register(tmp_path, RAW))
    packed = gzip.compress(b'{"a":1}')
    answer = call(app, "POST", "/score", content=packed, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.text == f"{len(packed)} 1f8b"


def test_a_body_that_decodes_large_is_decoded_off_the_loop_and_still_limited(
    regressor: str,
) -> None:
    # 64 KiB decoded is where serving/costs.py moves a body's work off the event loop
    big = json.dumps([{"a": i / 7, "b": 1} for i in range(8000)]).encode()
    assert len(big) > 64 * 1024
    app = make_app(regressor)
    plain = call(app, "POST", "/predict", content=big)
    packed = call(
        app, "POST", "/predict", content=gzip.compress(big), headers={"Content-Encoding": "gzip"}
    )
    assert packed.status_code == 200 and packed.json() == plain.json()
    small_limit = make_app(regressor, max_body_bytes=len(big) - 1)
    refused = call(
        small_limit,
        "POST",
        "/predict",
        content=gzip.compress(big),
        headers={"Content-Encoding": "gzip"},
    )
    assert refused.status_code == 413
