import numpy as np
import pytest

from shipml.errors import InvalidInput
from shipml.scoring.schema import InputSchema, example_record, infer_schema, object_schema

SCHEMA = InputSchema(object_schema({"a": "number", "b": "integer", "c": "boolean"}))


def test_infer_from_array_with_names() -> None:
    schema = infer_schema(np.zeros((3, 2)), ["x", "y"])
    assert schema is not None
    assert list(schema["properties"]) == ["x", "y"]
    assert schema["properties"]["x"] == {"type": "number"}


def test_infer_from_example_and_columns() -> None:
    assert infer_schema(input_example={"text": "hi"})["properties"] == {"text": {"type": "string"}}  # type: ignore[index]
    columns = infer_schema({"n": np.array([1, 2]), "s": np.array(["a", "b"])})
    assert columns is not None
    assert columns["properties"] == {"n": {"type": "integer"}, "s": {"type": "string"}}


def test_example_record_is_first_row() -> None:
    schema = object_schema({"x": "number", "y": "number"})
    assert example_record(schema, np.array([[1.5, 2.0], [3.0, 4.0]])) == {"x": 1.5, "y": 2.0}


def test_matrix_from_records_and_rows() -> None:
    numeric = InputSchema(object_schema({"x": "number", "y": "number"}))
    matrix = numeric.matrix([{"y": 2, "x": 1.5}], rows=False)
    assert matrix.tolist() == [[1.5, 2.0]] and matrix.dtype == np.float64
    assert numeric.matrix([[1, 2], [3, 4]], rows=True).shape == (2, 2)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"b": 1, "c": True}, "missing field 'a'"),
        ({"a": "1.5", "b": 1, "c": True}, "field 'a' must be a number, got a string '1.5'"),
        ({"a": 1.0, "b": 1.5, "c": True}, "field 'b' must be an integer"),
        ({"a": True, "b": 1, "c": True}, "field 'a' must be a number, got a boolean"),
        ({"a": 1.0, "b": 1, "c": 1}, "field 'c' must be true or false"),
        (
            {"a": None, "b": 1, "c": True},
            "field .a. cannot be null: the model cannot take a missing",
        ),
        ({"a": 1.0, "b": 1, "c": True, "bb": 2}, "unknown field 'bb' \\(did you mean 'b'\\?\\)"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_each_problem_has_one_precise_message(record: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SCHEMA.check_record(record, None)


NUMBERS = InputSchema(object_schema({"x": "number", "y": "number"}))


@pytest.mark.parametrize(
    ("items", "rows", "message"),
    [
        ([{"x": 1.0}], False, "missing field 'y'"),
        ([{"x": 1.0, "yy": 2.0}], False, "missing field 'y'"),
        ([{"x": 1.0, "y": 2.0, "z": 3}], False, "unknown field 'z'"),
        ([{"x": True, "y": 2.0}], False, "field 'x' must be a number, got a boolean"),
        ([{"x": "1", "y": 2.0}], False, "field 'x' must be a number, got a string"),
        ([{"x": 1, "y": None}], False, "field .y. cannot be null"),
        ([{"x": 1, "y": 2}, {"x": 1, "y": [2]}], False, "field 'y' in record 1 must be a number"),
        ([[1.0, 2.0], [1.0]], True, "row 1 must be a list of 2 values"),
        ([[1.0, False]], True, "field 'y' in record 0 must be a number, got a boolean"),
        (["x"], False, "expected a JSON object"),
    ],
)
def test_the_all_number_fast_path_still_names_each_problem(
    items: list[object], rows: bool, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        NUMBERS.matrix(items, rows)


def test_the_all_number_fast_path_keeps_feature_order() -> None:
    matrix = NUMBERS.matrix([{"y": 2, "x": 1.5}, {"x": -1, "y": 0.25}], rows=False)
    assert matrix.tolist() == [[1.5, 2.0], [-1.0, 0.25]] and matrix.dtype == np.float64
    single = InputSchema(object_schema({"only": "number"}))
    assert single.matrix([{"only": 3}], rows=False).tolist() == [[3.0]]


def test_record_index_is_named_in_lists() -> None:
    with pytest.raises(InvalidInput, match="in record 1"):
        SCHEMA.matrix([{"a": 1.0, "b": 1, "c": True}, {"a": 1.0}], rows=False)


def test_row_length_is_checked() -> None:
    with pytest.raises(InvalidInput, match="row 0 must be a list of 3 values in the order a, b, c"):
        SCHEMA.matrix([[1.0, 2]], rows=True)
