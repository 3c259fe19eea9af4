"""Model bundles: a directory with manifest.json, every file checked by sha256.

A bundle is what export/ writes and edge/ reads. The manifest lists each file
with its sha256 and size, the metrics of every stage and how it was built, so
a box can tell a corrupt or tampered model from a good one before loading it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.errors import BundleError

_LOGGER = logging.getLogger(__name__)

MANIFEST: Final = "manifest.json"
FORMAT_VERSION: Final = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle directory and its manifest."""

    root: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def path(self, name: str) -> Path:
        """Path of a file the manifest lists; refuses anything it does not."""
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.root}: manifest lists no file {name!r}")
        return self.root / name

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    @classmethod
    def open(cls, root: str | Path, kind: str, verify: bool = True) -> "Bundle":
        """Read and check a bundle.

        Args:
            root: the bundle directory.
            kind: the kind the caller expects ("intent", "asr", ...).
            verify: check every file's sha256 (a few ms for the built-in models).

        Raises:
            BundleError: missing directory or manifest, wrong kind, a listed file
                missing, or a checksum mismatch. The message names the file.
        """
        root = Path(root)
        manifest_path = root / MANIFEST
        if not root.is_dir():
            raise BundleError(f"model bundle not found: {root} (is the path right?)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{root}: no {MANIFEST}; not a model bundle") from None
        except (ValueError, RecursionError, OSError) as exc:  # bad JSON or UTF-8, a 5000-digit number, a directory
            raise BundleError(f"{manifest_path}: unreadable manifest ({str(exc)[:200]}); rebuild or reinstall "
                              "the bundle") from None
        _check_manifest_shape(manifest, manifest_path)
        if manifest["kind"] != kind:
            raise BundleError(f"{root}: bundle kind is {manifest['kind']!r}, expected {kind!r}")
        bundle = cls(root=root, manifest=manifest)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        for name, entry in self.manifest["files"].items():
            path = self.root / name
            if not _inside(self.root, path):
                raise BundleError(f"{self.root}: manifest entry {name!r} points outside the bundle")
            try:
                present = path.is_file()
                actual = sha256_file(path) if present else ""
            except OSError as exc:  # a 300-character name, an unreadable file
                raise BundleError(f"{self.root}: cannot read {name[:80]!r} listed in the manifest "
                                  f"({exc.strerror or exc}); reinstall the bundle") from None
            if not present:
                raise BundleError(f"{self.root}: file {name} listed in the manifest is missing; reinstall the bundle")
            if actual != entry["sha256"]:
                raise BundleError(
                    f"{path}: sha256 mismatch (expected {entry['sha256'][:12]}..., got {actual[:12]}...); "
                    "the file is corrupt or was changed: reinstall or re-export the bundle"
                )
        _LOGGER.debug("bundle %s verified (%d files)", self.root, len(self.manifest["files"]))


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _check_manifest_shape(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: manifest must be a JSON object")
    for key, kind in (("kind", str), ("format_version", int), ("files", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{where}: manifest field {key!r} missing or not a {kind.__name__}")
    if manifest["format_version"] > FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format {manifest['format_version']} is newer than this runtime "
            f"understands ({FORMAT_VERSION}); upgrade edge-salesbot"
        )
    for name, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleError(f"{where}: manifest entry for {name!r} has no sha256")
