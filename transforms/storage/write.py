"""Write: Hugging Face-style sharded Parquet, `data/<config>/<split>-NNNNN-of-NNNNN.parquet`.

Rows arrive as references to the per-song files `ToRows` wrote (`row_files`), so
only small records cross the shuffles and a shard writer holds one shard's rows. Shard
counts come from each (config, split)'s estimated size so no shard grows past
`max_shard_bytes`; a row's shard is a hash of its song's id (a song's rows stay together),
and rows are sorted by song and id inside a shard, so output does not depend on bundle order. Each shard is written under a hidden
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
from lyricbeam.transforms.storage.row_files import RowRef, write_table

def shard_name(split: str, shard: int, count: int) -> str:
    return f"{split}-{shard:05d}-of-{count:05d}.parquet"


class _KeyByShard(beam.DoFn):
    def __init__(self, max_shard_bytes: int):
        self.max_shard_bytes = max_shard_bytes

    def process(self, ref: RowRef, totals: dict):
        count = shard_count(totals[(ref.config, ref.split)], self.max_shard_bytes)
        # By song, not by row: a song's segments stay together in one shard (and one row group).
        key = ref.song_key or ref.row_id
        shard = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % count
        yield (ref.config, ref.split, shard, count), ref


def shard_count(total: tuple[int, int], max_shard_bytes: int) -> int:
    """Shards for a split of `(bytes, rows)`: enough to bound size, never more than rows."""
    size, rows = total
    return max(1, min(rows, math.ceil(size / max_shard_bytes)))


def _sum_pairs(pairs) -> tuple[int, int]:
    size, rows = 0, 0
    for a, b in pairs:
        size, rows = size + a, rows + b
    return size, rows


def _all_shards(element, max_shard_bytes: int):
    (config, split), total = element
    count = shard_count(total, max_shard_bytes)
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
    def __init__(self, output_dir: str, sample_rate: int):
        self.output_dir = output_dir.rstrip("/")
        self.sample_rate = sample_rate
        self._rows = Metrics.counter("write", "out")

    def process(self, element) -> Iterable[dict]:
        (config, split, shard, count), refs = element
        table = gather_rows(config, [r for r in refs if r is not None], self.sample_rate)
        path = f"{self.output_dir}/data/{config}/{shard_name(split, shard, count)}"
        size = write_table(table, path)
        self._rows.inc(table.num_rows)
        yield {"config": config, "split": split, "shard": shard, "num_shards": count,
               "num_rows": table.num_rows, "num_bytes": size, "path": path}


class WriteShardedParquet(beam.PTransform):
    """`RowRef`s -> Parquet shards; outputs one record per shard written."""

    def __init__(self, output_dir: str, sample_rate: int, max_shard_bytes: int = 256 * 1024**2):
        super().__init__()
        self.output_dir = output_dir
        self.sample_rate = sample_rate
        self.max_shard_bytes = max_shard_bytes

    def expand(self, refs):
        totals = (refs
                  | "EstimateBytes" >> beam.Map(lambda r: ((r.config, r.split), (r.est_bytes, 1)))
                  | "BytesPerSplit" >> beam.CombinePerKey(_sum_pairs))
        keyed = refs | "KeyByShard" >> beam.ParDo(_KeyByShard(self.max_shard_bytes), beam.pvalue.AsDict(totals))
        every_shard = totals | "EveryShard" >> beam.FlatMap(_all_shards, self.max_shard_bytes)
        return ((keyed, every_shard)
                | "WithEmptyShards" >> beam.Flatten()
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteShard(self.output_dir, self.sample_rate)))
