"""Publisher signatures: opt-in, checked at fetch before anything is written or loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from shipml.errors import StoreError, UntrustedModel
from shipml.store import Manifest, Store, parse_reference
from tests.store_support import key_pair, write_version


def publish(store: Store, tmp_path: Path, content: bytes = b"weights") -> Manifest:
    source = tmp_path / f"model-{content.hex()[:8]}"
    source.write_bytes(content)
    manifest = Manifest(
        name="m", version=0, created="", contract="sklearn", files={}, model_file="model.joblib"
    )
    return store.publish(manifest, {"model.joblib": source})[0]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: key_pair(folder, name) for name in ("team-a", "team-b")}


def test_off_by_default(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path)
    assert store.fetch(parse_reference("m:1"), tmp_path / "cache").manifest.version == 1


def test_a_signed_version_is_served_and_an_unsigned_one_refused(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path, b"before signing was on")
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-a"][0]))
    publish(store, tmp_path, b"signed")
    monkeypatch.delenv("SHIPML_SIGNING_KEY")
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(keys["team-a"][1]))
    assert store.fetch(parse_reference("m:2"), tmp_path / "cache").manifest.version == 2
    with pytest.raises(UntrustedModel, match=r"refusing m:1 .*no trusted key signed it"):
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "m").iterdir())) == 1  # m:2's folder, no m:1
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-a"][0]))
    store.sign("m", 1)  # a reviewer signs the old version
    assert store.fetch(parse_reference("m:1"), tmp_path / "cache").manifest.version == 1
    assert store.signatures("m", 1) == store.signatures("m", 2) != []


def test_another_teams_key_a_folder_of_keys_and_forged_signatures(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path / "s"))
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-b"][0]))
    publish(store, tmp_path)
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(keys["team-a"][1]))
    with pytest.raises(UntrustedModel, match="no trusted key signed it"):
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(tmp_path / "keys"))  # both teams' .pub
    assert store.fetch(parse_reference("m:1"), tmp_path / "cache").manifest.version == 1
    # Team A's key id on team B's signature: the file name does not make a signature.
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(keys["team-a"][1]))
    (b_id,) = store.signatures("m", 1)
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-a"][0]))
    from shipml.store.trust import signer_from_environment

    a_id = signer_from_environment().key_id  # type: ignore[union-attr]
    record = store.backend.read(f"models/m/versions/1/signatures/{b_id}")
    store.backend.write(f"models/m/versions/1/signatures/{a_id}", record)
    with pytest.raises(UntrustedModel, match=f"signatures by {a_id} do not verify"):
        store.fetch(parse_reference("m:1"), tmp_path / "other-cache")


def test_a_changed_manifest_or_blob_breaks_the_signature(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path / "s"))
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-a"][0]))
    publish(store, tmp_path, b"honest")
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(keys["team-a"][1]))
    # Someone who can write the store points the version at their own file.
    signatures = {
        key: store.backend.read(f"models/m/versions/1/signatures/{key}")
        for key in store.signatures("m", 1)
    }
    write_version(store, "m", 1, {"model.joblib": b"evil"})
    with pytest.raises(UntrustedModel, match="do not verify"):
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    # Or copies a signed version and its signature to a new number.
    publish(store, tmp_path, b"honest")  # signed as m:2
    raw = store.backend.read("models/m/versions/2/manifest.json")
    store.backend.write("models/m/versions/3/manifest.json", raw)
    for key, record in signatures.items():
        store.backend.write(f"models/m/versions/3/signatures/{key}", record)
    with pytest.raises(Exception, match="stored as m:3 describes m:2"):
        store.fetch(parse_reference("m:3"), tmp_path / "cache")


def test_bad_settings_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path / "s"))
    (tmp_path / "not-a-key.pub").write_text("hello")
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(tmp_path / "missing.pem"))
    with pytest.raises(StoreError, match="SHIPML_SIGNING_KEY: cannot read"):
        publish(store, tmp_path)
    assert store.versions("m") == []  # refused before anything was uploaded
    assert not (tmp_path / "s" / "blobs").exists()
    monkeypatch.delenv("SHIPML_SIGNING_KEY")
    publish(store, tmp_path)
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(tmp_path / "not-a-key.pub"))
    with pytest.raises(StoreError, match="is not a PEM public key"):
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    rsa = tmp_path / "rsa.pem"
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    rsa.write_bytes(
        rsa_keys.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(rsa))
    with pytest.raises(StoreError, match="not an Ed25519 key; make a key pair with: openssl"):
        store.sign("m", 1)


def test_removing_a_version_removes_its_signatures(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path / "s"))
    monkeypatch.setenv("SHIPML_SIGNING_KEY", str(keys["team-a"][0]))
    publish(store, tmp_path)
    store.remove("m", 1)
    assert store.signatures("m", 1) == []
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []
