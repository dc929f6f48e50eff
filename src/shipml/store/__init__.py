"""The model store: where trained models live, versioned and verified (DESIGN §5)."""

from shipml.store.cache import LocalModel, open_folder, verify_folder
from shipml.store.manifest import FileEntry, Manifest, library_versions, sha256_digest
from shipml.store.reference import Reference, parse_reference
from shipml.store.store import Store, default_store_url

__all__ = [
    "FileEntry",
    "LocalModel",
    "Manifest",
    "Reference",
    "Store",
    "default_store_url",
    "library_versions",
    "open_folder",
    "parse_reference",
    "sha256_digest",
    "verify_folder",
]
