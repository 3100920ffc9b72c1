"""The releases root on disk: temporary directories, fsync, atomic rename, removal.

A release becomes visible in one `rename()` of a fully written, fsynced directory inside
the same filesystem, so a reader (or a crash) sees either nothing or the whole release.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from pathlib import Path

PARTIAL_PREFIX = ".partial-"
TRASH_PREFIX = ".trash-"
HASH_CHUNK_BYTES = 1 << 20


def make_partial_directory(root: Path, release_name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    # Inside the root, so the final rename never crosses a filesystem.
    partial = root / f"{PARTIAL_PREFIX}{release_name}-{secrets.token_hex(4)}"
    partial.mkdir()
    return partial


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_directory(partial: Path, final: Path) -> None:
    """fsync every file and the directory, then rename it into place and fsync the root."""
    for child in partial.iterdir():
        fsync_path(child)
    fsync_path(partial)
    if final.exists():
        raise FileExistsError(f"release directory {final} already exists")
    partial.rename(final)
    fsync_path(final.parent)


def remove_directory(path: Path) -> None:
    """Hide it with one rename first, so it vanishes at once rather than file by file."""
    if not path.exists():
        return
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{secrets.token_hex(4)}"
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_leftovers(root: Path) -> list[str]:
    """Partial and trash directories of exports that died. Only called while holding the
    export lock, so none of them belongs to a live export."""
    if not root.exists():
        return []
    removed = []
    for child in root.iterdir():
        if child.name.startswith((PARTIAL_PREFIX, TRASH_PREFIX)):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    return removed
