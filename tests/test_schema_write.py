import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from lyricbeam.schemas.arrow import (COLUMNS, CONFIGS, SCHEMA_VERSION, SCHEMA_VERSION_KEY, hf_features,
                           segments_schema, songs_schema)
from lyricbeam.transforms.storage.row_files import rows_to_table, write_table
from lyricbeam.transforms.storage.write import shard_count, shard_name


def segment_row(i, frames=5):
    return {
        "segment_id": f"s/{i:04d}", "song_id": "s", "segment_index": i, "source": "dali", "split": "train",
        "title": "t", "artist": "a", "language": "english", "licence": "l", "version_group": "dali:s",
        "start": 1.0, "end": 2.0,
        "audio": {"bytes": b"fLaC", "path": "x.flac"}, "sample_rate": 16000, "duration": 1.0,
        "text": "hi", "text_original": "hi", "section": "verse", "segment_words": [{"text": "hi", "start": 0.1, "end": 0.5}],
        "segment_aligned_words": None if i == 0 else [
            {"text": "hi", "start": 0.12, "end": 0.48, "confidence": 0.75, "aligned": True}],
        "segment_notes": [], "instruments": [], "mel": np.full((frames, 80), i, np.float32), "n_mels": 80,
        "mel_hop_seconds": 0.01, "f0_hz": np.arange(frames, dtype=np.float32),
        "voiced": np.arange(frames) % 2 == 0, "f0_hop_seconds": 0.01,
        "word_embeddings": np.ones((1, 384), np.float32) if i else np.zeros((0, 0), np.float32),
        "text_embedding": np.ones(384, np.float32),
    }


def test_each_column_defined_once_and_used():
    for config, columns in CONFIGS.items():
        assert len(columns) == len(set(columns)), config
        assert set(columns) <= set(COLUMNS)
    assert set(CONFIGS["songs"]) | set(CONFIGS["segments"]) == set(COLUMNS)


def test_schema_carries_version_and_hf_features():
    for schema in (songs_schema(16000), segments_schema(16000)):
        assert schema.metadata[SCHEMA_VERSION_KEY] == SCHEMA_VERSION.encode()
        assert b"huggingface" in schema.metadata
    import datasets

    features = datasets.Features.from_dict(hf_features("segments", 16000))
    assert isinstance(features["audio"], datasets.Audio) and features["audio"].sampling_rate == 16000


def test_rows_to_table_round_trip(tmp_path):
    rows = [segment_row(i, frames=3 + i) for i in range(3)]
    table = rows_to_table("segments", rows, 16000)
    path = str(tmp_path / "train-00000-of-00001.parquet")
    write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.metadata[SCHEMA_VERSION_KEY] == SCHEMA_VERSION.encode()
    assert back.schema.remove_metadata() == segments_schema().remove_metadata()
    mel = back.column("mel").to_pylist()
    assert [len(m) for m in mel] == [3, 4, 5] and mel[2][4][79] == 2.0
    assert back.column("voiced").to_pylist()[1] == [True, False, True, False]
    aligned = back.column("segment_aligned_words").to_pylist()
    assert aligned[0] is None and aligned[1][0]["confidence"] == 0.75 and aligned[1][0]["start"] == 0.12
    assert back.column("word_embeddings").to_pylist()[0] == []
    assert len(back.column("word_embeddings").to_pylist()[1][0]) == 384
    assert not list(tmp_path.glob(".*"))  # the temp name was renamed away


def test_shard_naming_and_count():
    assert shard_name("train", 3, 12) == "train-00003-of-00012.parquet"
    assert re.fullmatch(r"(train|validation|test)-\d{5}-of-\d{5}\.parquet", shard_name("test", 0, 1))
    assert shard_count(10_000, 100, 1_000) == 10
    assert shard_count(10_000, 3, 1_000) == 3  # never more shards than songs
    assert shard_count(0, 0, 1_000) == 1


def test_row_groups_are_sized_by_bytes_with_a_page_index(tmp_path):
    import numpy as np
    import pyarrow as pa

    from lyricbeam.transforms.storage.row_files import row_group_bounds

    # rows of ~4 MB (a minute of whole-song mel): a 64-row group would be ~256 MB
    rows = 30
    mel = pa.array([np.full(1_000_000, i, np.float32) for i in range(rows)], pa.list_(pa.float32()))
    table = pa.table({"mel": mel, "i": list(range(rows))})
    bounds = row_group_bounds(table, 10_000_000)
    assert bounds[0] == (0, 2) and bounds[-1][1] == rows and all(b - a == 2 for a, b in bounds)
    path = str(tmp_path / "big.parquet")
    write_table(table, path, max_row_group_bytes=10_000_000)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 15
    assert all(meta.row_group(g).total_byte_size <= 10_000_000 for g in range(meta.num_row_groups))
    assert meta.row_group(0).column(0).has_offset_index and meta.row_group(0).column(0).has_column_index
    assert pq.read_table(path).equals(table)
    # a row larger than the limit goes alone; the same table gives the same bytes
    assert row_group_bounds(table, 1000)[:2] == [(0, 1), (1, 2)]
    again = str(tmp_path / "again.parquet")
    write_table(table, again, max_row_group_bytes=10_000_000)
    assert open(path, "rb").read() == open(again, "rb").read()


def test_portable_paths_tell_nothing_of_this_machine():
    from lyricbeam.transforms.storage.rows import portable_path

    roots = ("/data/dali", "/data/dali/audio", "gs://bucket/musicnet")
    assert portable_path("/data/dali/annotations/x.gz", roots) == "annotations/x.gz"
    assert portable_path("/data/dali/audio/x.mp3", roots) == "x.mp3"  # the deepest root
    assert portable_path("gs://bucket/musicnet/train_data/1.wav", roots) == "train_data/1.wav"
    assert portable_path("/home/me/elsewhere/y.wav", roots) == "y.wav"
    assert portable_path("", roots) == ""


def test_a_songs_pages_are_the_same_bytes_whatever_rows_surround_it(tmp_path):
    """The property Xet's deduplication needs: a song's column chunks (one page each) are byte for
    byte the same in a shard that gained other songs, so a re-publish sends only the new songs."""
    import pyarrow as pa

    from lyricbeam.transforms.storage.row_files import write_table

    rng = np.random.default_rng(0)

    def song_rows(song: str, n: int) -> list[dict]:
        return [{"song_id": song, "segment": i, "audio": rng.bytes(50_000),
                 "mel": rng.normal(size=20_000).astype(np.float32)} for i in range(n)]

    songs = {s: song_rows(s, n) for s, n in (("a", 3), ("b", 5), ("c", 2), ("new", 4))}

    def table(names):
        rows = [r for s in names for r in songs[s]]
        return pa.table({"song_id": [r["song_id"] for r in rows], "segment": [r["segment"] for r in rows],
                         "audio": pa.array([r["audio"] for r in rows], pa.binary()),
                         "mel": pa.array([r["mel"] for r in rows], pa.list_(pa.float32()))})

    def chunks(path):
        meta = pq.ParquetFile(path).metadata
        data = open(path, "rb").read()
        out = {}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            song = pq.ParquetFile(path).read_row_group(g, columns=["song_id"]).column(0).to_pylist()
            assert len(set(song)) == 1  # one song per row group
            for c in range(group.num_columns):
                column = group.column(c)
                start = column.dictionary_page_offset or column.data_page_offset
                out[(song[0], column.path_in_schema)] = data[start: start + column.total_compressed_size]
        return out

    before, after = str(tmp_path / "before.parquet"), str(tmp_path / "after.parquet")
    write_table(table(["a", "b", "c"]), before)
    write_table(table(["a", "b", "new", "c"]), after)
    old, new = chunks(before), chunks(after)
    assert set(old) < set(new)
    assert all(old[key] == new[key] for key in old)  # every page of a, b and c unchanged
    assert pq.read_table(after).equals(table(["a", "b", "new", "c"]))


def test_an_empty_shard_has_no_row_group_and_every_reader_takes_it(tmp_path):
    """Songs are hashed to shards, so a shard may get none; `datasets` refuses a row group of 0 rows."""
    import datasets
    import polars as pl
    import pyarrow as pa

    from lyricbeam.transforms.storage.row_files import write_table

    folder = tmp_path / "data" / "songs"
    folder.mkdir(parents=True)
    table = pa.table({"song_id": ["a", "a", "b"], "x": [1.0, 2.0, 3.0]})
    write_table(table, str(folder / "train-00000-of-00002.parquet"))
    write_table(table.slice(0, 0), str(folder / "train-00001-of-00002.parquet"))
    assert pq.ParquetFile(folder / "train-00000-of-00002.parquet").metadata.num_row_groups == 2  # a, b
    assert pq.ParquetFile(folder / "train-00001-of-00002.parquet").metadata.num_row_groups == 0
    assert datasets.load_dataset("parquet", data_files={"train": str(folder / "*.parquet")})["train"].num_rows == 3
    assert pl.scan_parquet(str(folder / "*.parquet")).collect().height == 3
