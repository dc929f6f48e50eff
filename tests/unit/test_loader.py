"""Library versions are checked before a pickle is opened."""

from __future__ import annotations

import logging

import pytest

from shipml.scoring import check_libraries
from shipml.scoring.versions import LibraryMismatch
from shipml.store import Manifest, library_versions


def manifest(**libraries: str) -> Manifest:
    return Manifest(
        name="m",
        version=1,
        created="",
        contract="sklearn",
        files={},
        framework={"name": "scikit-learn"},
        libraries={**library_versions(), **libraries},
    )


def test_same_versions_are_quiet() -> None:
    assert check_libraries(manifest()) == []


def test_minor_difference_warns_naming_both(caplog: pytest.LogCaptureFixture) -> None:
    installed = library_versions()["scikit-learn"]
    major = installed.split(".")[0]
    with caplog.at_level(logging.WARNING, logger="shipml"):
        problems = check_libraries(manifest(**{"scikit-learn": f"{major}.0.0"}))
    assert problems and f"scikit-learn=={major}.0.0" in problems[0]
    assert f"scikit-learn=={installed}" in problems[0]
    assert "scikit-learn" in caplog.text


def test_major_difference_of_the_framework_refuses() -> None:
    with pytest.raises(LibraryMismatch, match=r"scikit-learn==0\.24\.2 .* major version"):
        check_libraries(manifest(**{"scikit-learn": "0.24.2"}))


def test_major_difference_of_numpy_refuses() -> None:
    with pytest.raises(LibraryMismatch, match=r"numpy==1\.26\.4"):
        check_libraries(manifest(numpy="1.26.4"))


def test_missing_framework_says_how_to_install() -> None:
    m = manifest(**{"fancylib": "1.0"})
    m.framework = {"name": "fancylib"}
    with pytest.raises(LibraryMismatch, match="pip install fancylib==1.0"):
        check_libraries(m)
