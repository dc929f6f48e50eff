"""The code that travels with a scoring script (shipml.code_files): as Azure ML uploads a
code folder, a score.py's helper modules and files beside it are stored with it."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest
from sklearn.linear_model import LinearRegression

from shipml.code_files import code_files
from shipml.errors import TrainingError
from shipml.project import load_project
from shipml.serving.app import create_app
from shipml.serving.settings import ServeSettings
from shipml.store import Store, parse_reference
from shipml.train import train_project

SCORE = """
import json, os
import joblib
from preprocessing import scale          # a module beside the script
from helpers.names import LABEL          # a package beside the script, importing its sibling

def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/m.pkl"))

def run(raw):
    rows = scale(json.loads(raw)["data"])
    return {LABEL: model.predict(rows).tolist()}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture(autouse=True)
def process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Loading a script changes the working directory, sys.path, modules and environment."""
    monkeypatch.chdir(tmp_path)
    saved_path, saved_env, saved_modules = list(sys.path), dict(os.environ), set(sys.modules)
    yield
    sys.path[:] = saved_path
    os.environ.clear()
    os.environ.update(saved_env)
    for name in set(sys.modules) - saved_modules:
        if name.split(".")[0] in ("preprocessing", "helpers", "entry_module"):
            del sys.modules[name]


def test_a_top_level_script_takes_the_modules_it_imports(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "score.py": SCORE,
            "preprocessing.py": "from units import FACTOR\ndef scale(rows): return rows\n",
            "units.py": "FACTOR = 2\n",
            "helpers/__init__.py": "",
            "helpers/names.py": "from .more import LABEL\n",
            "helpers/more.py": "LABEL = 'result'\n",
            "train.py": "print('not imported by score.py')\n",
            "data/big.csv": "1,2\n",
        },
    )
    found = code_files(tmp_path / "score.py", tmp_path)
    assert sorted(found) == [
        "helpers/__init__.py",
        "helpers/more.py",
        "helpers/names.py",
        "preprocessing.py",
        "score.py",
        "units.py",
    ]


def test_a_script_in_its_own_folder_takes_the_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "onlinescoring/score.py": SCORE,
            "onlinescoring/labels.json": "[]",
            "onlinescoring/sub/x.py": "",
            "onlinescoring/.secret": "no",
            "onlinescoring/__pycache__/score.cpython-311.pyc": "",
            "onlinescoring/.venv/pyvenv.cfg": "",
            "onlinescoring/env2/pyvenv.cfg": "home = /usr",
            "train.py": "",
        },
    )
    found = code_files(tmp_path / "onlinescoring" / "score.py", tmp_path)
    assert sorted(found) == ["labels.json", "score.py", "sub/x.py"]


def project(tmp_path: Path, layout: dict[str, str], scoring: str = "score.py") -> Path:
    root = tmp_path / "project"
    write(root, layout)
    (root / "model").mkdir(exist_ok=True)
    joblib.dump(
        LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0]), root / "model/m.pkl"
    )
    (root / "shipml.yaml").write_text(f"name: coded\nscoring: {scoring}\nmodel: [model/]\n")
    return root


def test_helpers_are_stored_and_imported_when_served(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "score.py": SCORE,
            "preprocessing.py": "def scale(rows):\n    return [[v * 2 for v in r] for r in rows]\n",
            "helpers/__init__.py": "",
            "helpers/names.py": "LABEL = 'doubled'\n",
        },
    )
    manifest, _ = train_project(load_project(root), Store())
    assert {"score.py", "preprocessing.py", "helpers/names.py", "model/m.pkl"} <= set(
        manifest.files
    )
    # The project's copies are gone: the version's own files are what is imported.
    for helper in ("preprocessing.py", "helpers/names.py"):
        (root / helper).unlink()
    app = create_app(
        ServeSettings(model=manifest.ref), lambda: Store().fetch(parse_reference(manifest.ref))
    )
    app.service.load_now()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/score", content=b'{"data": [[1.5]]}')

    answer = asyncio.run(go())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"doubled": [pytest.approx(6.0)]}


def test_a_code_file_that_would_take_a_model_files_place_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {"scoring/score.py": SCORE.replace("from preprocessing", "#"), "scoring/model/m.pkl": "x"},
        scoring="scoring/score.py",
    )
    with pytest.raises(TrainingError, match="would land at the same path"):
        train_project(load_project(root), Store())


def test_a_code_file_named_like_shipmls_own_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {"scoring/score.py": "def init(): pass\ndef run(d): return d\n", "scoring/env/x.txt": ""},
        scoring="scoring/score.py",
    )
    with pytest.raises(TrainingError, match="shipml's own"):
        train_project(load_project(root), Store())


NAMED = """
import json, os
import joblib

HERE = os.path.dirname(os.path.abspath(__file__))

def init():
    global model, labels, scale
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/m.pkl"))
    with open(os.path.join(HERE, "labels.json")) as f:    # beside the script
        labels = json.load(f)
    with open("./config/scale.txt") as f:                  # the working directory
        scale = float(f.read())

def run(raw):
    rows = [[v * scale for v in r] for r in json.loads(raw)["data"]]
    return {labels["name"]: model.predict(rows).tolist()}
"""


def test_a_top_level_script_takes_the_files_it_names(tmp_path: Path) -> None:
    """Azure ML uploads the whole code folder, so a script may open files beside it; a
    script at the top of a project brings the ones its code names, not the rest."""
    root = project(
        tmp_path,
        {
            "score.py": NAMED,
            "labels.json": '{"name": "scaled"}',
            "config/scale.txt": "3",
            "notes.md": "not named",
        },
    )
    assert sorted(code_files(root / "score.py", root)) == [
        "config/scale.txt",
        "labels.json",
        "model/m.pkl",
        "score.py",
    ]
    manifest, _ = train_project(load_project(root), Store())
    assert "notes.md" not in manifest.files
    assert manifest.scoring["model_files"] == ["model/m.pkl"]  # named, yet still the model's
    app = create_app(
        ServeSettings(model=manifest.ref), lambda: Store().fetch(parse_reference(manifest.ref))
    )
    app.service.load_now()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/score", content=b'{"data": [[1.0]]}')

    answer = asyncio.run(go())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"scaled": [pytest.approx(6.0)]}
