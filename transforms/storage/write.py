"""Write: Hugging Face-style sharded Parquet, `data/<config>/<split>-NNNNN-of-NNNNN.parquet`.

Rows arrive as references to the per-song files `ToRows` wrote (`row_files`), so
only small records cross the shuffles and a shard writer holds one shard's rows. Shard
counts come from each (config, split)'s estimated size so no shard grows past
`max_shard_bytes` (never more shards than songs); songs, ordered by a hash of their ids, are
dealt to the shards in turn (a song's rows stay together, no shard is empty), and rows are sorted
by song and id inside a shard, so output does not depend on bundle order. Each shard is written under a hidden
name and renamed into place, so no partial shard is ever visible under `data/`.
"""
from __future__ import annotations

import hashlib
import math
from typing import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from lyricbeam.schemas.arrow import schema_for
from lyricbeam.transforms.storage.row_files import MAX_ROW_GROUP_BYTES, RowRef, write_table

def shard_name(split: str, shard: int, count: int) -> str:
    return f"{split}-{shard:05d}-of-{count:05d}.parquet"


class _KeyByShard(beam.DoFn):
    def process(self, ref: RowRef, plans: dict):
        count, positions = plans[(ref.config, ref.split)]
        # By song, not by row: a song's segments stay together in one shard (and one row group).
        yield (ref.config, ref.split, positions[_song(ref)] % count, count), ref


def _song(ref: RowRef) -> str:
    return ref.song_key or ref.row_id


def shard_count(size: int, songs: int, max_shard_bytes: int) -> int:
    """Shards for a split of `size` bytes and `songs` songs: enough to bound size, never more than songs."""
    return max(1, min(songs, math.ceil(size / max_shard_bytes)))


def shard_plan(element, max_shard_bytes: int):
    """`((config, split), (shard count, {song: position}))`: songs in the order of their ids' hashes,
    dealt to shards in turn, so every shard gets songs (none is left empty) and the order does
    not depend on the input's."""
    key, grouped = element
    sizes, songs = grouped["bytes"], grouped["songs"]
    ordered = sorted(set(songs), key=lambda s: (hashlib.sha1(s.encode()).digest(), s))
    count = shard_count(sum(sizes), len(ordered), max_shard_bytes)
    yield key, (count, {song: i for i, song in enumerate(ordered)})


def _all_shards(element):
    (config, split), (count, _) = element
    for shard in range(count):
        yield (config, split, shard, count), None


def gather_rows(config: str, refs: list[RowRef], sample_rate: int) -> pa.Table:
    """The rows `refs` point to, as one table sorted by song, then row id (each file read once)."""
    refs = sorted(refs, key=lambda r: (r.song_key, r.row_id))
    tables = {}
    for path in sorted({r.path for r in refs}):
        with FileSystems.open(path) as handle:
            tables[path] = pq.read_table(handle)
    schema = schema_for(config, sample_rate)
    if not refs:
        return schema.empty_table()
    return pa.concat_tables([tables[r.path].slice(r.index, 1) for r in refs]).combine_chunks()


class _WriteShard(beam.DoFn):
    def __init__(self, output_dir: str, sample_rate: int, max_row_group_bytes: int = MAX_ROW_GROUP_BYTES):
        self.output_dir = output_dir.rstrip("/")
        self.sample_rate = sample_rate
        self.max_row_group_bytes = max_row_group_bytes
        self._rows = Metrics.counter("write", "out")

    def process(self, element) -> Iterable[dict]:
        (config, split, shard, count), refs = element
        table = gather_rows(config, [r for r in refs if r is not None], self.sample_rate)
        path = f"{self.output_dir}/data/{config}/{shard_name(split, shard, count)}"
        size = write_table(table, path, self.max_row_group_bytes)
        self._rows.inc(table.num_rows)
        yield {"config": config, "split": split, "shard": shard, "num_shards": count,
               "num_rows": table.num_rows, "num_bytes": size, "path": path}


class WriteShardedParquet(beam.PTransform):
    """`RowRef`s -> Parquet shards; outputs one record per shard written."""

    def __init__(self, output_dir: str, sample_rate: int, max_shard_bytes: int = 256 * 1024**2,
                 max_row_group_bytes: int = MAX_ROW_GROUP_BYTES):
        super().__init__()
        self.output_dir = output_dir
        self.sample_rate = sample_rate
        self.max_shard_bytes = max_shard_bytes
        self.max_row_group_bytes = max_row_group_bytes

    def expand(self, refs):
        sizes = (refs
                 | "EstimateBytes" >> beam.Map(lambda r: ((r.config, r.split), r.est_bytes))
                 | "BytesPerSplit" >> beam.CombinePerKey(sum))
        songs = (refs
                 | "SongOfRow" >> beam.Map(lambda r: ((r.config, r.split), _song(r)))
                 | "Songs" >> beam.Distinct())
        plans = ({"bytes": sizes, "songs": songs}
                 | "PerSplit" >> beam.CoGroupByKey()
                 | "ShardPlan" >> beam.FlatMap(shard_plan, self.max_shard_bytes))
        keyed = refs | "KeyByShard" >> beam.ParDo(_KeyByShard(), beam.pvalue.AsDict(plans))
        every_shard = plans | "EveryShard" >> beam.FlatMap(_all_shards)
        return ((keyed, every_shard)
                | "WithEmptyShards" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteShard(self.output_dir, self.sample_rate, self.max_row_group_bytes)))
