"""A user's ONNX file: saved from a path (``save_model("iris.onnx")``) and served from the
store in-process, and served as a bare file by a real ``shipml serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import shipml
from shipml.errors import TrainingError
from tests.conftest import Server
from tests.flavour_support import app_for, error, post, probabilities, using_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("onnx")
    with using_store(folder / "store") as store:
        model = onnx_model(folder)
    return {"store": store, "folder": folder, "onnx": model}


def onnx_model(folder: Path) -> tuple[Any, np.ndarray, list[str]]:
    """A scikit-learn classifier converted by skl2onnx, handed over as a .onnx file."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    x = iris.data.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, iris.target_names[iris.target])
    path = folder / "iris.onnx"
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    shipml.save_model(str(path), training_data=x, feature_names=names, name="iris-onnx")
    return model, x, names


def test_an_onnx_file_served_from_the_store(published: dict[str, Any]) -> None:
    model, x, names = published["onnx"]
    app = app_for(published["store"], "iris-onnx:1")
    manifest = app.service.model.manifest  # type: ignore[union-attr]
    assert manifest.contract == "onnx" and manifest.model_file == "model.onnx"
    assert manifest.flavour["classes"] == ["setosa", "versicolor", "virginica"]
    rows = x[::10]
    answers = [
        a.json() for a in post(app, [dict(zip(names, map(float, r), strict=False)) for r in rows])
    ]
    np.testing.assert_allclose(
        probabilities(answers, list(model.classes_)), model.predict_proba(rows), atol=1e-5
    )
    assert [a["label"] for a in answers] == model.predict(rows).tolist()
    assert "must be a number" in error(post(app, [dict.fromkeys(names, "x")])[0])


def test_shipml_serve_a_bare_onnx_file(published: dict[str, Any], serve: Any) -> None:
    model, x, _ = published["onnx"]
    server: Server = serve(str(published["folder"] / "iris.onnx"))
    row = dict(zip(["f0", "f1", "f2", "f3"], map(float, x[100]), strict=True))
    answer = httpx.post(f"{server.url}/predict", json=row, timeout=10).json()
    assert answer["label"] == model.predict(x[100:101])[0]


@pytest.mark.parametrize("fixed", [1, 3])
def test_a_graph_exported_for_a_fixed_batch_size_answers_any_number_of_rows(
    tmp_path: Path, fixed: int
) -> None:
    # e.g. skl2onnx's initial_types=[("input", FloatTensorType([1, 4]))]: a graph that
    # takes exactly `fixed` rows per run, while a request (or a batch of them) has any
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    x = iris.data.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, iris.target)
    graph = convert_sklearn(model, initial_types=[("input", FloatTensorType([fixed, 4]))])
    path = tmp_path / "fixed.onnx"
    path.write_bytes(graph.SerializeToString())
    with using_store(tmp_path / "store") as store:
        shipml.save_model(str(path), name="fixed")
    app = app_for(store, "fixed:1")
    rows = x[::30]  # 5 rows: runs of 1, or of 3 with the last one padded
    records = [dict(zip(["f0", "f1", "f2", "f3"], map(float, r), strict=True)) for r in rows]
    (listed,) = post(app, [records])  # one request of 5 rows
    together = post(app, records)  # 5 requests at once: batched into one model call
    for answers in (listed.json(), [a.json() for a in together]):
        np.testing.assert_allclose(
            probabilities(answers, [0, 1, 2]), model.predict_proba(rows), atol=1e-5
        )
        assert [a["label"] for a in answers] == model.predict(rows).tolist()


def graph(path: Path, shape: list[Any], out_shape: list[Any], op: str) -> str:
    """A one-node float graph ``y = op(x)`` written to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
    if op == "double":
        two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
        nodes, constants = [helper.make_node("Mul", ["x", "two"], ["y"])], [two]
    else:  # the sum over every axis but the first
        axes = helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])
        nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)]
        constants = [axes]
    made = helper.make_graph(nodes, "g", [x], [y], initializer=constants)
    model = helper.make_model(made, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return str(path)


def test_a_graph_of_one_value_per_row_takes_one_field(tmp_path: Path) -> None:
    with using_store(tmp_path / "store") as store:
        shipml.save_model(graph(tmp_path / "v.onnx", ["N"], ["N"], "double"), name="vector")
    answers = post(app_for(store, "vector:1"), [[{"f0": 1.5}, {"f0": -2.0}]])[0].json()
    assert answers == [{"prediction": 3.0}, {"prediction": -4.0}]


def test_a_graph_that_takes_no_table_is_refused_at_save(tmp_path: Path) -> None:
    # an image or a sequence model: every request would be refused by ONNX Runtime
    cube = graph(tmp_path / "cube.onnx", ["N", 2, 3], ["N"], "sum")
    with using_store(tmp_path / "store") as store, pytest.raises(TrainingError) as refused:
        shipml.save_model(cube, name="cube")
    assert "'x' has the shape ['N', 2, 3]" in str(refused.value)
    assert "score.py or a predictor class" in str(refused.value)
    assert store.models() == []
