"""Per-song row files under `OUT/.work/rows/`: the one format rows are spilled in.

`ToRows` writes each song's rows to its own Parquet files (one per config) and a small JSON
list of `RowRef`s, written last, so a refs file means the entry is complete; only the refs
cross the shuffles, and the writer gathers each shard's rows from the files. A song's entry is
named by its id, decoded-PCM hash, split, version group and the settings that shape its rows
(`workdir.cache_key`), so a re-run after a crash finds it.
"""
from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from lyricbeam.schemas.arrow import MATRIX, SCHEMA_VERSION, VECTOR, schema_for
from lyricbeam.schemas.records import Song
from lyricbeam.transforms.storage.workdir import atomic_create, cache_key, entry_path, read_bytes, result_settings, write_atomically

CONFIGS = ("songs", "segments")


class RowRef(NamedTuple):
    """Where one written row lives until the writer puts it into its shard: only this crosses the shuffle."""

    config: str
    split: str
    row_id: str
    est_bytes: int
    path: str
    index: int
    song_key: str = ""  # `source:song_id`: a song's rows go to one shard, side by side


def rows_settings_digest(*configs) -> str:
    """Digest of the settings that shape a song's rows, with the schema version."""
    return cache_key(SCHEMA_VERSION, [result_settings(c) for c in configs])[:16]


def row_files_key(song: Song, digest: str) -> str:
    """Name of a song's row files: what its rows depend on beyond the settings."""
    return cache_key(song.source, song.song_id, song.pcm_sha256, song.split, song.version_group, digest)


def row_file_paths(rows_dir: str, key: str) -> dict[str, str]:
    paths = {config: entry_path(rows_dir, key, f".{config}.parquet") for config in CONFIGS}
    paths["refs"] = entry_path(rows_dir, key, ".refs.json")
    return paths


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


# Uncompressed bytes per row group, at most: the Hugging Face dataset viewer fails on row groups
# over ~286 MiB and `datasets` itself writes 100 MB ones; a whole-song row is ~10 MB, so a row
# count alone would let them grow to hundreds of MB.
MAX_ROW_GROUP_BYTES = 100_000_000


def row_group_bounds(table: pa.Table, max_bytes: int = MAX_ROW_GROUP_BYTES,
                     group_by: str = "") -> list[tuple[int, int]]:
    """`(start, stop)` row ranges of `table` whose uncompressed size stays within `max_bytes`,
    and, with `group_by`, that never hold two values of that column (one song's rows each).

    Rows are taken in order; a row larger than `max_bytes` alone makes its own group.
    """
    keys = table.column(group_by).to_pylist() if group_by and group_by in table.column_names else None
    bounds, start, size = [], 0, 0
    for i in range(table.num_rows):
        row = table.slice(i, 1).nbytes
        if i > start and (size + row > max_bytes or (keys is not None and keys[i] != keys[i - 1])):
            bounds.append((start, i))
            start, size = i, 0
        size += row
    if table.num_rows:
        bounds.append((start, table.num_rows))
    return bounds


GROUP_BY = "song_id"


def write_table(table: pa.Table, path: str, max_row_group_bytes: int = MAX_ROW_GROUP_BYTES) -> int:
    """Write `table` to `path` atomically (`workdir.atomic_create`); return its bytes.

    A row group holds one song's rows (its `songs` row, or its `segments`), split further at
    `max_row_group_bytes` (`row_group_bounds`), and each of its column chunks is one page,
    compressed on its own, with a page index. So a song's pages are the same bytes whichever
    rows surround it in whichever shard: when songs are added and the dataset is published
    again, Xet finds every unchanged song's pages and uploads only the new ones. Parquet's
    content-defined chunking and per-row pages did worse here (bench/results/README.md,
    xet_republish).
    """
    with atomic_create(path) as handle:
        # No dictionary encoding: on float lists it only grows the file, and building the
        # dictionary of an hour-long song's mel costs gigabytes (bench/results/long_recording.txt).
        with pq.ParquetWriter(handle, table.schema, compression="zstd", use_dictionary=False,
                              write_page_index=True, data_page_size=max_row_group_bytes) as writer:
            # An empty table (a shard no song hashed to) gets no row group: readers that size
            # their batches from a row group's rows refuse a group of none.
            for start, stop in row_group_bounds(table, max_row_group_bytes, GROUP_BY):
                writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def write_row_files(rows_dir: str, key: str, rows: list[tuple[str, dict]], sample_rate: int) -> list[RowRef]:
    """Write a song's `(config, row)` pairs to its row files; return their references."""
    paths = row_file_paths(rows_dir, key)
    refs = []
    for config in CONFIGS:
        chosen = [r for c, r in rows if c == config]
        write_table(rows_to_table(config, chosen, sample_rate), paths[config])
        refs += [RowRef(config, r["split"], row_id(config, r), estimate_row_bytes(r), paths[config], i,
                        f"{r['source']}:{r['song_id']}") for i, r in enumerate(chosen)]
    write_atomically(paths["refs"], json.dumps([list(r) for r in refs]).encode())  # last: the entry is complete
    return refs


def read_row_refs(rows_dir: str, key: str) -> list[RowRef] | None:
    """The row references of a complete entry, or None."""
    data = read_bytes(row_file_paths(rows_dir, key)["refs"])
    return None if data is None else [RowRef(*r) for r in json.loads(data.decode())]
