"""Audio folders: lyrics files (LRC, plain text, their encodings and their faults), discovery
(metadata, duplicates, partners, links, names in any script), what the later stages do with
times a lyrics file does not give, and the LRC path end to end on a real song."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from conftest import SHARED
from lyricbeam.schemas.records import AlignedWord, AnnotationEvent, Song, SongAlignment
from lyricbeam.transforms.ingest.audiofolder import discover_audio_folder, language_name, read_audiofolder_song
from lyricbeam.transforms.ingest.lyrics_files import (
    decode_text, looks_like_lrc, lyric_events, parse_lrc, parse_plain_lyrics)
from lyricbeam.transforms.rejects import RejectError

LRC = """[ar:Someone]
[ti:A Song]
[la:fr]
[length:03:20]
[offset:+500]
[00:12.00][01:30.00]chorus line one
[00:15.50][01:33.50]chorus line two

[00:20.00]<00:20.00>verse <00:20.50>words <00:21.10>here
[00:25.00]
[00:26]last line
"""


def test_lrc_lines_repeat_at_each_stamp_in_time_order_with_the_offset_applied():
    lyrics = parse_lrc(LRC)
    assert [(round(l.start, 2), " ".join(l.words)) for l in lyrics.lines] == [
        (11.5, "chorus line one"), (15.0, "chorus line two"), (19.5, "verse words here"), (25.5, "last line"),
        (89.5, "chorus line one"), (93.0, "chorus line two")]
    assert lyrics.tags["ar"] == "Someone" and lyrics.tags["la"] == "fr" and lyrics.tags["length"] == "03:20"
    # The chorus block is a stanza at each of its stamps; the verse block is another.
    assert [l.stanza for l in lyrics.lines] == [0, 0, 1, 1, 2, 2]
    assert lyrics.lines[2].word_starts == pytest.approx((19.5, 20.0, 20.6))


def test_lrc_events_give_line_starts_and_enhanced_word_times_only():
    words, lines, paragraphs = lyric_events(parse_lrc(LRC))
    assert [l.start for l in lines] == pytest.approx([11.5, 15.0, 19.5, 25.5, 89.5, 93.0])
    assert all(math.isnan(l.end) for l in lines)  # LRC says when a line starts, not when it ends
    verse = [w for w in words if w.parent == 2]
    assert [(w.text, w.start, w.end) for w in verse[:2]] == [("verse", 19.5, 20.0), ("words", 20.0, 20.6)]
    assert math.isnan(verse[2].end)  # the last timed word's end is not given
    assert all(math.isnan(w.start) for w in words if w.parent != 2)
    assert [p.start for p in paragraphs] == pytest.approx([11.5, 19.5, 89.5])
    assert [l.parent for l in lines] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("text, reason", [
    ("[ar:x]\nno time tags\n[xx:yy]still none\n", "no_valid_times"),
    ("[00:10.00]\n[00:20.00]\n", "no_valid_times"),  # times, but nothing sung
    ("[00:01.00]<00:01.00>one <00:03.00>two <00:02.00>three\n", "non_monotonic_times"),
    ("[00:05.00]<00:02.00>before its line\n", "non_monotonic_times"),
    ("[offset:+5000]\n[00:02.00]too early\n", "negative_times"),
])
def test_broken_lrc_is_refused_with_its_reason(text, reason):
    with pytest.raises(RejectError) as err:
        parse_lrc(text)
    assert err.value.reason == reason


def test_time_formats_of_real_lrc_files():
    lyrics = parse_lrc("[01:02]a\n[01:03.5]b\n[01:04.25]c\n[01:05.125]d\n[01:06:50]e\n")
    assert [l.start for l in lyrics.lines] == pytest.approx([62.0, 63.5, 64.25, 65.125, 66.5])


def test_plain_lyrics_stanzas_and_labels():
    lyrics = parse_plain_lyrics("[Verse 1]\nhello there\nsecond line\n\n[Chorus]\nla la la\n\n\nend\n")
    assert [(l.words, l.stanza) for l in lyrics.lines] == [
        (("hello", "there"), 0), (("second", "line"), 0), (("la", "la", "la"), 1), (("end",), 2)]
    assert lyrics.stanza_labels == {0: "Verse 1", 1: "Chorus"}
    words, lines, paragraphs = lyric_events(lyrics)
    assert all(math.isnan(e.start) and math.isnan(e.end) for e in words + lines + paragraphs)
    assert [p.text for p in paragraphs] == ["Verse 1", "Chorus", ""]


@pytest.mark.parametrize("encode", [
    lambda t: t.encode("utf-8"), lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), lambda t: t.encode("utf-16"),
    lambda t: t.encode("utf-16-le"), lambda t: t.encode("utf-16-be"), lambda t: t.encode("latin-1"),
])
def test_lyrics_files_in_every_encoding_they_come_in(encode):
    assert decode_text(encode("[00:01.00]Veränderung hält jung\n")) == "[00:01.00]Veränderung hält jung\n"


def test_binary_garbage_is_not_lyrics():
    with pytest.raises(RejectError) as err:
        decode_text(bytes(range(256)) * 16)
    assert err.value.reason == "not_text"
    with pytest.raises(RejectError):
        decode_text(b"\x00\x01\x02\x03fLaC" * 100)


def test_lrc_saved_as_txt_is_read_as_lrc():
    assert looks_like_lrc("[00:01.00]a\n[00:02.00]b\n") and not looks_like_lrc("[Chorus]\nhello\nworld\n")


def _tone(path, seconds=2.0, rate=22050):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)


def test_discovery_pairs_files_and_names_every_file_it_does_not_use(tmp_path):
    root = tmp_path / "music"
    (root / "Artist" / "Album").mkdir(parents=True)
    (root / "日本語").mkdir()
    _tone(root / "Artist" / "Album" / "01 Song.flac")
    (root / "Artist" / "Album" / "01 Song.lrc").write_text("[00:00.50]hello\n")
    _tone(root / "Artist" / "Album" / "01 Song.wav")  # same stem: lossless too, FLAC ranks first
    _tone(root / "日本語" / "うた.wav")
    (root / "日本語" / "うた.txt").write_text("こんにちは 世界\n", encoding="utf-8")
    (root / "日本語" / "うた.lrc").write_text("[00:00.50]こんにちは\n", encoding="utf-8")
    (root / "orphan.txt").write_text("nobody sings this\n")
    _tone(root / "plain.flac")
    (root / ".hidden.flac").write_bytes(b"not looked at")
    (root / "cover.jpg").write_bytes(b"\xff\xd8 an image, not a song")
    os.symlink("/etc/hostname", root / "link_out.flac")
    os.symlink(str(root / "plain.flac"), root / "link_in.flac")  # inside the folder: followed
    (root / "metadata.csv").write_text("file_name,artist,title,licence\nplain.flac,Meta Artist,Meta Title,CC BY 4.0\n"
                                       "gone.flac,x,y,z\n")
    items, rejects = discover_audio_folder(str(root))
    assert sorted(i.song_id for i in items) == ["Artist/Album/01 Song", "link_in", "plain", "日本語/うた"]
    by_id = {i.song_id: i for i in items}
    assert by_id["Artist/Album/01 Song"].audio_path.endswith("01 Song.flac")
    assert by_id["日本語/うた"].annotation_path.endswith("うた.lrc")  # timed lyrics win over plain text
    assert by_id["plain"].metadata["artist"] == "Meta Artist" and by_id["plain"].annotation_path == ""
    got = sorted((r.song_id, r.reason) for r in rejects)
    assert got == [("Artist/Album/01 Song", "duplicate_of=Artist/Album/01 Song"), ("gone", "missing_audio"),
                   ("link_out", "unsafe_path"), ("orphan", "missing_audio"), ("日本語/うた", "superseded_lyrics")]
    assert all(r.detail for r in rejects)


def test_metadata_comes_from_the_metadata_file_then_lrc_tags_then_file_tags_then_the_path(tmp_path):
    import mutagen.flac

    from lyricbeam.transforms.ingest.sources import SourceItem

    audio = tmp_path / "Folder Artist" / "track.flac"
    audio.parent.mkdir()
    _tone(audio)
    tagged = mutagen.flac.FLAC(str(audio))
    tagged["artist"], tagged["title"], tagged["genre"] = "Tag Artist", "Tag Title", "Tag Genre"
    tagged.save()
    raw = b"[ar:LRC Artist]\n[00:00.50]bonjour tout le monde et merci\n"
    item = SourceItem("audiofolder", "Folder Artist/track", "x.lrc", str(audio), None, "lic")
    song = read_audiofolder_song(item, raw)
    assert (song.artist, song.title, song.lyrics_source) == ("LRC Artist", "Tag Title", "lrc")
    assert json.loads(song.info_json)["genre"] == "Tag Genre"
    assert song.language == "french"  # none given: detected from the lyrics
    item.metadata = {"file_name": "track.flac", "Artist": "Meta Artist", "language": "es", "license": "CC0"}
    song = read_audiofolder_song(item, raw)
    assert (song.artist, song.language, song.licence) == ("Meta Artist", "spanish", "CC0")
    plain = tmp_path / "Folder Artist" / "untagged.flac"
    _tone(plain)
    song = read_audiofolder_song(SourceItem("audiofolder", "Folder Artist/untagged", "", str(plain)), None)
    assert (song.artist, song.title, song.lyrics_source, song.has_lyrics) == ("Folder Artist", "untagged", "", False)


def test_language_names_from_codes():
    assert language_name("fr") == "french" and language_name("German") == "german" and language_name("") == ""


def _lrc_song(**fields) -> Song:
    words, lines, paragraphs = lyric_events(parse_lrc("[00:01.00]one two\n[00:04.00]three four\n"))
    return Song("s", "audiofolder", "s.lrc", words=words, lines=lines, paragraphs=paragraphs, lyrics_source="lrc",
                duration=8.0, sample_rate=16000, **fields)


def test_alignment_gets_word_onsets_else_line_onsets_else_none():
    from lyricbeam.transforms.alignment.align import song_lyric_lines, source_onsets

    song = _lrc_song()
    assert source_onsets(song, song_lyric_lines(song)) == (None, [1.0, 4.0])
    text = Song("t", "audiofolder", "t.txt", words=[AnnotationEvent("a", math.nan, math.nan, parent=0)],
                lines=[AnnotationEvent("a", math.nan, math.nan)], lyrics_source="text")
    assert source_onsets(text, song_lyric_lines(text)) == (None, None)
    timed = Song("d", "dali", "d.gz", words=[AnnotationEvent("a", 1.0, 1.5, parent=0)],
                 lines=[AnnotationEvent("a", 1.0, 1.5)])
    assert source_onsets(timed, song_lyric_lines(timed)) == ([1.0], None)


def test_segments_take_line_times_from_the_alignment_where_the_lyrics_file_gives_none():
    from lyricbeam.transforms.storage.rows import SegmentConfig, segment_spans

    aligned = [AlignedWord("one", 1.1, 1.5, 0.5), AlignedWord("two", 1.6, 2.4, 0.5),
               AlignedWord("three", 4.2, 4.8, 0.5), AlignedWord("four", 4.9, 5.9, 0.5)]
    alignment = SongAlignment("b", "m", "en", "source_lines", aligned, 0.5, 1.0)
    config = SegmentConfig(pad_s=0.0, min_segment_s=0.1)
    assert segment_spans(_lrc_song(alignment=alignment), config) == [(1.1, 2.4, 0), (4.2, 5.9, 1)]
    assert segment_spans(_lrc_song(), config) == []  # LRC starts but no ends and no alignment: no line segment


def test_a_time_beyond_the_audio_is_refused_even_without_an_end():
    from lyricbeam.transforms.audio.clean import check_times

    with pytest.raises(RejectError) as err:
        check_times({"lines": [AnnotationEvent("late", 600.0, math.nan)]}, duration=15.0, tolerance=0.5)
    assert err.value.reason == "times_beyond_audio"
    check_times({"lines": [AnnotationEvent("untimed", math.nan, math.nan)]}, duration=15.0, tolerance=0.5)


def test_a_sung_song_without_lyrics_is_refused_and_an_instrumental_kept():
    from lyricbeam.transforms.quality import QualityConfig, judge_missing_lyrics, judge_word_density

    config = QualityConfig()
    sung = Song("s", "audiofolder", "s.flac", vocal_activity=0.6)
    assert not judge_missing_lyrics(sung, config).passed
    assert judge_missing_lyrics(sung.replace(vocal_activity=0.05), config).passed
    assert judge_missing_lyrics(sung.replace(transcribe_lyrics=True), config).passed
    assert judge_word_density(_lrc_song(), config).passed  # untimed words: nothing to judge


@pytest.mark.weights
def test_lrc_song_through_the_pipeline_matches_the_reference_lines_figure(tmp_path):
    """One shared JamendoLyrics song as an audio folder with LRC line times from its annotations:
    word onsets read back from the shard are scored against the human word onsets."""
    from lyricbeam.pipeline.cli import main
    from lyricbeam.pipeline.eval_alignment import onset_metrics, read_song
    from lyricbeam.pipeline.jamendo import to_audio_folder

    jamendo, name = str(SHARED / "jamendo"), "Fantasma_-_Los_Rombos"
    folder = tmp_path / "folder"
    to_audio_folder(jamendo, str(folder), "lrc")
    for other in os.listdir(folder):
        if not other.startswith(name) and other != "metadata.csv":
            os.remove(folder / other)
    out = tmp_path / "out"
    assert main(["run", "--audio-dir", str(folder), "--output", str(out)]) == 0
    row = pq.read_table(out / "data" / "songs").to_pylist()[0]
    assert (row["song_id"], row["source"], row["lyrics_source"]) == (name, "audiofolder", "lrc")
    assert (row["artist"], row["language"]) == ("LOS ROMBOS", "spanish")  # from metadata.csv (JamendoLyrics.csv)
    assert row["alignment"]["line_placement"].startswith("source_lines")
    metrics = onset_metrics(read_song(jamendo, name)["word_onsets"], [w["start"] for w in row["alignment"]["words"]])
    assert metrics["aae"] < 0.35 and metrics["pco"] > 0.7, metrics
    assert row["lines"][0]["start"] == pytest.approx(17.63, abs=0.01) and row["lines"][0]["end"] is None
    segments = pq.read_table(out / "data" / "segments", columns=["song_id", "start", "end", "text"]).to_pylist()
    # One segment per line, spanning its aligned words (LRC gives no line ends).
    lengths = [s["end"] - s["start"] for s in segments]
    assert len(segments) == len(row["lines"]) and np.median(lengths) < 6 and max(lengths) < 40
