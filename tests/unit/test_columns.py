"""Column types: the schema written from a DataFrame's dtypes, what a request may send,
and the DataFrame the model gets (the training dtypes, built once per batch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from shipml.errors import InvalidInput
from shipml.flavours.sklearn import FLAVOUR
from shipml.scoring.nulls import nullable_fields
from shipml.scoring.schema import (
    InputSchema,
    allow_null,
    example_record,
    infer_schema,
    missing_columns,
)

FRAME = pd.DataFrame(
    {
        "price": [1.5, np.nan, 3.0],
        "small": np.array([1.0, 2.0, 3.0], dtype=np.float32),
        "count": np.array([1, 2, 3], dtype=np.int64),
        "tiny": np.array([1, 2, 3], dtype=np.uint8),
        "stock": pd.array([1, None, 3], dtype="Int64"),
        "colour": pd.Categorical(["red", "blue", None], categories=["red", "blue"]),
        "size": pd.Categorical([1, 2, 1]),
        "name": pd.Series(["a", "b", None], dtype="str"),
        "code": pd.Series(["x", "y", "z"], dtype="string"),
        "mixed": pd.Series([1, 2.5, 3], dtype=object),
        "flag": [True, False, True],
        "maybe": pd.array([True, None, False], dtype="boolean"),
        "when": pd.to_datetime(["2024-01-01T00:00:00", "2024-02-01T10:30:00", None]),
        "utc": pd.to_datetime(["2024-01-01T00:00:00Z"] * 3),
    }
)


def schema() -> dict[str, Any]:
    inferred = infer_schema(FRAME)
    assert inferred is not None
    properties = {name: allow_null(prop) for name, prop in inferred["properties"].items()}
    return {**inferred, "properties": properties}


def test_each_dtype_has_its_json_type() -> None:
    properties = infer_schema(FRAME)["properties"]  # type: ignore[index]
    kinds = {name: (prop["type"], prop.get("x-dtype")) for name, prop in properties.items()}
    assert kinds == {
        "price": ("number", "float64"),
        "small": ("number", "float32"),
        "count": ("integer", "int64"),
        "tiny": ("integer", "uint8"),
        "stock": ("integer", "Int64"),
        "colour": ("string", "category"),
        "size": ("integer", "category"),
        "name": ("string", "str"),
        "code": ("string", "string"),
        "mixed": ("number", "object"),
        "flag": ("boolean", "bool"),
        "maybe": ("boolean", "boolean"),
        "when": ("string", str(FRAME["when"].dtype)),
        "utc": ("string", str(FRAME["utc"].dtype)),
    }
    assert properties["colour"]["enum"] == ["red", "blue"]
    assert properties["size"]["enum"] == [1, 2]
    assert properties["when"]["format"] == "date-time"


def test_a_batch_becomes_one_frame_in_the_training_dtypes() -> None:
    compiled = InputSchema(schema())
    rows = [
        {
            "price": None,
            "small": 2,
            "count": 4.0,  # an integral number is an integer
            "tiny": 255,
            "stock": None,
            "colour": "blue",
            "size": 2,
            "name": None,
            "code": "q",
            "mixed": 7,
            "flag": False,
            "maybe": None,
            "when": "2024-03-01T08:00:00",
            "utc": "2024-03-01T08:00:00+02:00",
        }
    ]
    parts = [compiled.batch(rows, rows=False, frame=True) for _ in range(3)]
    frame = compiled.model_input(compiled.concat(parts), frame=True)
    assert len(frame) == 3
    assert frame.dtypes.to_dict() == FRAME.dtypes.to_dict()
    assert frame["count"].tolist() == [4, 4, 4] and np.isnan(frame["price"]).all()
    assert frame["utc"][0] == pd.Timestamp("2024-03-01T06:00:00Z")
    assert frame["stock"].isna().all() and frame["name"].isna().all()


def test_an_unknown_category_reaches_the_model_as_itself() -> None:
    compiled = InputSchema(schema())
    column = compiled.columns[compiled.names.index("colour")]
    values = column.array(["red", "green", None])
    assert values.tolist()[:2] == ["red", "green"] and pd.isna(values[2])
    assert list(values.categories) == ["red", "blue", "green"]  # known codes unchanged


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("count", 1.5, "field 'count' must be an integer, got a number 1.5"),
        (
            "tiny",
            256,
            "field 'tiny' must be an integer from 0 to 255 (the model takes uint8), got 256",
        ),
        ("when", "soon", "must be an ISO-8601 date-time string (the model takes datetime64"),
        ("when", "2024-01-01T00:00:00+01:00", "must be a date-time without a UTC offset"),
        ("colour", 3, "field 'colour' must be a string (a category), got a number 3"),
        ("size", "big", "field 'size' must be an integer (a category), got a string 'big'"),
        ("flag", None, "field 'flag' cannot be null: the model cannot take a missing value"),
        ("flag", 1, "field 'flag' must be true or false, got a number 1"),
        ("code", 5, "field 'code' must be a string, got a number 5"),
    ],
)
def test_a_value_that_cannot_be_converted_names_field_value_and_type(
    field: str, value: Any, message: str
) -> None:
    properties = schema()["properties"]
    properties["flag"] = {"type": "boolean", "x-dtype": "bool"}  # not nullable
    compiled = InputSchema(
        {"type": "object", "properties": properties, "required": list(properties)}
    )
    record = dict(
        zip(
            compiled.names,
            [
                1.0,
                1.0,
                1,
                1,
                1,
                "red",
                1,
                "a",
                "b",
                1.0,
                True,
                True,
                "2024-01-01",
                "2024-01-01T00:00:00Z",
            ],
            strict=True,
        )
    )
    compiled.batch([record], rows=False, frame=True)  # the record itself is fine
    with pytest.raises(InvalidInput) as caught:
        compiled.batch([{**record, field: value}], rows=False, frame=True)
    assert message in caught.value.message


def test_the_example_is_the_first_complete_row() -> None:
    frame = pd.DataFrame({"a": [np.nan, 2.0, 3.0], "b": ["x", None, "z"]})
    example = example_record(infer_schema(frame), frame)  # type: ignore[arg-type]
    assert example == {"a": 3.0, "b": "z"}
    incomplete = pd.DataFrame({"a": [np.nan, 2.0], "b": ["x", None]})
    assert example_record(infer_schema(incomplete), incomplete) == {"a": None, "b": "x"}  # type: ignore[arg-type]


def test_nullable_where_the_model_takes_a_missing_value() -> None:
    x = np.random.default_rng(0).normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    plain = infer_schema(x, ["a", "b", "c"])
    assert plain is not None
    example = {"a": 0.1, "b": 0.2, "c": 0.3}
    strict = LogisticRegression().fit(x, y)
    assert nullable_fields(FLAVOUR.wrap(strict, frame=False), plain, example) == set()
    imputed = make_pipeline(SimpleImputer(), LogisticRegression()).fit(x, y)
    assert nullable_fields(FLAVOUR.wrap(imputed, frame=False), plain, example) == {"a", "b", "c"}


def test_the_example_keeps_each_column_its_own_type() -> None:
    # A row across columns is one dtype: integers beside a float column became floats
    # (and past 2**53, other integers).
    frame = pd.DataFrame({"id": np.array([2**60 + 1], dtype=np.int64), "x": [0.5]})
    example = example_record(infer_schema(frame), frame)  # type: ignore[arg-type]
    assert example == {"id": 2**60 + 1, "x": 0.5}
    assert type(example["id"]) is int  # type: ignore[index]


def test_rows_given_as_lists_keep_their_values_types() -> None:
    # CatBoost's examples fit on lists of mixed rows; numpy alone makes them all strings.
    rows = [["a", "b", 1, 4.5], ["c", None, 30, 40.0]]
    schema = infer_schema(rows)
    assert schema is not None
    kinds = {name: prop["type"] for name, prop in schema["properties"].items()}
    assert kinds == {"f0": "string", "f1": "string", "f2": "integer", "f3": "number"}
    assert example_record(schema, rows) == {"f0": "a", "f1": "b", "f2": 1, "f3": 4.5}
    compiled = InputSchema(schema)
    matrix = compiled.matrix([{"f0": "z", "f1": "b", "f2": 7, "f3": 1.0}], rows=False)
    assert matrix.dtype == object and matrix[0].tolist() == ["z", "b", 7, 1.0]


def test_pyarrow_backed_columns_keep_their_dtypes() -> None:
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "x": [0.5, None],
            "s": ["a", "b"],
            "when": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True),
        }
    ).convert_dtypes(dtype_backend="pyarrow")
    schema = infer_schema(frame)
    assert schema is not None
    props = schema["properties"]
    assert {name: p["type"] for name, p in props.items()} == {
        "n": "integer",
        "x": "number",
        "s": "string",
        "when": "string",
    }
    assert props["when"]["format"] == "date-time"
    compiled = InputSchema(
        {**schema, "properties": {**props, "n": allow_null(props["n"])}}  # type: ignore[dict-item]
    )
    record = {"n": None, "x": 1.5, "s": "c", "when": "2021-05-01T12:00:00+02:00"}
    built = compiled.model_input(compiled.batch([record], rows=False, frame=True), frame=True)
    assert built.dtypes.to_dict() == frame.dtypes.to_dict() | {"s": built.dtypes["s"]}
    assert str(built["s"].dtype).startswith("str")  # pandas' pyarrow string dtype
    assert built["when"].iloc[0] == pd.Timestamp("2021-05-01T10:00:00Z")
    assert built["n"].isna().iloc[0]
    with pytest.raises(InvalidInput, match=r"field 'n' must be an integer from .* got 9223"):
        compiled.batch([{**record, "n": 2**63}], rows=False, frame=True)


def test_integer_column_names_are_found_by_their_schema_names() -> None:
    # pd.DataFrame(X) names its columns 0, 1, …: the schema says "0", "1", …
    frame = pd.DataFrame(np.array([[np.nan, 1.0], [2.0, 3.0]]))
    schema = infer_schema(frame)
    assert schema is not None and list(schema["properties"]) == ["0", "1"]
    assert example_record(schema, frame) == {"0": 2.0, "1": 3.0}
    assert missing_columns(frame, ["0", "1"]) == {"0"}
