"""Row cache: what a song became is kept under `OUT/.work/rows/`, so a re-run after a crash
does not recompute it.

A song's rows are cached by `ToRows` (atomically: hidden temp name, then rename) under a key
of its id, decoded-PCM hash, schema version and every setting that shapes its rows. On the
next run `UseCachedRows`, placed after the cross-song decisions (dedup, versions, split,
which stay global and so identical), sends cached songs straight to the writer and skips
features, embeddings and row building for them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from schemas.arrow import SCHEMA_VERSION
from schemas.records import Song

CONFIGS = ("songs", "segments")


def settings_digest(*configs) -> str:
    """Digest of the settings that shape a song's rows."""
    blob = json.dumps([dataclasses.asdict(c) for c in configs], sort_keys=True, default=str)
    return hashlib.sha1(f"{SCHEMA_VERSION}:{blob}".encode()).hexdigest()[:16]


def cache_key(song: Song, digest: str) -> str:
    raw = f"{song.source}:{song.song_id}:{song.pcm_sha256}:{song.split}:{song.version_group}:{digest}"
    return hashlib.sha1(raw.encode()).hexdigest()


def cache_paths(cache_dir: str, key: str) -> dict[str, str]:
    return {config: f"{cache_dir}/{key[:2]}/{key}.{config}.parquet" for config in CONFIGS}


def write_cached_rows(cache_dir: str, key: str, rows: list[tuple[str, dict]], sample_rate: int) -> None:
    from transforms.write import rows_to_table, write_table

    paths = cache_paths(cache_dir, key)
    # segments first, songs last: a songs file means the entry is complete.
    for config in ("segments", "songs"):
        table = rows_to_table(config, [r for c, r in rows if c == config], sample_rate)
        write_table(table, paths[config])


def read_cached_rows(cache_dir: str, key: str) -> list[tuple[str, dict]] | None:
    paths = cache_paths(cache_dir, key)
    if not FileSystems.exists(paths["songs"]):
        return None
    rows = []
    for config in CONFIGS:
        with FileSystems.open(paths[config]) as handle:
            rows += [(config, row) for row in pq.read_table(handle).to_pylist()]
    return rows


class UseCachedRows(beam.DoFn):
    """Song -> itself (main), or its cached rows on the `cached` output."""

    def __init__(self, cache_dir: str, digest: str):
        self.cache_dir, self.digest = cache_dir, digest
        self._hits = Metrics.counter("cache", "hits")
        self._misses = Metrics.counter("cache", "misses")

    def process(self, song: Song):
        rows = read_cached_rows(self.cache_dir, cache_key(song, self.digest)) if self.cache_dir else None
        if rows is None:
            self._misses.inc()
            yield song
            return
        self._hits.inc()
        for pair in rows:
            yield beam.pvalue.TaggedOutput("cached", pair)
