"""``/predict`` reads a body as Flask's ``get_json()`` does (Microsoft's inference server is a
Flask app, in its reference venv): a byte order mark, UTF-16 and UTF-32 included. The same
bytes go to a real Flask app and to shipml's reader; the values read, or the refusal, must
agree."""

from __future__ import annotations

import json
import subprocess

import pytest

from shipml.errors import InvalidJSON
from shipml.serving import json_body
from tests.azureml_reference import REFERENCE_VENV

TEXT = '[{"a": 1.5, "b": "é"}, {"a": -1, "b": null}]'
BODIES = {
    **{encoding: TEXT.encode(encoding) for encoding in ("utf-8", "utf-8-sig", "utf-16")},
    **{encoding: TEXT.encode(encoding) for encoding in ("utf-16-be", "utf-32", "utf-32-le")},
    "latin-1": TEXT.encode("latin-1"),  # not JSON's: both refuse it
    "bom only": b"\xef\xbb\xbf",
}
FLASK = """
import json, sys
import flask
app = flask.Flask("reference")
@app.post("/")
def read():
    return {"value": flask.request.get_json()}
client = app.test_client()
answers = {}
for name, hex_body in json.loads(sys.stdin.read()).items():
    response = client.post("/", data=bytes.fromhex(hex_body), content_type="application/json")
    answers[name] = response.get_json()["value"] if response.status_code == 200 else None
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def flask_read() -> dict[str, object]:
    python = REFERENCE_VENV / "bin" / "python"
    sent = json.dumps({name: body.hex() for name, body in BODIES.items()})
    done = subprocess.run(
        [str(python), "-c", FLASK],
        input=sent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_is_read_as_flask_reads_it(flask_read: dict[str, object], name: str) -> None:
    try:
        mine: object = json_body.loads(BODIES[name])
    except InvalidJSON:
        mine = None
    assert mine == flask_read[name]
    assert (mine is None) == (name in ("latin-1", "bom only"))
