"""Build the bundled sample corpus under sample/ from the real material in ../shared/data.

    python tools/make_sample.py ../shared/data sample

Needs Debian's `fluidsynth` and `timgm6mb-soundfont` and PyPI's `mido` (only to render
the MusicNet-form audio; the pipeline itself needs none of them). See sample/README.md.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np
import soundfile as sf

SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
DALI_ID = "4b196e6c99574dd49ad00d56e132712b"
NOTE_BEATS = {"Whole": 4.0, "Dotted Half": 3.0, "Half": 2.0, "Dotted Quarter": 1.5, "Quarter": 1.0,
              "Dotted Eighth": 0.75, "Eighth": 0.5, "Triplet": 1.0 / 3.0, "Sixteenth": 0.25,
              "Dotted Sixteenth": 0.375, "Thirty Second": 0.125}


def _dali_module():
    # Pickles must name DALI.Annotations.Annotations; register a stand-in module to write one.
    dali = types.ModuleType("DALI")
    annotations = types.ModuleType("DALI.Annotations")

    class Annotations:
        pass

    Annotations.__module__ = "DALI.Annotations"
    Annotations.__qualname__ = "Annotations"
    annotations.Annotations = Annotations
    dali.Annotations = annotations
    sys.modules["DALI"], sys.modules["DALI.Annotations"] = dali, annotations
    return Annotations


def syllable_count(word: str) -> int:
    return max(1, len(re.findall(r"[aeiouAEIOU]+", word)))


def _line_starts(notes: list[tuple[float, float, float]], n_lines: int) -> list[int]:
    # Lines are sung with breaths between them: the n_lines - 1 widest gaps separate lines.
    gaps = [notes[i + 1][0] - (notes[i][0] + notes[i][2]) for i in range(len(notes) - 1)]
    widest = sorted(range(len(gaps)), key=lambda i: gaps[i], reverse=True)[: n_lines - 1]
    return [0] + sorted(i + 1 for i in widest) + [len(notes)]


def _notes_per_word(words: list[str], n_notes: int) -> list[int]:
    # Notes shared among a line's words in proportion to their syllables, at least one each.
    weights = [syllable_count(w) for w in words]
    total, bounds, acc = sum(weights), [0], 0
    for k, weight in enumerate(weights):
        acc += weight
        edge = round(acc / total * n_notes)
        edge = max(edge, bounds[-1] + 1)
        edge = min(edge, n_notes - (len(weights) - k - 1))
        bounds.append(edge)
    bounds[-1] = n_notes
    return [bounds[k + 1] - bounds[k] for k in range(len(weights))]


def vocadito_annotations(data: str) -> dict:
    """DALI horizontal annotations for vocadito_1: real notes (annotator A1), real lyrics.

    Notes are grouped into lines at the widest gaps, then shared among each line's words
    in proportion to their syllables (vowel groups); each note's text is its word.
    """
    notes_path = os.path.join(data, "vocadito/Annotations/Notes/vocadito_1_notesA1.csv")
    notes = [tuple(map(float, row)) for row in csv.reader(open(notes_path))]
    lyrics = open(os.path.join(data, "vocadito/Annotations/Lyrics/vocadito_1_lyrics.txt")).read()
    paragraphs = [[line.split() for line in block.splitlines() if line.strip()]
                  for block in re.split(r"\n\s*\n", lyrics.strip())]
    all_lines = [line for p in paragraphs for line in p]
    starts = _line_starts(notes, len(all_lines))
    out = {"notes": [], "words": [], "lines": [], "paragraphs": []}

    def span(items):
        return [items[0]["time"][0], items[-1]["time"][1]], [min(i["freq"][0] for i in items),
                                                             max(i["freq"][1] for i in items)]

    line_number = 0
    for p_index, paragraph in enumerate(paragraphs):
        line_items = []
        for line in paragraph:
            cursor = starts[line_number]
            counts = _notes_per_word(line, starts[line_number + 1] - cursor)
            line_number += 1
            word_items = []
            for word, count in zip(line, counts):
                note_items = []
                for _ in range(count):
                    onset, hz, duration = notes[cursor]
                    cursor += 1
                    note_items.append({"text": word, "time": [onset, onset + duration], "freq": [hz, hz],
                                       "index": len(out["words"])})
                out["notes"] += note_items
                time, freq = span(note_items)
                word_items.append({"text": word, "time": time, "freq": freq, "index": len(out["lines"])})
                out["words"].append(word_items[-1])
            time, freq = span(word_items)
            line_items.append({"text": " ".join(line), "time": time, "freq": freq, "index": p_index})
            out["lines"].append(line_items[-1])
        time, freq = span(line_items)
        out["paragraphs"].append({"text": " / ".join(li["text"] for li in line_items), "time": time,
                                  "freq": freq, "index": -1})
    return {"type": "horizontal", "annot": out, "annot_param": {"fr": 0.0, "offset": 0.0}}


def vocadito_info(song_id: str) -> dict:
    return {"id": song_id, "artist": "vocadito singer S1", "title": "Ako ay may lobo",
            "dataset_version": 1.0, "ground-truth": False, "scores": {"NCC": 1.0, "manual": 1.0},
            "audio": {"url": "vocadito_1.wav", "path": "None", "working": True},
            "metadata": {"album": "vocadito", "release_date": "2021", "genres": ["A cappella"],
                         "language": "tagalog"}}


def write_pickle(path: str, info: dict, annotations: dict) -> None:
    cls = _dali_module()
    obj = cls()
    obj.__dict__.update({"info": info, "annotations": annotations, "errors": None})
    with gzip.open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def write_json(path: str, info: dict, annotations: dict) -> None:
    with open(path, "w") as handle:
        json.dump({"info": info, "annotations": annotations}, handle)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo lyricbeam-sample-pwned > /tmp/lyricbeam_pwned",))


def shift_annotations(annotations: dict, seconds: float) -> dict:
    """A copy of `annotations` with every time moved by `seconds` (clamped at 0)."""
    out = json.loads(json.dumps(annotations))
    for level in out["annot"].values():
        for event in level:
            event["time"] = [max(0.0, t + seconds) for t in event["time"]]
    return out


def render_musicnet(labels: list[list[str]], first: float, last: float, out_wav: str) -> list[list[str]]:
    """Render the notes sounding in [first, last) s with a GM soundfont; return shifted rows."""
    import mido

    rate = 44100
    rows = [r for r in labels if int(r[0]) / rate < last and int(r[1]) / rate > first]
    events = []
    channels = {}
    for start, end, program, pitch, *_ in rows:
        program = int(program)
        channel = channels.setdefault(program, len(channels))
        s = max(int(start) / rate, first) - first
        e = min(int(end) / rate, last) - first
        events += [(s, 1, channel, int(pitch)), (e, 0, channel, int(pitch))]
    midi = mido.MidiFile(ticks_per_beat=1000)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 1 tick = 0.5 ms
    for program, channel in channels.items():
        track.append(mido.Message("program_change", program=program - 1, channel=channel, time=0))
    now = 0
    for t, on, channel, pitch in sorted(events):
        tick = int(round(t * 2000))
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=90 if on else 0, channel=channel, time=tick - now))
        now = tick
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = os.path.join(tmp, "x.mid"), os.path.join(tmp, "x.wav")
        midi.save(mid)
        subprocess.run(["fluidsynth", "-ni", "-g", "0.8", "-r", str(rate), "-F", wav, SOUNDFONT, mid],
                       check=True, capture_output=True)
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(axis=1)[: int((last - first) * rate)]
    y = y / max(1e-9, np.abs(y).max()) * 0.7
    sf.write(out_wav, y, rate, subtype="PCM_16")
    shift = int(round(first * rate))
    return [[str(max(int(r[0]) - shift, 0)), str(min(int(r[1]) - shift, int((last - first) * rate)))] + r[2:]
            for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shared_data")
    parser.add_argument("out")
    args = parser.parse_args()
    data, out = args.shared_data, args.out
    for sub in ("dali", "musicnet"):  # sample/README.md stays
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    ann, aud = os.path.join(out, "dali/annotations"), os.path.join(out, "dali/audio")
    os.makedirs(ann)
    os.makedirs(aud)
    fixture = os.path.join(data, "dali/mirdata_fixture")
    shutil.copy(os.path.join(fixture, f"annotations/{DALI_ID}.gz"), ann)
    shutil.copy(os.path.join(fixture, f"audio/{DALI_ID}.mp3"), aud)  # a float32 WAV, as shipped

    voc = vocadito_annotations(data)
    write_pickle(os.path.join(ann, "vocadito_1.gz"), vocadito_info("vocadito_1"), voc)
    y, sr = sf.read(os.path.join(data, "vocadito/Audio/vocadito_1.wav"), dtype="int16")
    sf.write(os.path.join(aud, "vocadito_1.flac"), y, sr, subtype="PCM_16")
    # The same recording again, in another container and annotation form: an exact duplicate.
    write_json(os.path.join(ann, "vocadito_1_reupload.json"), vocadito_info("vocadito_1_reupload"), voc)
    shutil.copy(os.path.join(data, "vocadito/Audio/vocadito_1.wav"), os.path.join(aud, "vocadito_1_reupload.wav"))

    metadata = json.load(open(os.path.join(fixture, "dali_metadata.json")))
    metadata["vocadito_1"] = vocadito_info("vocadito_1")
    metadata["vocadito_1_reupload"] = vocadito_info("vocadito_1_reupload")
    json.dump(metadata, open(os.path.join(out, "dali/dali_metadata.json"), "w"), indent=2)

    # Deliberately bad inputs, each expected to be rejected with its own reason.
    first_line = {"type": "horizontal", "annot_param": {"fr": 0.0, "offset": 0.0},
                  "annot": {k: [dict(e) for e in v if k == "paragraphs" or e["time"][1] <= 3.2]
                            for k, v in voc["annot"].items()}}
    first_line["annot"]["paragraphs"] = first_line["annot"]["paragraphs"][:1]
    excerpt = y[: int(4.0 * sr)]
    bad_times = json.loads(json.dumps(first_line))
    bad_times["annot"]["words"][1]["time"][0] = -0.5
    write_json(os.path.join(ann, "bad_negative_times.json"), vocadito_info("bad_negative_times"), bad_times)
    sf.write(os.path.join(aud, "bad_negative_times.flac"), excerpt, sr, subtype="PCM_16")
    reversed_times = json.loads(json.dumps(first_line))
    reversed_times["annot"]["words"][2]["time"], reversed_times["annot"]["words"][3]["time"] = (
        reversed_times["annot"]["words"][3]["time"], reversed_times["annot"]["words"][2]["time"])
    write_json(os.path.join(ann, "bad_non_monotonic.json"), vocadito_info("bad_non_monotonic"), reversed_times)
    sf.write(os.path.join(aud, "bad_non_monotonic.flac"), excerpt[::-1].copy(), sr, subtype="PCM_16")
    write_json(os.path.join(ann, "bad_silent.json"), vocadito_info("bad_silent"), first_line)
    sf.write(os.path.join(aud, "bad_silent.wav"), np.zeros(3 * 16000, np.int16), 16000)
    write_json(os.path.join(ann, "bad_too_short.json"), vocadito_info("bad_too_short"), first_line)
    sf.write(os.path.join(aud, "bad_too_short.flac"), y[int(1.0 * sr): int(1.5 * sr)], sr, subtype="PCM_16")
    write_json(os.path.join(ann, "bad_not_audio.json"), vocadito_info("bad_not_audio"), first_line)
    with open(os.path.join(aud, "bad_not_audio.mp3"), "w") as handle:
        handle.write("This is a text file with an .mp3 name, not audio.\n")
    write_json(os.path.join(ann, "bad_missing_audio.json"), vocadito_info("bad_missing_audio"), first_line)
    sf.write(os.path.join(aud, "bad_orphan_audio.flac"), y[int(8 * sr): int(12 * sr)], sr, subtype="PCM_16")
    with gzip.open(os.path.join(ann, "bad_evil_pickle.gz"), "wb") as handle:
        pickle.dump(_Evil(), handle, protocol=2)
    good = io.BytesIO()
    with gzip.GzipFile(fileobj=good, mode="wb") as handle:
        pickle.dump({"info": {}, "annotations": voc}, handle, protocol=2)
    with open(os.path.join(ann, "bad_truncated.gz"), "wb") as handle:
        handle.write(good.getvalue()[: len(good.getvalue()) // 2])

    # Near-duplicates, versions and quality failures, all cut from the same real material.
    voc_info = lambda song_id, **kw: {**vocadito_info(song_id), **kw}
    mono = y.astype(np.float32) / 32768.0
    shifted = shift_annotations(voc, -1.5)
    with tempfile.TemporaryDirectory() as tmp:  # re-encoded as MP3 by ffmpeg, first 1.5 s trimmed
        src = os.path.join(tmp, "x.wav")
        sf.write(src, mono[int(1.5 * sr):], sr, subtype="PCM_16")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", src, "-b:a", "96k",
                        os.path.join(aud, "vocadito_1_mp3_trimmed.mp3")], check=True)
    write_json(os.path.join(ann, "vocadito_1_mp3_trimmed.json"), voc_info("vocadito_1_mp3_trimmed"), shifted)
    import librosa

    cover = librosa.effects.pitch_shift(mono, sr=sr, n_steps=3)  # a "version": same lyrics, other audio
    write_json(os.path.join(ann, "vocadito_1_cover.json"),
               voc_info("vocadito_1_cover", artist="lyricbeam cover singer", title="Ako ay may lobo (cover)"), voc)
    sf.write(os.path.join(aud, "vocadito_1_cover.flac"), cover, sr, subtype="PCM_16")
    reversed_audio = mono[::-1].copy()
    write_json(os.path.join(ann, "bad_clipped.json"), vocadito_info("bad_clipped"), voc)
    sf.write(os.path.join(aud, "bad_clipped.flac"), np.clip(reversed_audio * 12, -1, 1), sr, subtype="PCM_16")
    low = librosa.resample(librosa.resample(reversed_audio, orig_sr=sr, target_sr=8000), orig_sr=8000, target_sr=sr)
    write_json(os.path.join(ann, "bad_upsampled.json"), vocadito_info("bad_upsampled"), voc)
    sf.write(os.path.join(aud, "bad_upsampled.flac"), low, sr, subtype="PCM_16")
    write_json(os.path.join(ann, "bad_language.json"),
               {**vocadito_info("bad_language"), "metadata": {"language": "german"}}, voc)
    sf.write(os.path.join(aud, "bad_language.flac"), librosa.effects.pitch_shift(mono, sr=sr, n_steps=-4), sr,
             subtype="PCM_16")
    dense = json.loads(json.dumps(voc))
    for level in dense["annot"].values():
        for event in level:
            event["time"] = [t / 12.0 for t in event["time"]]  # 33 words in under 3 s
    write_json(os.path.join(ann, "bad_word_density.json"), vocadito_info("bad_word_density"), dense)
    sf.write(os.path.join(aud, "bad_word_density.flac"), librosa.effects.pitch_shift(mono, sr=sr, n_steps=5), sr,
             subtype="PCM_16")

    # MusicNet form: audio rendered from the real labels of recording 2382 (first and third
    # 30 s), in both label header variants, plus a label file with a missing column.
    mn = os.path.join(out, "musicnet")
    for sub in ("train_data", "train_labels", "test_data", "test_labels"):
        os.makedirs(os.path.join(mn, sub))
    variant = os.path.join(data, "musicnet/labels_variant_header/2382_Beethoven_OP130_StringQuartet.csv")
    header, *labels = list(csv.reader(open(variant)))
    rows = render_musicnet(labels, 0.0, 30.0, os.path.join(mn, "train_data/2382.wav"))
    with open(os.path.join(mn, "train_labels/2382.csv"), "w", newline="") as handle:
        csv.writer(handle).writerows([header] + rows)
    rows = render_musicnet(labels, 60.0, 90.0, os.path.join(mn, "test_data/92382.wav"))
    official = ["start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value"]
    with open(os.path.join(mn, "test_labels/92382.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(official)
        for start, end, program, pitch, measure, beat, value in rows:
            start_beat = (int(measure) - 1 + float(beat)) * 2.0  # 2/4 time
            writer.writerow([start, end, program, pitch, f"{start_beat:.6f}",
                             f"{NOTE_BEATS.get(value, 1.0):.6f}", value])
    # Lyrics over instrumental audio (the rendering, reversed so it is no duplicate).
    strings, rate = sf.read(os.path.join(mn, "train_data/2382.wav"), dtype="int16")
    write_json(os.path.join(ann, "bad_instrumental.json"), vocadito_info("bad_instrumental"), first_line)
    sf.write(os.path.join(aud, "bad_instrumental.flac"), strings[::-1][: 20 * rate].copy(), rate, subtype="PCM_16")
    with open(os.path.join(mn, "train_labels/2999.csv"), "w", newline="") as handle:
        csv.writer(handle).writerows([official[:5], ["10206", "22494", "43", "46", "0.0"]])
    meta = open(os.path.join(data, "musicnet/musicnet_metadata.csv"), newline="").read()
    meta = meta.rstrip("\r\n") + "\r\n" + (
        '92382,Beethoven,String Quartet No 13 in B-flat major,"2. Presto (seconds 60-90, lyricbeam sample)",'
        "String Quartet,lyricbeam render,suzumedia,OP130,30\r\n")
    open(os.path.join(mn, "musicnet_metadata.csv"), "w", newline="").write(meta)
    print(f"sample corpus written to {out}")


if __name__ == "__main__":
    main()
