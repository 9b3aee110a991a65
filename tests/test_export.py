"""`lyricbeam export`: every format read back with its consumer's rules and compared with the shards."""
import csv
import hashlib
import io
import json
import math
import os
import pathlib
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from lyricbeam.pipeline.cli import main
from lyricbeam.pipeline.export.files import file_stem
from lyricbeam.pipeline.export.run import export
from lyricbeam.pipeline.export.source import read_songs

SONG_COLUMNS = ["song_id", "split", "title", "artist", "language", "duration", "audio", "words", "lines", "alignment",
                "sections", "tags", "prompt", "key", "tempo_bpm", "instrumental", "text"]
# ACE-Step 1.5's keyscale: a note, an optional accidental, a mode.
KEYSCALE = re.compile(r"^[A-G][#b♯♭]? (major|minor)$")


@pytest.fixture(scope="module")
def jamendo_run(tmp_path_factory, shared):
    """Two shared JamendoLyrics songs (Spanish, French) as an audio folder with LRC line times, through `lyricbeam run`."""
    from lyricbeam.pipeline.jamendo import to_audio_folder

    base = tmp_path_factory.mktemp("export_jamendo")
    folder = base / "folder"
    keep = ("Fantasma_-_Los_Rombos", "Confession_-_Quesabe")
    to_audio_folder(str(shared / "jamendo"), str(folder), "lrc")
    for other in os.listdir(folder):
        if not other.startswith(keep) and other != "metadata.csv":
            os.remove(folder / other)
    out = base / "out"
    assert main(["run", "--audio-dir", str(folder), "--output", str(out)]) == 0
    return out


def shard_songs(out):
    files = sorted(str(p) for p in (pathlib.Path(out) / "data" / "songs").glob("*.parquet"))
    return {row["song_id"]: row for row in pq.read_table(files, columns=SONG_COLUMNS).to_pylist()}


def aligned_line_starts(row):
    """Each line's first aligned word start (the source's line start where not aligned), as the export should write it."""
    placed = (row["alignment"] or {}).get("words") or []
    starts = {}
    for index, word in enumerate(row["words"]):
        t = placed[index]["start"] if len(placed) == len(row["words"]) else word["start"]
        if t is not None and math.isfinite(t):
            starts[word["parent"]] = min(starts.get(word["parent"], t), t)
    return [starts.get(i, line["start"]) for i, line in enumerate(row["lines"])]


def tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def samples(data):
    return sf.read(io.BytesIO(data), dtype="float64", always_2d=True)


@pytest.mark.parametrize("which", ["sample", "jamendo"])
def test_lrc_read_back_with_an_lrc_parser_gives_the_shards_lines_and_words(which, sample_run, jamendo_run, tmp_path):
    import lemony_lrc_parser

    out = sample_run if which == "sample" else jamendo_run
    rows = shard_songs(out)
    export(str(out), "lrc", str(tmp_path / "plain"))
    export(str(out), "lrc", str(tmp_path / "words"), words=True)
    for song_id, row in rows.items():
        folder = row["split"]
        stem = file_stem(song_id)
        flac = (tmp_path / "plain" / folder / f"{stem}.flac").read_bytes()
        assert flac == row["audio"]["bytes"]  # the stored audio as it is in the shard
        parsed = lemony_lrc_parser.loads((tmp_path / "plain" / folder / f"{stem}.lrc").read_text(encoding="utf-8"))
        assert dict(parsed.metadata)["ar"] == row["artist"] and dict(parsed.metadata)["ti"] == row["title"]
        expected = [(t, line["text"]) for t, line in zip(aligned_line_starts(row), row["lines"])
                    if t is not None and math.isfinite(t)]
        assert len(parsed) == len(expected) == (len(row["lines"]) if row["alignment"] else len(parsed))
        for line, (start, text) in zip(parsed, expected):
            assert line.start == pytest.approx(start * 1000, abs=5.01) and line.text == text
        enhanced = lemony_lrc_parser.loads((tmp_path / "words" / folder / f"{stem}.lrc").read_text(encoding="utf-8"))
        if row["alignment"]:
            # The parser joins words stamped with one time into one token: each word keeps that time.
            heard = [(word, token.start) for line in enhanced for token in line.content for word in token.content.split()]
            placed = row["alignment"]["words"]
            assert [w for w, _ in heard] == [w["text"] for w in row["words"]]
            np.testing.assert_allclose([t for _, t in heard], [w["start"] * 1000 for w in placed], atol=5.01)
            assert [w for w, _ in heard] == [w["text"] for w in placed]


def test_yue_records_hold_the_documented_fields(sample_run, jamendo_run, tmp_path):
    for out in (sample_run, jamendo_run):
        rows = shard_songs(out)
        dest = tmp_path / out.parent.name
        export(str(out), "yue", str(dest))
        records = [json.loads(line) for split in sorted({r["split"] for r in rows.values()})
                   for line in (dest / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert sorted(r["id"] for r in records) == sorted(rows)
        for record in records:
            row = rows[record["id"]]
            assert set(record) == {"id", "audio_path", "audio_length_in_sec", "msa", "genres", "splitted_lyrics"}
            assert record["audio_length_in_sec"] == pytest.approx(row["duration"], abs=1e-3)
            assert (dest / record["audio_path"]).read_bytes() == row["audio"]["bytes"]
            assert [(m["label"], m["start"], m["end"]) for m in record["msa"]] == [
                (s["label"], pytest.approx(s["start"], abs=1e-3), pytest.approx(s["end"], abs=1e-3)) for s in row["sections"]]
            assert record["genres"] == ", ".join(row["tags"])
            segmented = record["splitted_lyrics"]["segmented_lyrics"]
            assert len(segmented) == len(record["msa"])
            sung = []
            for part, section in zip(segmented, record["msa"]):
                assert part["offset"] == section["start"]
                assert part["duration"] == pytest.approx(section["end"] - section["start"], abs=2e-3)
                assert part["line_content"].startswith(f"[{section['label']}]\n") and part["line_content"].endswith("\n\n")
                sung += part["line_content"].split("\n")[1:-2]
            timed = [line["text"] for t, line in zip(aligned_line_starts(row), row["lines"]) if t is not None]
            assert sung == timed  # every timed line once, in order, in the section it starts in


@pytest.mark.parametrize("config", ["songs", "segments"])
def test_webdataset_shards_read_by_the_webdataset_package(config, sample_run, jamendo_run, tmp_path):
    import webdataset as wds

    for out in (sample_run, jamendo_run):
        rows = shard_songs(out)
        dest = tmp_path / f"{out.parent.name}-{config}"
        summary = export(str(out), "webdataset", str(dest), config=config, shard_bytes=2_000_000)
        tars = sorted(str(p) for p in dest.rglob("*.tar"))
        assert summary.files_written == len(tars) >= 2
        seen = []
        for sample in wds.WebDataset(tars, shardshuffle=False):
            meta = json.loads(sample["json"])
            assert set(meta) >= {"prompt", "lyrics", "seconds_start", "seconds_total", "tags", "key", "bpm"}
            row = rows[meta["song_id"]]
            assert meta["prompt"] == row["prompt"] and meta["key"] == row["key"] and meta["tags"] == row["tags"]
            assert meta["seconds_total"] == pytest.approx(row["duration"], abs=1e-3)
            audio, rate = samples(sample["flac"])
            if config == "songs":
                assert sample["__key__"] == file_stem(row["song_id"]) and meta["seconds_start"] == 0.0
                expected, expected_rate = samples(row["audio"]["bytes"])
                assert meta["lyrics"] == row["text"]
            else:
                segment = segment_rows(out)[sample["__key__"]]
                assert meta["seconds_start"] == pytest.approx(segment["start"], abs=1e-3)
                assert meta["lyrics"] == segment["text"]
                expected, expected_rate = samples(segment["audio"]["bytes"])
            assert rate == expected_rate
            np.testing.assert_array_equal(audio, expected)
            seen.append(sample["__key__"])
        assert len(seen) == len(set(seen)) == (len(rows) if config == "songs" else len(segment_rows(out)))
        for tar in tars:  # a shard only passes the limit when one sample alone does
            assert os.path.getsize(tar) <= 2_000_000 + 10240 or len(tar_members(tar)) == 2


def segment_rows(out):
    files = sorted(str(p) for p in (pathlib.Path(out) / "data" / "segments").glob("*.parquet"))
    table = pq.read_table(files, columns=["segment_id", "start", "text", "audio"])
    return {file_stem(r["segment_id"]): r for r in table.to_pylist()}


def tar_members(path):
    import tarfile

    with tarfile.open(path) as tar:
        return tar.getnames()


def test_acestep_folder_follows_the_dataset_builder(sample_run, jamendo_run, tmp_path):
    for out in (sample_run, jamendo_run):
        rows = shard_songs(out)
        dest = tmp_path / out.parent.name
        export(str(out), "acestep", str(dest))
        for split in sorted({r["split"] for r in rows.values()}):
            folder = dest / split
            with open(folder / "metadata.csv", newline="", encoding="utf-8") as handle:
                table = list(csv.DictReader(handle))
            assert list(table[0]) == ["file", "bpm", "key", "caption", "language", "duration"]
            by_file = {r["file"]: r for r in table}
            for song_id, row in rows.items():
                if row["split"] != split:
                    continue
                stem = file_stem(song_id)
                entry = by_file[f"{stem}.flac"]
                assert (folder / f"{stem}.flac").read_bytes() == row["audio"]["bytes"]
                assert int(entry["bpm"]) == round(row["tempo_bpm"]) and 30 <= int(entry["bpm"]) <= 300
                assert KEYSCALE.match(entry["key"]) and entry["key"] == row["key"]
                assert entry["caption"] == row["prompt"] and float(entry["duration"]) == pytest.approx(row["duration"], abs=1e-3)
                lyrics = (folder / f"{stem}.txt").read_text(encoding="utf-8")
                if row["instrumental"] or not row["alignment"]:
                    assert lyrics == "[Instrumental]\n"
                else:
                    tags = re.findall(r"^\[([A-Za-z]+)\]$", lyrics, flags=re.MULTILINE)
                    assert tags and set(tags) <= {"Intro", "Verse", "Chorus", "Bridge", "Instrumental", "Outro"}
                    sung = [l for l in lyrics.splitlines() if l and not l.startswith("[")]
                    assert sung == [line["text"] for line in row["lines"]]


def test_a_rerun_writes_the_same_bytes_and_an_interrupted_export_resumes(sample_run, tmp_path):
    for fmt in ("lrc", "yue", "webdataset", "acestep"):
        dest = tmp_path / fmt
        first = export(str(sample_run), fmt, str(dest), shard_bytes=2_000_000)
        digest = tree_digest(dest)
        again = export(str(sample_run), fmt, str(dest), shard_bytes=2_000_000)
        assert tree_digest(dest) == digest
        # Only the per-split files naming every song (a JSONL, a metadata.csv) are written again, same bytes.
        splits = len({row["split"] for row in shard_songs(sample_run).values()})
        assert first.files_written > again.files_written == (splits if fmt in ("yue", "acestep") else 0)
        # Interrupted: a file lost, a partial one left behind.
        victim = sorted(p for p in dest.rglob("*") if p.is_file() and p.name != "export.json")[0]
        victim.unlink()
        (victim.parent / f".{victim.name}.partial").write_bytes(b"half")
        export(str(sample_run), fmt, str(dest), shard_bytes=2_000_000)
        (victim.parent / f".{victim.name}.partial").unlink(missing_ok=True)
        assert tree_digest(dest) == digest
    with pytest.raises(ValueError, match="another export"):
        export(str(sample_run), "lrc", str(tmp_path / "lrc"), words=True)


def test_export_command_and_its_errors(sample_run, tmp_path, capsys):
    assert main(["export", str(sample_run), "--format", "lrc", "--dest", str(tmp_path / "a"), "--split", "train"]) == 0
    assert "exported" in capsys.readouterr().out
    assert {p.parent.name for p in (tmp_path / "a").rglob("*.lrc")} == {"train"}
    assert main(["export", str(sample_run), "--format", "yue", "--dest", str(tmp_path / "b"), "--config", "segments"]) == 2
    assert main(["export", str(tmp_path / "nothing"), "--format", "lrc", "--dest", str(tmp_path / "c")]) == 2
    assert file_stem("folder/sub/My Song.v2") != file_stem("folder/sub/My_Song_v2")
    assert "." not in file_stem("a.b.c") and "/" not in file_stem("x/y")


def test_songs_are_read_one_row_group_at_a_time(sample_run):
    songs = list(read_songs(str(sample_run)))
    assert len(songs) == len(shard_songs(sample_run)) and all(s.flac for s in songs)
