"""Content-addressed blob storage for photos: a small interface, a local-directory implementation.

Blobs are named by their SHA-256, so writing the same bytes twice is harmless and a blob left
behind by a rolled-back request is only an unreferenced file. An S3-compatible store implements
the same three methods (key = the digest).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from gridgov.config import get_settings


class BlobStore(Protocol):
    def put(self, digest: str, data: bytes) -> None: ...

    def get(self, digest: str) -> bytes: ...

    def exists(self, digest: str) -> bool: ...


class LocalBlobStore:
    """``root/ab/cd/<digest>``: two directory levels keep directories small."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()


def get_blob_store() -> BlobStore:
    return LocalBlobStore(Path(get_settings().data_dir) / "attachments")
