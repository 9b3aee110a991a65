"""The shared JamendoLyrics songs as an audio folder, three ways, through `lyricbeam run`; word
onsets read back from the shards and scored against the human annotations.

    python bench/audiofolder_jamendo.py --jamendo ../shared/data/jamendo --work /tmp/audiofolder_jamendo \
        --json bench/results/audiofolder_jamendo.json

- `lrc`: each lyric line at its annotated first-word onset (`.lrc` beside the audio);
- `text`: the plain lyrics (`.txt`), no times: lines placed from transcripts;
- `none`: no lyrics file, `--transcribe-missing-lyrics`: the transcript becomes the lyrics,
  scored by its WER against the real lyrics.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

from lyricbeam.pipeline.eval_alignment import onset_metrics, read_song
from lyricbeam.pipeline.jamendo import LYRICS_MODES, song_names, to_audio_folder
from lyricbeam.transforms.alignment.transcribe import word_error_rate

from measure import cpu_model  # noqa: E402  (bench/ is the script's own folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_mode(jamendo: str, work: str, mode: str) -> dict:
    folder, output = os.path.join(work, f"folder_{mode}"), os.path.join(work, f"out_{mode}")
    shutil.rmtree(folder, ignore_errors=True)
    to_audio_folder(jamendo, folder, mode)
    command = [sys.executable, "-m", "lyricbeam.pipeline.cli", "run", "--config",
               os.path.join(ROOT, "configs", "default.yaml"), "--audio-dir", folder, "--output", output]
    if mode == "none":
        command.append("--transcribe-missing-lyrics")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    rows = {r["song_id"]: r for r in pq.read_table(os.path.join(output, "data", "songs"), columns=[
        "song_id", "duration", "text", "lyrics_source", "alignment"]).to_pylist()}
    per_song, audio_s = {}, 0.0
    for name in song_names(jamendo):
        row = rows.get(name)
        if row is None:
            per_song[name] = {"written": False}
            continue
        audio_s += row["duration"]
        reference = read_song(jamendo, name)
        alignment = row["alignment"] or {}
        result = {"written": True, "lyrics_source": row["lyrics_source"],
                  "line_placement": alignment.get("line_placement"), "suspect": alignment.get("suspect"),
                  "placement_score": alignment.get("placement_score")}
        if mode == "none":
            truth = [w for line in reference["lines"] for w in line]
            result["transcript_wer"] = word_error_rate(truth, row["text"].split())
            result["transcript_words"] = len(row["text"].split())
        else:
            predicted = [w["start"] for w in alignment.get("words") or []]
            result.update(onset_metrics(reference["word_onsets"], predicted))
        per_song[name] = result
    scored = [r for r in per_song.values() if r.get("written")]
    summary = {"songs_written": len(scored), "songs": len(per_song), "wall_s": round(wall, 1),
               "audio_s": round(audio_s, 1)}
    for key in ("aae", "pco", "transcript_wer"):
        values = [r[key] for r in scored if key in r]
        if values:
            summary[key] = round(float(np.mean(values)), 3)
    return {"summary": summary, "songs": per_song}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--work", default="/tmp/audiofolder_jamendo")
    parser.add_argument("--modes", default=",".join(LYRICS_MODES))
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = {"cpu": cpu_model(), "modes": {}}
    for mode in args.modes.split(","):
        results["modes"][mode] = run_mode(args.jamendo, args.work, mode)
        print(mode, json.dumps(results["modes"][mode]["summary"]), flush=True)
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
