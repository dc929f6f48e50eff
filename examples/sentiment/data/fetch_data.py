"""Rebuild sentiment.tsv.gz from the two packages that carry the data, checking both.

    python fetch_data.py          # needs npm and pip; writes sentiment.tsv.gz here

Sources (see README.md in this folder for licences and citations):
- UCI "Sentiment Labelled Sentences" (Kotzias et al., KDD 2015), 3,000 sentences, inside
  the npm package sentiment@5.0.2 (test/fixtures/{amazon,imdb,yelp}.json);
- VADER ground truth (Hutto & Gilbert, ICWSM 2014), inside the source distribution of
  vaderSentiment==3.3.2 (additional_resources/hutto_ICWSM_2014.tar.gz): mean human
  ratings from -4 to +4; rows with |rating| <= 0.5 are dropped as not polar enough.

The output is deterministic: same packages, same bytes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "sentiment.tsv.gz"
NPM_TARBALL = (
    "sentiment-5.0.2.tgz",
    "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
)
SDIST = (
    "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
)
UCI_FILES = ("amazon", "imdb", "yelp")
VADER_FILES = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")
POLAR = 0.5


def fetch(folder: Path) -> tuple[Path, Path]:
    subprocess.run(
        ["npm", "pack", "sentiment@5.0.2", "--silent"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            "-d",
            str(folder),
            "vaderSentiment==3.3.2",
        ],
        check=True,
    )
    paths = []
    for name, expected in (NPM_TARBALL, SDIST):
        path = folder / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            raise SystemExit(f"{name}: sha256 {actual} is not the expected {expected}")
        paths.append(path)
    return paths[0], paths[1]


def clean(text: str) -> str:
    return " ".join(text.split())


def uci_rows(tarball: Path) -> list[tuple[str, int, str]]:
    rows = []
    with tarfile.open(tarball) as archive:
        for name in UCI_FILES:
            member = archive.extractfile(f"package/test/fixtures/{name}.json")
            assert member is not None
            for record in json.load(member):
                if record.get("text"):  # each file ends with one empty record
                    rows.append((clean(record["text"]), int(record["class"]), f"uci-{name}"))
    return rows


def vader_rows(sdist: Path) -> list[tuple[str, int, str]]:
    rows = []
    with tarfile.open(sdist) as outer:
        inner_file = outer.extractfile(
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
        )
        assert inner_file is not None
        with tarfile.open(fileobj=io.BytesIO(inner_file.read())) as inner:
            members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
            for name in VADER_FILES:
                handle = inner.extractfile(members[f"{name}_GroundTruth.txt"])
                assert handle is not None
                for line in handle.read().decode("utf-8", errors="replace").splitlines():
                    parts = line.split("\t", 2)
                    if len(parts) != 3:
                        continue
                    rating = float(parts[1])
                    if abs(rating) > POLAR:
                        rows.append((clean(parts[2]), int(rating > 0), f"vader-{name}"))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tarball, sdist = fetch(Path(scratch))
        rows = uci_rows(tarball) + vader_rows(sdist)
    seen: set[str] = set()
    unique = []
    for text, label, source in rows:
        if text and text not in seen:
            seen.add(text)
            unique.append((text, label, source))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(("text", "label", "source"))
    writer.writerows(unique)
    with (
        OUTPUT.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed,
    ):
        packed.write(buffer.getvalue().encode("utf-8"))
    positives = sum(label for _, label, _ in unique)
    print(
        f"wrote {OUTPUT.name}: {len(unique)} rows ({positives} positive, "
        f"{len(unique) - positives} negative; {len(rows) - len(unique)} duplicates dropped)"
    )


if __name__ == "__main__":
    main()
