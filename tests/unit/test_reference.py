from pathlib import Path

import pytest

from shipml.errors import ModelReferenceError
from shipml.store import parse_reference


def test_forms() -> None:
    assert parse_reference("iris").alias == "latest"
    assert parse_reference("iris:3").version == 3
    assert parse_reference("iris@production").alias == "production"
    assert str(parse_reference("iris:3")) == "iris:3"


def test_file_reference(tmp_path: Path) -> None:
    model = tmp_path / "My Model.joblib"
    model.write_bytes(b"x")
    ref = parse_reference(str(model))
    assert ref.path == model and ref.name == "my-model"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Iris", "invalid model name"),
        ("iris:0", "invalid version"),
        ("iris:x", "invalid version"),
        ("iris@Prod", "invalid alias"),
        ("missing.joblib", "does not exist"),
    ],
)
def test_bad_references_say_why(text: str, message: str) -> None:
    with pytest.raises(ModelReferenceError, match=message):
        parse_reference(text)
