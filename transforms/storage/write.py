"""Write: Hugging Face-style sharded Parquet, `data/<config>/<split>-NNNNN-of-NNNNN.parquet`.

Rows arrive as references to the per-song files `ToRows` wrote (transforms/storage/cache.py), so
only small records cross the shuffles and a shard writer holds one shard's rows. Shard
counts come from each (config, split)'s estimated size so no shard grows past
`max_shard_bytes`; a row's shard is a hash of its id, and rows are sorted by id inside a
shard, so output does not depend on bundle order. Each shard is written under a hidden
name and renamed into place, so no partial shard is ever visible under `data/`.
"""
from __future__ import annotations

import hashlib
import math
from typing import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from lyricbeam.schemas.arrow import MATRIX, VECTOR, schema_for
from lyricbeam.transforms.storage.cache import RowRef

ID_COLUMN = {"songs": "song_id", "segments": "segment_id"}
BOOL_LIST = pa.list_(pa.bool_())


def row_id(config: str, row: dict) -> str:
    return f"{row['source']}:{row[ID_COLUMN[config]]}"


def estimate_row_bytes(row: dict) -> int:
    """Rough encoded size of a row: audio bytes plus 4 bytes per stored float."""
    size = len(row["audio"]["bytes"]) + len(row.get("text", "")) * 2 + 512
    for name in ("mel", "f0_hz", "word_embeddings", "line_embeddings", "text_embedding", "beat_times"):
        value = row.get(name)
        if value is not None:
            size += 4 * int(np.asarray(value).size)
    return size


def shard_name(split: str, shard: int, count: int) -> str:
    return f"{split}-{shard:05d}-of-{count:05d}.parquet"


def _as_matrix(value) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if array.size == 0:
        return np.zeros((0, 0), np.float32)
    return array if array.ndim == 2 else array.reshape(1, -1)


def _list_column(arrays: list[np.ndarray], dtype: pa.DataType) -> pa.Array:
    # Builds list<...> / list<list<...>> from numpy in one pass instead of via Python lists.
    if dtype == MATRIX:
        mats = [_as_matrix(a) for a in arrays]
        rows = [m.shape[0] for m in mats]
        widths = np.concatenate([np.full(m.shape[0], m.shape[1], np.int64) for m in mats]) if mats else np.zeros(0, np.int64)
        inner_offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
        values = np.concatenate([m.reshape(-1) for m in mats]) if mats else np.zeros(0, np.float32)
        inner = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(values, pa.float32()))
        outer_offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(outer_offsets), inner)
    element = pa.float32() if dtype == VECTOR else pa.bool_()
    numpy_type = np.float32 if dtype == VECTOR else bool
    flat = [np.asarray(a, numpy_type).reshape(-1) for a in arrays]
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in flat])]).astype(np.int32)
    values = np.concatenate(flat) if flat else np.zeros(0, numpy_type)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, element))


def rows_to_table(config: str, rows: list[dict], sample_rate: int | None = None) -> pa.Table:
    """An Arrow table of `config`'s schema from row dicts (numpy arrays allowed in list columns)."""
    schema = schema_for(config, sample_rate)
    columns = []
    for field in schema:
        values = [row[field.name] for row in rows]
        if field.type in (MATRIX, VECTOR, BOOL_LIST):
            columns.append(_list_column(values, field.type))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def write_table(table: pa.Table, path: str, row_group_rows: int = 64) -> int:
    """Write `table` to `path` atomically (hidden temp name, then rename); return its bytes."""
    directory, name = path.rsplit("/", 1)
    temp = f"{directory}/.{name}.inprogress"
    with FileSystems.create(temp) as handle:
        # No dictionary encoding: on float lists it only grows the file, and building the
        # dictionary of an hour-long song's mel took 1.7 GiB and 7 s (bench/results/long_recording).
        pq.write_table(table, handle, compression="zstd", row_group_size=row_group_rows, use_dictionary=False)
    size = FileSystems.match([temp])[0].metadata_list[0].size_in_bytes
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])
    return size


class _KeyByShard(beam.DoFn):
    def __init__(self, max_shard_bytes: int):
        self.max_shard_bytes = max_shard_bytes

    def process(self, ref: RowRef, totals: dict):
        count = shard_count(totals[(ref.config, ref.split)], self.max_shard_bytes)
        shard = int.from_bytes(hashlib.sha1(ref.row_id.encode()).digest()[:8], "big") % count
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
    """The rows `refs` point to, as one table sorted by row id (each file read once)."""
    refs = sorted(refs, key=lambda r: r.row_id)
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
