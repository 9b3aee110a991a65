"""A corpus of hostile inputs, each with the outcome the pipeline must give it.

`build(root)` writes a DALI layout and a MusicNet layout under `root` from the real vocadito
recording and the real MusicNet labels, and returns (dali_dir, musicnet_dir, expected),
where `expected` lists (id, outcome) per input file set, outcome a reject reason or "ok".
Accepted songs use different stretches of the recording so none is a near-duplicate of another.
"""
from __future__ import annotations

import copy
import gzip
import io
import json
import os
import pickle
import pickletools
import shutil
import struct

import numpy as np
import soundfile as sf

from conftest import SAMPLE, SHARED

VOCADITO = SHARED / "vocadito/Audio/vocadito_1.wav"


def _annotations() -> dict:
    return json.loads((SAMPLE / "dali/annotations/vocadito_1_reupload.json").read_text())["annotations"]


def _first_line() -> dict:
    ann = _annotations()
    keep = {k: [e for e in v if e["time"][1] <= 3.2] for k, v in ann["annot"].items()}
    keep["paragraphs"] = [dict(ann["annot"]["paragraphs"][0], time=[0.66, 3.2])]
    return {**ann, "annot": keep}


def _info(song_id: str, **extra) -> dict:
    return {"id": song_id, "artist": f"hostile {song_id}", "title": song_id,
            "metadata": {"language": "tagalog"}, **extra}


class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def build(root) -> tuple[str, str, dict[str, str]]:
    root = str(root)
    dali, musicnet = os.path.join(root, "dali"), os.path.join(root, "musicnet")
    ann_dir, aud_dir = os.path.join(dali, "annotations"), os.path.join(dali, "audio")
    for d in (ann_dir, aud_dir, *(os.path.join(musicnet, s) for s in ("train_data", "train_labels", "test_data", "test_labels"))):
        os.makedirs(d, exist_ok=True)
    y, sr = sf.read(VOCADITO, dtype="float32")
    clip = y[: 4 * sr]
    windows = iter(range(4, 29, 4))  # distinct 4 s stretches for the songs that must be accepted

    def stretch() -> np.ndarray:
        start = next(windows)
        return y[start * sr: (start + 4) * sr]

    expected: list[tuple[str, str]] = []

    def song(song_id, annotation, audio=None, audio_ext="flac", reason="ok", raw_annotation=None, ext="json"):
        path = os.path.join(ann_dir, f"{song_id}.{ext}")
        if raw_annotation is not None:
            open(path, "wb").write(raw_annotation)
        else:
            json.dump({"info": _info(song_id), "annotations": annotation}, open(path, "w"))
        if audio is not None:
            apath = os.path.join(aud_dir, f"{song_id}.{audio_ext}")
            if isinstance(audio, bytes):
                open(apath, "wb").write(audio)
            else:
                data, rate = audio
                sf.write(apath, data, rate, format=audio_ext.upper() if audio_ext != "wav" else "WAV")
        expected.append((song_id, reason))

    line = _first_line()
    good = (clip, sr)
    # Pickles that try to run code, and pickle / gzip bombs.
    for song_id, payload in [("pickle_os_system", _Call(os.system, "touch /tmp/lyricbeam_hostile_pwned")),
                             ("pickle_eval", _Call(eval, "__import__('os').getpid()")),
                             ("pickle_shutil_rmtree", _Call(shutil.rmtree, "/tmp/lyricbeam_nothing"))]:
        song(song_id, None, good, raw_annotation=gzip.compress(pickle.dumps(payload, protocol=2)),
             reason="unsafe_pickle", ext="gz")
    stack_global = pickletools.optimize(pickle.dumps(_Call(os.getcwd), protocol=4))  # STACK_GLOBAL form
    song("pickle_stack_global", None, good, raw_annotation=gzip.compress(stack_global), reason="unsafe_pickle", ext="gz")
    stacked = b"\x80\x02" + b"]" * 200000 + b"."  # 200k lists on the stack: no Annotations inside
    song("pickle_list_flood", None, good, raw_annotation=gzip.compress(stacked), reason="bad_annotation", ext="gz")
    huge = b"\x80\x02X" + struct.pack("<I", 0xFFFFFFF0) + b"abc"  # claims a 4 GiB string
    song("pickle_huge_length", None, good, raw_annotation=gzip.compress(huge), reason="corrupt_pickle", ext="gz")
    song("gzip_bomb", None, good, raw_annotation=gzip.compress(b"\0" * (80 * 1024 * 1024), 9),
         reason="annotation_too_large", ext="gz")
    whole = gzip.compress(json.dumps({"info": _info("x"), "annotations": line}).encode())
    song("truncated_gzip", None, good, raw_annotation=whole[: len(whole) // 2], reason="corrupt_gzip", ext="gz")
    song("empty_annotation", None, good, raw_annotation=b"", reason="empty_annotation")
    song("json_top_level_list", None, good, raw_annotation=b"[1, 2, 3]", reason="bad_annotation")
    bad = copy.deepcopy(line)
    bad["annot"]["words"][0]["time"] = "0.5-1.0"
    song("json_wrong_types", bad, good, reason="bad_annotation")
    bad = copy.deepcopy(line)
    bad["annot"]["words"][1]["time"][0] = float("nan")
    song("nan_times", bad, good, reason="bad_times")
    bad = copy.deepcopy(line)
    bad["annot"]["words"][1]["time"][0] = -2.0
    song("negative_times", bad, good, reason="negative_times")
    bad = copy.deepcopy(line)
    bad["annot"]["words"][1]["time"], bad["annot"]["words"][2]["time"] = bad["annot"]["words"][2]["time"], bad["annot"]["words"][1]["time"]
    song("non_monotonic_times", bad, good, reason="non_monotonic_times")
    bad = copy.deepcopy(line)
    bad["annot"]["words"][2]["time"] = [bad["annot"]["words"][2]["time"][1], bad["annot"]["words"][2]["time"][0]]
    song("end_before_start", bad, good, reason="end_before_start")
    bad = copy.deepcopy(line)
    bad["annot"]["lines"][0]["time"][1] = 60.0
    song("times_beyond_audio", bad, good, reason="times_beyond_audio")
    latin1 = json.dumps({"info": _info("x"), "annotations": line}, ensure_ascii=False).replace("lobo", "lobø")
    song("lyrics_not_utf8", None, good, raw_annotation=latin1.encode("latin-1"), reason="corrupt_json")
    # Audio that is not what it says.
    song("audio_zero_bytes", line, b"", audio_ext="wav", reason="empty_audio")
    song("audio_is_text", line, b"<html>not audio</html>" * 10, audio_ext="mp3", reason="undecodable_audio")
    mp4 = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + b"\x00" * 2000
    song("audio_mp4_container", line, mp4, audio_ext="wav", reason="unsupported_codec")
    nan_audio = clip.copy()
    nan_audio[1000:1010] = np.nan
    buffer = io.BytesIO()
    sf.write(buffer, nan_audio, sr, format="WAV", subtype="FLOAT")
    song("audio_nan_samples", line, buffer.getvalue(), audio_ext="wav", reason="undecodable_audio")
    silent = np.zeros(3 * 8000, np.float32)
    song("audio_silent", line, (silent, 8000), reason="silent_audio")
    # Hours of audio: refused from the header, before decoding (written fast: silence, 8 kHz, FLAC).
    hours = os.path.join(aud_dir, "audio_three_hours.flac")
    with sf.SoundFile(hours, "w", 8000, 1, format="FLAC") as handle:
        block = np.zeros(8000 * 600, np.float32)
        for _ in range(18):
            handle.write(block)
    song("audio_three_hours", line, None, reason="too_long")
    # Odd but valid audio: accepted.
    import librosa

    song("audio_8khz", line, (librosa.resample(stretch(), orig_sr=sr, target_sr=8000), 8000))
    song("audio_192khz", line, (librosa.resample(stretch(), orig_sr=sr, target_sr=192000), 192000), audio_ext="wav")
    part = stretch()
    song("audio_8_channels", line, (np.stack([part * (0.5 + 0.05 * c) for c in range(8)], axis=1), sr), audio_ext="wav")
    # Lyrics text.
    mixed = copy.deepcopy(line)
    for word, text in zip(mixed["annot"]["words"], ["ако", "ay", "気球", "lobo"]):
        word["text"] = text
    mixed["annot"]["lines"][0]["text"] = "ако ay 気球 lobo"
    song("mixed_script_lyrics", mixed, (stretch(), sr))
    karaoke = copy.deepcopy(line)
    karaoke["annot"]["lines"][0]["text"] = "[00:00.66]a_ko ay/ may <00:02.10>lo^bo"
    song("karaoke_markers", karaoke, (stretch(), sr))
    # Paths: metadata naming paths outside the input, and symlinks out of it.
    outside = copy.deepcopy(line)
    song("metadata_paths_outside", outside, (stretch(), sr))
    meta_path = os.path.join(ann_dir, "metadata_paths_outside.json")
    data = json.load(open(meta_path))
    data["info"]["audio"] = {"url": "../../../etc/passwd", "path": "/etc/passwd", "working": True}
    json.dump(data, open(meta_path, "w"))
    os.symlink("/etc/hostname", os.path.join(aud_dir, "audio_symlink_out.wav"))
    json.dump({"info": _info("audio_symlink_out"), "annotations": line},
              open(os.path.join(ann_dir, "audio_symlink_out.json"), "w"))
    # The audio link is refused at discovery, so its annotation then has no audio.
    expected += [("audio_symlink_out", "unsafe_path"), ("audio_symlink_out", "missing_audio")]
    os.symlink("/etc/hostname", os.path.join(ann_dir, "annotation_symlink_out.json"))
    expected.append(("annotation_symlink_out", "unsafe_path"))
    # Duplicate ids.
    song("duplicate_id", line, (stretch(), sr))
    open(os.path.join(ann_dir, "duplicate_id.gz"), "wb").write(gzip.compress(json.dumps({"info": {}, "annotations": line}).encode()))
    expected.append(("duplicate_id", "duplicate_id"))  # one of its two annotation files is refused
    # MusicNet: header variants, broken CSVs, an id in both train and test, labels without audio.
    labels = (SHARED / "musicnet/labels_variant_header/2382_Beethoven_OP130_StringQuartet.csv").read_text().splitlines()
    header, rows = labels[0], [r for r in labels[1:] if int(r.split(",")[1]) < 30 * 44100][:200]
    renders = [SAMPLE / "musicnet/train_data/2382.wav", SAMPLE / "musicnet/test_data/92382.wav"]

    def music(song_id, text, part="train", audio=None, reason="ok"):
        open(os.path.join(musicnet, f"{part}_labels", f"{song_id}.csv"), "w").write(text)
        if audio is not None:
            shutil.copyfile(renders[audio], os.path.join(musicnet, f"{part}_data", f"{song_id}.wav"))
        expected.append((song_id, reason))
    music("1001", "\n".join([header] + rows) + "\n", audio=0)
    music("1002", "start_time,end_time,instrument,note,start_beat\n" + "\n".join(",".join(r.split(",")[:5]) for r in rows) + "\n",
          reason="bad_labels")
    music("1003", header + ",extra\n" + "\n".join(r + ",x" for r in rows) + "\n", reason="bad_labels")
    music("1004", header + "\n10206,abc,43,46,1,0.0,Quarter\n", reason="bad_labels")
    music("1005", "\n".join([header] + rows) + "\n", reason="missing_audio")
    music("1006", "\n".join([header] + rows) + "\n", audio=1)
    music("1006", "\n".join([header] + rows) + "\n", part="test", reason="duplicate_id")  # same id in test
    meta = (SHARED / "musicnet/musicnet_metadata.csv").read_text(encoding="utf-8")
    meta += '1001,Beethoven,"String Quartet No 13, hostile copy",2. Presto,String Quartet,x,y,OP130,30\r\n'
    open(os.path.join(musicnet, "musicnet_metadata.csv"), "w", newline="").write(meta)
    return dali, musicnet, sorted(expected)


JAMENDO = SHARED / "jamendo"


def _jamendo_stretch(name: str, start: float, seconds: float = 15.0) -> tuple[np.ndarray, int]:
    import librosa

    audio, rate = librosa.load(str(JAMENDO / "audio" / f"{name}.mp3"), sr=44100, mono=False, offset=start,
                               duration=seconds)
    return audio.T, rate


def _lrc_lines(name: str, start: float, seconds: float = 15.0) -> list[tuple[float, str]]:
    """The song's annotated lyric lines that start and end inside [start, start + seconds), shifted to it."""
    import csv

    with open(JAMENDO / "annotations" / "lines" / f"{name}.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(float(r["start_time"]) - start, r["lyrics_line"]) for r in rows
            if float(r["start_time"]) >= start and float(r["end_time"]) < start + seconds - 0.5]


def _stamp(seconds: float) -> str:
    minutes, rest = divmod(round(seconds * 100), 6000)
    return f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]"


def _tones(seconds: float, rate: int = 44100) -> np.ndarray:
    """An instrumental: piano-like notes band-limited at 19 kHz (no voice in it)."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(7)
    t = np.arange(int(0.5 * rate)) / rate
    notes = []
    for _ in range(int(seconds / 0.5)):
        freq = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        notes.append(sum(np.sin(2 * np.pi * freq * h * t) / h ** 1.5 for h in range(1, 6)) * np.exp(-4 * t) * 0.2
                     + rng.normal(0, 1, len(t)) * np.exp(-60 * t) * 0.05)
    audio = np.concatenate(notes) + rng.normal(0, 0.002, len(notes) * len(t))
    return sosfiltfilt(butter(12, 19000, fs=rate, output="sos"), audio).astype(np.float32)


def build_audio_folder(root) -> tuple[str, list[tuple[str, str]]]:
    """An audio folder of hostile inputs (lyrics files broken every way, names in any script,
    links out, a lossy copy beside a lossless file, files without partners) and the outcome
    each must get: (song id, reject reason or "ok")."""
    folder = os.path.join(str(root), "audio_folder")
    os.makedirs(os.path.join(folder, "日本語"), exist_ok=True)
    expected: list[tuple[str, str]] = []

    def audio(stem: str, data: tuple[np.ndarray, int], ext: str = "flac") -> None:
        sf.write(os.path.join(folder, f"{stem}.{ext}"), data[0], data[1], format=ext.upper())

    def lrc(stem: str, lines: list[tuple[float, str]], header: str = "", encoding: str = "utf-8") -> None:
        text = header + "".join(f"{_stamp(t)}{words}\n" for t, words in lines)
        open(os.path.join(folder, f"{stem}.lrc"), "wb").write(text.encode(encoding))

    fantasma, embers = "Fantasma_-_Los_Rombos", "Avercage_-_Embers"
    # Good songs (each from another recording, so none is a near-duplicate of another): LRC, UTF-16
    # LRC under a Japanese name, Latin-1 plain text with a labelled stanza.
    audio("good_lrc", _jamendo_stretch(fantasma, 52.0))
    lrc("good_lrc", _lrc_lines(fantasma, 52.0), "[ar:Los Rombos]\n[ti:Fantasma]\n[la:es]\n")
    expected.append(("good_lrc", "ok"))
    audio("日本語/うた", _jamendo_stretch(embers, 40.0))
    lrc("日本語/うた", _lrc_lines(embers, 40.0), "[ti:うた]\n", encoding="utf-16")
    expected.append(("日本語/うた", "ok"))
    lines = [words for _, words in _lrc_lines("Veränderung_-_doromusis", 40.0)]
    audio("latin1_text", _jamendo_stretch("Veränderung_-_doromusis", 40.0))
    open(os.path.join(folder, "latin1_text.txt"), "wb").write(
        ("[Refrain]\n" + "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n").encode("latin-1"))
    expected.append(("latin1_text", "ok"))
    # One stem, two files: the lossless one is the song, the mp3 its refused duplicate.
    audio("two_formats", _jamendo_stretch("Confession_-_Quesabe", 60.0))
    audio("two_formats", _jamendo_stretch("Confession_-_Quesabe", 60.0), ext="mp3")
    lrc("two_formats", _lrc_lines("Confession_-_Quesabe", 60.0))
    expected += [("two_formats", "ok"), ("two_formats", "duplicate_of=two_formats")]
    # No lyrics file: an instrumental is kept; a sung song is refused (no --transcribe-missing-lyrics).
    audio("instrumental", (_tones(15.0), 44100))
    expected.append(("instrumental", "ok"))
    audio("sung_without_lyrics", _jamendo_stretch(embers, 100.0))
    expected.append(("sung_without_lyrics", "no_lyrics"))
    # Broken lyrics files, each beside a good recording (the same stretch: each is refused
    # before dedup, so they never meet as duplicates).
    bad = _jamendo_stretch(fantasma, 17.0)
    for stem, text, reason in [
        ("no_valid_time", "[ar:x]\nno time tags at all\n[xx:yy]still none\n", "no_valid_times"),
        ("words_go_back", "[00:01.00]<00:01.00>one <00:03.00>two <00:02.00>three\n", "non_monotonic_times"),
        ("negative_after_offset", "[offset:+5000]\n[00:02.00]too early\n", "negative_times"),
        ("beyond_the_audio", "[00:01.00]in time\n[10:00.00]ten minutes in\n", "times_beyond_audio"),
    ]:
        audio(stem, bad)
        open(os.path.join(folder, f"{stem}.lrc"), "w", encoding="utf-8").write(text)
        expected.append((stem, reason))
    audio("huge_lyrics", bad)
    with open(os.path.join(folder, "huge_lyrics.lrc"), "wb") as handle:
        handle.write(b"[00:01.00]la la la\n" * (50 * 1024 * 1024 // 19))
    expected.append(("huge_lyrics", "too_large"))
    audio("binary_lyrics", bad)
    open(os.path.join(folder, "binary_lyrics.lrc"), "wb").write(bytes(range(256)) * 64)
    expected.append(("binary_lyrics", "not_text"))
    # Files without partners, and links out of the folder.
    lrc("lyrics_without_audio", [(1.0, "nobody sings this")])
    expected.append(("lyrics_without_audio", "missing_audio"))
    os.symlink("/etc/hostname", os.path.join(folder, "link_out.flac"))
    expected.append(("link_out", "unsafe_path"))
    os.symlink("/etc", os.path.join(folder, "folder_link_out"))
    expected.append(("folder_link_out", "unsafe_path"))
    return folder, sorted(expected)
