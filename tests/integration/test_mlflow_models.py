"""MLflow model folders served by ``shipml serve FOLDER``, differentially against MLflow.

tests/mlflow_reference.py runs in the Azure ML reference venv (real mlflow-skinny 3.17.2,
the same numpy, pandas and scikit-learn as shipml's venv). It saves each model with
``mlflow.sklearn.save_model`` and records what ``mlflow.pyfunc`` predicts for the requests
this test sends. shipml, which does not import MLflow, must answer the same:
- the same probabilities, for a census-like pipeline with optional columns, booleans,
  integers and strings, saved with ``pyfunc_predict_fn="predict_proba"``;
- the same labels for iris (cloudpickle, MLflow 2's default; MLflow 3's is skops, which
  needs skops installed);
- the same predictions for a model saved without a signature.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.azureml_reference import REFERENCE_VENV
from tests.conftest import REPO, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MLflow's folders and answers (tests/mlflow_reference.py), made once."""
    out = tmp_path_factory.mktemp("mlflow")
    python = REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run scripts/azmlinfsrv.sh (make test does)")
    subprocess.run(
        [str(python), str(REPO / "tests" / "mlflow_reference.py"), str(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


def case(saved: Path, name: str) -> tuple[Path, list[Any], list[Any]]:
    answers = json.loads((saved / f"{name}.json").read_text())
    return saved / name, answers["records"], answers["mlflow"]


def predict(server: Server, body: Any) -> list[Any]:
    answer = httpx.post(f"{server.url}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    return result if isinstance(result, list) else [result]


def test_a_pipeline_with_a_signature_answers_as_mlflow(
    saved: Path, serve: Callable[..., Server]
) -> None:
    folder, records, expected = case(saved, "census")
    server = serve(str(folder))
    schema = httpx.get(f"{server.url}/info", timeout=10).json()["input_schema"]
    properties = schema["properties"]
    # the signature's types and optional columns, not "every field a number"
    assert properties["workclass"]["type"] == ["string", "null"]
    assert properties["occupation"]["type"] == "string"
    assert properties["education_years"]["type"] == "integer"
    assert properties["owns_home"]["type"] == "boolean"
    assert properties["age"]["type"] == ["number", "null"]
    answers = predict(server, records)
    assert len(answers) == len(expected)
    for answer, probabilities in zip(answers, expected, strict=True):
        assert list(answer["probabilities"].values()) == pytest.approx(probabilities, abs=1e-12)
    # what the signature refuses is a 422 naming the field
    wrong = httpx.post(f"{server.url}/predict", json={**records[0], "age": "old"}, timeout=10)
    assert wrong.status_code == 422 and "'age'" in wrong.json()["error"]["message"]
    missing = httpx.post(f"{server.url}/predict", json={**records[0], "occupation": None})
    assert missing.status_code == 422 and "'occupation'" in missing.json()["error"]["message"]


def test_iris_saved_with_cloudpickle_answers_mlflows_labels(
    saved: Path, serve: Callable[..., Server]
) -> None:
    folder, records, expected = case(saved, "iris")
    assert "cloudpickle" in (folder / "MLmodel").read_text()
    server = serve(str(folder / "MLmodel"))  # the MLmodel file itself names the folder too
    assert [a["label"] for a in predict(server, records)] == expected


def test_a_model_saved_without_a_signature_takes_rows(
    saved: Path, serve: Callable[..., Server]
) -> None:
    folder, rows, expected = case(saved, "unsigned")
    assert "signature" not in (folder / "MLmodel").read_text()
    server = serve(str(folder))
    answers = predict(server, {"inputs": rows})
    assert [a["prediction"] for a in answers] == pytest.approx(expected, abs=1e-12)


def test_other_flavours_and_broken_folders_are_one_clear_error(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    for data, hint in (("model.xgb", False), ("model.json", True)):  # model_format xgb, json
        xgb = tmp_path / data
        xgb.mkdir()
        (xgb / "MLmodel").write_text(
            "flavors:\n  python_function:\n    loader_module: mlflow.xgboost\n"
            f"  xgboost:\n    data: {data}\n    model_class: xgboost.sklearn.XGBClassifier\n"
        )
        server = serve(str(xgb), wait=False)
        assert server.process.wait(timeout=60) != 0
        log = server.log.read_text()
        assert "MLflow model of flavour xgboost; shipml reads MLflow's sklearn flavour" in log
        assert (f"shipml serve {xgb / data}" in log) == hint, log
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")
    server = serve(str(empty), wait=False)
    assert server.process.wait(timeout=60) != 0
    assert "names model.pkl, which is not there" in server.log.read_text()
