"""A full `lyricbeam run` on the bundled sample, read back with datasets, polars, pyarrow and soundfile."""
import io
import json

import pytest

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from lyricbeam.schemas.arrow import SCHEMA_VERSION, SCHEMA_VERSION_KEY

from conftest import ROOT

pytestmark = pytest.mark.weights  # whole pipeline runs

EXPECTED_REJECTS = {
    "bad_orphan_audio": "no_annotation",
    "bad_evil_pickle": "unsafe_pickle",
    "bad_truncated": "corrupt_gzip",
    "bad_missing_audio": "missing_audio",
    "bad_not_audio": "undecodable_audio",
    "bad_silent": "silent_audio",
    "bad_too_short": "too_short",
    "bad_negative_times": "negative_times",
    "bad_non_monotonic": "non_monotonic_times",
    "4b196e6c99574dd49ad00d56e132712b": "times_beyond_audio",  # the real fixture: notes at 24 s, audio 1.96 s
    "vocadito_1_reupload": "duplicate_of=vocadito_1",
    "2999": "bad_labels",
    "vocadito_1_mp3_trimmed": "near_duplicate_of=vocadito_1",
    "bad_clipped": "clipping",
    "bad_upsampled": "low_bandwidth",
    "bad_language": "language_mismatch",
    "bad_word_density": "implausible_word_density",
    "bad_instrumental": "instrumental_only",
}


def rejects_of(out):
    return [json.loads(line) for f in sorted((out / "rejects").glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_every_input_is_a_row_or_a_reject(sample_run):
    stats = json.loads((sample_run / "stats.json").read_text())
    rejects = rejects_of(sample_run)
    songs = pq.read_table(sample_run / "data" / "songs")
    assert stats["songs_in"] == 22
    assert songs.num_rows + len(rejects) == stats["songs_in"]
    assert stats["accounted"] is True and stats["songs_out"] == songs.num_rows == 4
    assert sorted(songs.column("song_id").to_pylist()) == ["2382", "92382", "vocadito_1", "vocadito_1_cover"]


def test_every_reject_reason(sample_run):
    rejects = {r["song_id"]: r for r in rejects_of(sample_run)}
    assert {k: v["reason"] for k, v in rejects.items()} == EXPECTED_REJECTS
    for r in rejects.values():
        assert r["stage"] and r["source_path"] and r["detail"]
        assert not r["source_path"].startswith("/") and str(ROOT) not in r["source_path"]  # no local path leaks
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["rejects_by_reason"]["duplicate_of"] == 1
    # The sample's songs are aligned at their own line times: none is placed from a transcript.
    assert stats["alignment_suspect"] == 0 and stats["stages"]["align"].get("aligned", 0) >= 2


def test_datasets_reads_segments_and_audio_decodes_with_soundfile(sample_run):
    import datasets

    ds = datasets.load_dataset(str(sample_run), "segments")
    assert set(ds) <= {"train", "validation", "test"}
    total = sum(len(ds[s]) for s in ds)
    stats = json.loads((sample_run / "stats.json").read_text())
    assert total == stats["segments_out"] > 10
    assert isinstance(ds[next(iter(ds))].features["audio"], datasets.Audio)
    split = next(iter(ds))
    raw = ds[split].cast_column("audio", datasets.Audio(decode=False))
    row = raw[0]
    y, sr = sf.read(io.BytesIO(row["audio"]["bytes"]))
    assert sr == row["sample_rate"] == 44100  # the sources' rate: audio is stored at source quality
    assert len(y) / sr == pytest.approx(row["duration"], abs=1e-3)
    assert len(row["mel"]) == pytest.approx(row["duration"] / 0.01, abs=2)
    assert len(row["mel"][0]) == 80 and len(row["text_embedding"]) == 384


def test_rows_name_their_files_relative_to_the_inputs(sample_run):
    songs = pq.read_table(sample_run / "data" / "songs", columns=["song_id", "source_path", "audio_path"]).to_pylist()
    paths = {r["song_id"]: (r["source_path"], r["audio_path"]) for r in songs}
    assert paths["vocadito_1"] == ("annotations/vocadito_1.gz", "audio/vocadito_1.flac")
    assert paths["2382"][1] == "train_data/2382.wav"
    assert not any(p.startswith("/") or str(ROOT) in p for pair in paths.values() for p in pair)


def test_polars_scans_both_configs(sample_run):
    import polars as pl

    segments = pl.scan_parquet(str(sample_run / "data/segments/*.parquet")).collect()
    lines = segments.filter(pl.col("song_id") == "vocadito_1").sort("segment_id")
    assert lines.height == 10  # one per vocadito line
    assert lines["text"].to_list()[0] == "ako ay may lobo"
    words = lines["segment_words"].to_list()[0]
    assert [w["text"] for w in words] == ["ako", "ay", "may", "lobo"]
    assert all(0 <= w["start"] <= w["end"] <= lines["duration"][0] for w in words)
    assert all(len(e) == len(w) for e, w in zip(lines["word_embeddings"].to_list(), lines["segment_words"].to_list()))
    music = segments.filter(pl.col("source") == "musicnet")
    assert music.height == 6 and music["text"][0].startswith("Beethoven: String Quartet No 13")
    songs = pl.scan_parquet(str(sample_run / "data/songs/*.parquet")).collect()
    assert songs.height == 4 and songs["n_mels"].to_list() == [80] * 4


def test_shards_schema_version_and_split_rule(sample_run):
    files = sorted((sample_run / "data").rglob("*.parquet"))
    assert files and not list((sample_run / "data").rglob(".*"))
    splits_of_artist = {}
    for f in files:
        meta = pq.read_schema(f).metadata
        assert meta[SCHEMA_VERSION_KEY] == SCHEMA_VERSION.encode()
        name = f.name
        split, count = name.split("-")[0], int(name.split("-of-")[1].split(".")[0])
        assert len([g for g in f.parent.glob(f"{split}-*.parquet")]) == count
        for artist in pq.read_table(f, columns=["artist"]).column("artist").to_pylist():
            splits_of_artist.setdefault(artist, set()).add(split)
        assert f.stat().st_size < 3_000_000  # bounded by write.max_shard_bytes (1 MB) + one row
    assert all(len(s) == 1 for s in splits_of_artist.values())


def test_dataset_card_and_stats(sample_run):
    card = (sample_run / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: segments" in card and "config_name: songs" in card
    assert "MusicNet CC BY 4.0" in card and "CC BY-NC-SA 4.0" in card
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["audio_hours"] == pytest.approx((33.2 * 2 + 60.0) / 3600, rel=0.02)
    assert stats["stages"]["features"]["out"] == 4


def test_features_in_songs_rows(sample_run):
    songs = pq.read_table(sample_run / "data" / "songs").to_pylist()
    voc = next(s for s in songs if s["song_id"] == "vocadito_1")
    assert voc["language"] == "tagalog" and len(voc["words"]) == 33 and len(voc["notes"]) == 59
    assert len(voc["word_embeddings"]) == len(voc["words"])
    assert len(voc["line_embeddings"]) == len(voc["lines"]) == 10
    assert np.mean(voc["voiced"]) > 0.3 and 60 < voc["tempo_bpm"] < 200
    y, sr = sf.read(io.BytesIO(voc["audio"]["bytes"]))
    assert sr == 44100 and len(y) / sr == pytest.approx(voc["duration"], abs=1e-3)
    assert voc["source_sample_rate"] == 44100 and voc["source_format"] == "flac"
    music = next(s for s in songs if s["song_id"] == "2382")
    assert sorted(music["instruments"]) == ["cello", "viola", "violin"]
    assert music["notes"][0]["start"] == pytest.approx(10206 / 44100)


def test_near_duplicate_group_and_versions(sample_run):
    stats = json.loads((sample_run / "stats.json").read_text())
    [group] = stats["near_duplicate_groups"]
    assert group["canonical"] == "dali:vocadito_1"
    assert [m["id"] for m in group["members"]] == ["vocadito_1", "vocadito_1_mp3_trimmed"]
    assert group["members"][1]["score_to_canonical"] > 0.3
    assert "lossless" in stats["canonical_rules"]["near_duplicates"]
    songs = {r["song_id"]: r for r in pq.read_table(sample_run / "data" / "songs").to_pylist()}
    # The pitch-shifted cover is another recording of the same lyrics: kept, linked by version_group.
    assert songs["vocadito_1_cover"]["version_group"] == songs["vocadito_1"]["version_group"] == "dali:vocadito_1"
    assert songs["2382"]["version_group"] == "musicnet:2382"
    assert songs["vocadito_1"]["lyrics_language"] == "tl" and songs["vocadito_1"]["vocal_activity"] > 0.5
    assert songs["vocadito_1"]["bandwidth_hz"] > 15000 and songs["vocadito_1"]["clip_fraction"] == 0.0


def test_alignment_columns(sample_run):
    # DALI songs carry a forced alignment of their lyrics; MusicNet rows have none (null), and the
    # run counts both. Segment words are relative to the segment start.
    import pyarrow.dataset as ds

    songs = ds.dataset(str(sample_run / "data" / "songs")).to_table(
        columns=["song_id", "source", "words", "alignment"]).to_pylist()
    dali = [r for r in songs if r["source"] == "dali"]
    assert dali and all(r["alignment"] is not None for r in dali)
    assert all(r["alignment"] is None for r in songs if r["source"] == "musicnet")
    for row in dali:
        a = row["alignment"]
        assert [w["text"] for w in a["words"]] == [w["text"] for w in row["words"]]
        assert a["model"] and a["language"] == "tl" and 0 < a["aligned_fraction"] <= 1
        assert a["lyrics_match_wer"] is not None and a["source_onset_offset_s"] is not None
        starts = [w["start"] for w in a["words"]]
        assert sum(b >= x for x, b in zip(starts, starts[1:])) >= 0.9 * (len(starts) - 1)
    segments = ds.dataset(str(sample_run / "data" / "segments")).to_table(
        columns=["source", "segment_words", "segment_aligned_words"]).to_pylist()
    for seg in segments:
        if seg["source"] == "dali":
            assert len(seg["segment_aligned_words"]) == len(seg["segment_words"])
        else:
            assert seg["segment_aligned_words"] is None
    stats = json.loads((sample_run / "stats.json").read_text())
    counters = stats["stages"]["align"]
    # Every song that reached the stage is aligned, not applicable, or failed and kept (or rejected).
    assert counters["in"] == counters.get("aligned", 0) + counters.get("not_applicable", 0) \
        + counters.get("failed_kept", 0) + counters.get("rejected", 0)
    assert counters.get("aligned", 0) >= len(dali)
