"""Every hostile input gets its expected outcome; the run never crashes; nothing is lost."""
import collections
import json
import os

import pyarrow.parquet as pq
import pytest

import hostile

pytestmark = pytest.mark.weights  # whole pipeline runs


def test_hostile_corpus(tmp_path):
    from lyricbeam.pipeline.cli import main

    marker = "/tmp/lyricbeam_hostile_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    dali, musicnet, expected = hostile.build(tmp_path / "in")
    folder, expected_in_folder = hostile.build_audio_folder(tmp_path / "in")
    expected = sorted(expected + expected_in_folder)
    inputs = {song_id for song_id, _ in expected}
    assert len(inputs) >= 45
    out = tmp_path / "out"
    assert main(["run", "--dali-dir", dali, "--musicnet-dir", musicnet, "--audio-dir", folder,
                 "--output", str(out)]) == 0
    rejects = [json.loads(l) for f in (out / "rejects").glob("*.jsonl") for l in f.read_text().splitlines()]
    rows = pq.read_table(out / "data" / "songs", columns=["song_id"]).column("song_id").to_pylist()
    got = sorted([(r["song_id"], r["reason"]) for r in rejects] + [(song_id, "ok") for song_id in rows])
    assert got == expected
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounted"] and stats["songs_in"] == len(expected) == stats["songs_out"] + stats["rejected"]
    assert collections.Counter(r["stage"] for r in rejects)["discover"] >= 4
    assert all(r["detail"] for r in rejects)
    assert not os.path.exists(marker)
    texts = dict(zip(*pq.read_table(out / "data" / "songs", columns=["song_id", "text"]).to_pydict().values()))
    assert texts["karaoke_markers"] == "ako ay may lobo"  # LRC times and syllable marks removed
    assert texts["mixed_script_lyrics"] == "ако ay 気球 lobo"
    songs = {r["song_id"]: r for r in pq.read_table(out / "data" / "songs", columns=[
        "song_id", "source", "lyrics_source", "language", "title", "artist", "text", "lines"]).to_pylist()}
    assert songs["latin1_text"]["text"].startswith("wir leben die veränderung")  # Latin-1 decoded
    assert songs["latin1_text"]["lyrics_source"] == "text" and songs["latin1_text"]["language"] == "german"
    assert songs["日本語/うた"]["title"] == "うた" and songs["日本語/うた"]["lyrics_source"] == "lrc"
    assert songs["good_lrc"]["artist"] == "Los Rombos" and songs["good_lrc"]["language"] == "spanish"
    assert songs["instrumental"]["lyrics_source"] == "" and songs["instrumental"]["text"] == ""
    assert all(line["start"] is None for line in songs["latin1_text"]["lines"])  # plain text: no times
    assert {r["source"] for r in songs.values()} == {"dali", "musicnet", "audiofolder"}
