"""The work directory beside a run's output, `OUT/.work/`: its paths, its cache keys, its atomic writes.

Three stores live there, each entry named by a key of what decides its content:

- `audio/`: a song's decoded samples — its source file, the file's size, the audio settings;
- `align/`: a song's alignment — its decoded PCM, language, lyrics and their times, the align settings;
- `rows/`: a song's rows — its id, PCM, split, version group, the schema version and the settings
  that shape rows.

Settings that change how fast a result comes, not what it is (`SPEED_ONLY`), are left out of the
keys: a re-run with another thread count finds its work. Every file is written under a hidden
temporary name and renamed into place, so an entry that exists is complete, whatever killed the
run that wrote it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import uuid
from typing import Any, Iterator

from apache_beam.io.filesystems import FileSystems

WORK_DIR = ".work"
STORES = ("audio", "align", "rows")
# Fields of any settings section that change speed, never results (tests/test_determinism.py).
SPEED_ONLY = frozenset({"threads", "torch_threads"})


def store_dir(output_dir: str, store: str) -> str:
    """Directory of one of the work stores (`STORES`) of the run writing to `output_dir`."""
    if store not in STORES:
        raise ValueError(f"unknown work store {store!r}; known: {STORES}")
    return f"{output_dir.rstrip('/')}/{WORK_DIR}/{store}"


def result_settings(config: Any) -> dict:
    """A settings dataclass as a dict without its `SPEED_ONLY` fields, nested sections included."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in SPEED_ONLY}
        return value

    return strip(dataclasses.asdict(config))


def cache_key(*parts: Any) -> str:
    """Hex digest naming a work entry: the same parts (JSON-able, or shown by `str`) give the same key."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def entry_path(directory: str, key: str, suffix: str) -> str:
    """`directory/<first two hex digits>/<key><suffix>`: no folder holds more than 1/256 of the entries."""
    return f"{directory.rstrip('/')}/{key[:2]}/{key}{suffix}"


def hidden_temp_path(path: str) -> str:
    """A unique hidden name beside `path`, for writing it before the rename that publishes it."""
    directory, name = path.rsplit("/", 1) if "/" in path else (".", path)
    return f"{directory}/.{name}.{uuid.uuid4().hex[:8]}.tmp"


def ensure_parent(path: str) -> None:
    """Create `path`'s local parent directory (remote filesystems have no directories to make)."""
    if "://" not in path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)


def publish(temp: str, path: str) -> None:
    """Rename a finished temporary file onto `path`, replacing what was there."""
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])


@contextlib.contextmanager
def atomic_create(path: str) -> Iterator[Any]:
    """A writable handle whose bytes appear at `path` only when the block ends without an error."""
    ensure_parent(path)
    temp = hidden_temp_path(path)
    handle = FileSystems.create(temp, compression_type="uncompressed")
    try:
        yield handle
    except BaseException:
        handle.close()
        FileSystems.delete([temp])
        raise
    handle.close()
    publish(temp, path)


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see all of it or nothing."""
    with atomic_create(path) as handle:
        handle.write(data)


def read_bytes(path: str) -> bytes | None:
    """The bytes at `path`, or None when no complete entry is there."""
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()
