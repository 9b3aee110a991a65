"""Per-song row files: what a song became is written under `OUT/.work/rows/`.

`ToRows` writes each song's rows to its own Parquet files (atomically: hidden temp name,
then rename) under a key of its id, decoded-PCM hash, schema version and every setting
that shapes its rows, and passes on only `RowRef`s; the writer gathers each shard's rows
from those files. So rows (an hour-long song's row is hundreds of MB) never cross a
shuffle, and a re-run after a crash finds the files: `UseCachedRows`, placed after the
cross-song decisions (dedup, versions, split, which stay global and so identical), sends
a finished song's references straight to the writer and skips features, embeddings and
row building for it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from lyricbeam.schemas.arrow import SCHEMA_VERSION
from lyricbeam.schemas.records import Song

CONFIGS = ("songs", "segments")


def settings_digest(*configs) -> str:
    """Digest of the settings that shape a song's rows."""
    blob = json.dumps([dataclasses.asdict(c) for c in configs], sort_keys=True, default=str)
    return hashlib.sha1(f"{SCHEMA_VERSION}:{blob}".encode()).hexdigest()[:16]


def cache_key(song: Song, digest: str) -> str:
    raw = f"{song.source}:{song.song_id}:{song.pcm_sha256}:{song.split}:{song.version_group}:{digest}"
    return hashlib.sha1(raw.encode()).hexdigest()


class RowRef(NamedTuple):
    """Where one written row lives until the writer puts it into its shard: only this crosses the shuffle."""

    config: str
    split: str
    row_id: str
    est_bytes: int
    path: str
    index: int


def cache_paths(cache_dir: str, key: str) -> dict[str, str]:
    paths = {config: f"{cache_dir}/{key[:2]}/{key}.{config}.parquet" for config in CONFIGS}
    paths["refs"] = f"{cache_dir}/{key[:2]}/{key}.refs.json"
    return paths


def write_cached_rows(cache_dir: str, key: str, rows: list[tuple[str, dict]], sample_rate: int) -> list[RowRef]:
    """Write a song's rows to its per-song Parquet files; return their references."""
    from lyricbeam.transforms.storage.write import estimate_row_bytes, row_id, rows_to_table, write_table

    paths = cache_paths(cache_dir, key)
    refs = []
    for config in CONFIGS:
        chosen = [r for c, r in rows if c == config]
        write_table(rows_to_table(config, chosen, sample_rate), paths[config])
        refs += [RowRef(config, r["split"], row_id(config, r), estimate_row_bytes(r), paths[config], i)
                 for i, r in enumerate(chosen)]
    # Written last: a refs file means the entry is complete.
    temp = paths["refs"] + ".tmp"
    with FileSystems.create(temp) as handle:
        handle.write(json.dumps([list(r) for r in refs]).encode())
    FileSystems.rename([temp], [paths["refs"]])
    return refs


def read_cached_refs(cache_dir: str, key: str) -> list[RowRef] | None:
    """The row references of a completed cache entry, or None."""
    path = cache_paths(cache_dir, key)["refs"]
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return [RowRef(*r) for r in json.loads(handle.read().decode())]


class UseCachedRows(beam.DoFn):
    """Song -> itself (main), or its cached row references on the `cached` output."""

    def __init__(self, cache_dir: str, digest: str):
        self.cache_dir, self.digest = cache_dir, digest
        self._hits = Metrics.counter("cache", "hits")
        self._misses = Metrics.counter("cache", "misses")

    def process(self, song: Song):
        refs = read_cached_refs(self.cache_dir, cache_key(song, self.digest)) if self.cache_dir else None
        if refs is None:
            self._misses.inc()
            yield song
            return
        self._hits.inc()
        for ref in refs:
            yield beam.pvalue.TaggedOutput("cached", ref)
