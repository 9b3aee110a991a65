"""Writing an export: file names that every consumer accepts, whole files or none, and resuming.

Every file is written under a hidden temporary name and renamed into place, so a file that
exists is complete: an interrupted export run again skips what it finished and writes the rest.
The same shards and options give the same bytes (no times, no ordering by worker). The
destination's `export.json` records what it was made from; another export into it is refused.
"""
from __future__ import annotations

import hashlib
import json
import re

import fsspec

MANIFEST = "export.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def file_stem(song_id: str) -> str:
    """A file name stem for `song_id` with letters, digits, `_` and `-` only — no dots (WebDataset
    splits a member's key at its first dot) and no folders — and a short hash of the id when
    anything was replaced, so two ids never share a stem."""
    stem = _UNSAFE.sub("_", song_id).strip("_") or "song"
    if stem == song_id:
        return stem
    return f"{stem[:80]}-{hashlib.sha1(song_id.encode()).hexdigest()[:8]}"


class Destination:
    """An export folder (any fsspec URL)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def write(self, relative: str, data: bytes) -> None:
        """`data` to `relative`, whole or not at all."""
        final = self.path(relative)
        parent, name = final.rsplit("/", 1)
        temp = f"{parent}/.{name}.partial"
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(temp, "wb") as handle:
            handle.write(data)
        self.fs.mv(temp, final)

    def write_once(self, relative: str, data_fn) -> bool:
        """Write `data_fn()` to `relative` unless a finished file is there already; whether it wrote."""
        if self.exists(relative):
            return False
        self.write(relative, data_fn())
        return True

    def claim(self, manifest: dict) -> None:
        """Record what this export is made of, or refuse a destination holding another export."""
        if self.exists(MANIFEST):
            with self.fs.open(self.path(MANIFEST), "rb") as handle:
                found = json.loads(handle.read().decode())
            if found != manifest:
                raise ValueError(f"{self.url} holds another export ({found.get('format')} of {found.get('source')}, "
                                 f"other shards or options): give an empty destination")
            return
        self.write(MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


def source_fingerprint(paths: list[str]) -> list[list]:
    """(name, size) of each shard an export reads: a different dataset gives a different export."""
    out = []
    for path in paths:
        fs, inner = fsspec.core.url_to_fs(path)
        out.append([inner.rsplit("/", 1)[-1], int(fs.size(inner))])
    return out
