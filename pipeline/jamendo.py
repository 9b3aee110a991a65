"""JamendoLyrics layout: songs read as DALI-form annotations.

The lyrics-alignment benchmark's layout (`audio/*.mp3`, `lyrics/<song>.txt`,
`annotations/words/<song>.csv`, `JamendoLyrics.csv`) carries real word and line times; read
as DALI-form songs it feeds benchmarks and tests with real audio and real annotations.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil


def song_names(jamendo_dir: str) -> list[str]:
    with open(os.path.join(jamendo_dir, "JamendoLyrics.csv"), encoding="utf-8") as handle:
        return sorted(row["Filepath"][:-4] for row in csv.DictReader(handle))


def song_metadata(jamendo_dir: str) -> dict[str, dict]:
    with open(os.path.join(jamendo_dir, "JamendoLyrics.csv"), encoding="utf-8") as handle:
        return {row["Filepath"][:-4]: row for row in csv.DictReader(handle)}


def dali_annotations(jamendo_dir: str, name: str) -> dict:
    """DALI horizontal `annotations` of one song: words with their annotated times, lines, paragraphs."""
    with open(os.path.join(jamendo_dir, "annotations/words", f"{name}.csv"), encoding="utf-8") as handle:
        times = [(float(r["word_start"]), float(r["word_end"])) for r in csv.DictReader(handle)]
    with open(os.path.join(jamendo_dir, "lyrics", f"{name}.txt"), encoding="utf-8") as handle:
        text = handle.read()
    blocks = [[line.split() for line in b.splitlines() if line.strip()] for b in re.split(r"\n\s*\n", text.strip())]
    words, lines, paragraphs, cursor = [], [], [], 0
    for p, block in enumerate(blocks):
        first_line = len(lines)
        for line in block:
            span = times[cursor: cursor + len(line)]
            for w, (start, end) in zip(line, span):
                # Some annotated word ends overlap the next start; keep end >= start.
                words.append({"text": w, "time": [start, max(start, end)], "freq": [0, 0], "index": len(lines)})
            cursor += len(line)
            lines.append({"text": " ".join(line), "time": [span[0][0], max(s[1] for s in span)],
                          "freq": [0, 0], "index": p})
        paragraphs.append({"text": "", "time": [lines[first_line]["time"][0], lines[-1]["time"][1]],
                           "freq": [0, 0], "index": -1})
    if cursor != len(times):
        raise ValueError(f"{name}: {cursor} lyric words but {len(times)} annotated onsets")
    return {"type": "horizontal", "annot": {"notes": [], "words": words, "lines": lines, "paragraphs": paragraphs},
            "annot_param": {"fr": 0, "offset": 0}}


def write_dali_song(out_dir: str, song_id: str, info: dict, annotations: dict) -> str:
    os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
    path = os.path.join(out_dir, "annotations", f"{song_id}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"info": info, "annotations": annotations}, handle)
    return path


def to_dali_corpus(jamendo_dir: str, out_dir: str) -> list[str]:
    """Write every song as `out_dir/annotations/<id>.json` + `out_dir/audio/<id>.mp3` (a copy)."""
    meta = song_metadata(jamendo_dir)
    os.makedirs(os.path.join(out_dir, "audio"), exist_ok=True)
    ids = []
    for name in song_names(jamendo_dir):
        song_id = re.sub(r"[^A-Za-z0-9]+", "_", name)
        info = {"id": song_id, "artist": meta[name]["Artist"], "title": meta[name]["Title"],
                "metadata": {"language": meta[name]["Language"].lower()}}
        write_dali_song(out_dir, song_id, info, dali_annotations(jamendo_dir, name))
        target = os.path.join(out_dir, "audio", f"{song_id}.mp3")
        if not os.path.exists(target):
            shutil.copyfile(audio_path(jamendo_dir, name), target)
        ids.append(song_id)
    return ids


LYRICS_MODES = ("lrc", "text", "none")


def lrc_stamp(seconds: float) -> str:
    """`[mm:ss.xx]` of a time in seconds."""
    minutes, rest = divmod(round(seconds * 100), 6000)
    return f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]"


def lrc_text(jamendo_dir: str, name: str, title: str = "", artist: str = "") -> str:
    """An LRC file of one song: each lyric line at its annotated first-word onset, stanzas kept
    (a blank line between them), `[ar:]` / `[ti:]` tags."""
    with open(os.path.join(jamendo_dir, "lyrics", f"{name}.txt"), encoding="utf-8") as handle:
        text = handle.read()
    with open(os.path.join(jamendo_dir, "annotations", "words", f"{name}.csv"), encoding="utf-8") as handle:
        onsets = [float(r["word_start"]) for r in csv.DictReader(handle)]
    out, cursor = [f"[ar:{artist}]", f"[ti:{title}]"], 0
    for line in text.splitlines():
        words = line.split()
        if not words:
            out.append("")
            continue
        out.append(f"{lrc_stamp(onsets[cursor])}{' '.join(words)}")
        cursor += len(words)
    if cursor != len(onsets):
        raise ValueError(f"{name}: {cursor} lyric words but {len(onsets)} annotated onsets")
    return "\n".join(out) + "\n"


def to_audio_folder(jamendo_dir: str, out_dir: str, lyrics: str) -> list[str]:
    """Write every song as an audio folder: `<name>.mp3` (a copy), its lyrics as `<name>.lrc`
    (line times from the annotations), `<name>.txt` (the plain lyrics) or none, per `lyrics`,
    and a `metadata.csv` (artist, title, language, genre, licence). Returns the song ids."""
    if lyrics not in LYRICS_MODES:
        raise ValueError(f"lyrics must be one of {LYRICS_MODES}")
    meta = song_metadata(jamendo_dir)
    os.makedirs(out_dir, exist_ok=True)
    names = song_names(jamendo_dir)
    with open(os.path.join(out_dir, "metadata.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "artist", "title", "language", "genre", "licence"])
        for name in names:
            row = meta[name]
            writer.writerow([f"{name}.mp3", row["Artist"], row["Title"], row["Language"].lower(), row["Genre"],
                             row["LicenseType"]])
    for name in names:
        target = os.path.join(out_dir, f"{name}.mp3")
        if not os.path.exists(target):
            shutil.copyfile(audio_path(jamendo_dir, name), target)
        if lyrics == "lrc":
            with open(os.path.join(out_dir, f"{name}.lrc"), "w", encoding="utf-8") as handle:
                handle.write(lrc_text(jamendo_dir, name, meta[name]["Title"], meta[name]["Artist"]))
        elif lyrics == "text":
            shutil.copyfile(os.path.join(jamendo_dir, "lyrics", f"{name}.txt"), os.path.join(out_dir, f"{name}.txt"))
    return names


def audio_path(jamendo_dir: str, name: str) -> str:
    """The song's mp3 (`mp3/` in the official layout, `audio/` in the shared copy)."""
    for folder in ("mp3", "audio"):
        path = os.path.join(jamendo_dir, folder, f"{name}.mp3")
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no audio for {name} under {jamendo_dir}/mp3 or /audio")
