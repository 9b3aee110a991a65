"""Throughput of the whole pipeline and of each stage, with peak RSS.

    python bench/throughput.py --jamendo ../shared/data/jamendo --copies 3 \
        --workdir /tmp/lyricbeam-bench --json bench/results/throughput.json

Builds a DALI-form corpus from the JamendoLyrics songs (real audio, real word and line
times), `--copies` times each: the original, then pitch-shifted by +2, -2, +4, ... semitones,
so every copy is a different recording to the near-duplicate stage (a gain change would be
caught as a near-duplicate, as it should), adds the bundled sample corpus, runs `lyricbeam run` in this process
on the local runner, and prints audio-seconds per wall-second (whole run), per CPU-second
(= per core), per stage (from the stages' busy-time counters), and peak RSS.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import shutil
import sys
import time


import librosa  # noqa: E402
import soundfile as sf  # noqa: E402

from lyricbeam.pipeline.jamendo import dali_annotations  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def build_corpus(jamendo: str, copies: int, workdir: str) -> float:
    meta = {r["Filepath"][:-4]: r for r in csv.DictReader(open(os.path.join(jamendo, "JamendoLyrics.csv")))}
    dali = os.path.join(workdir, "corpus", "dali")
    os.makedirs(os.path.join(dali, "annotations"))
    os.makedirs(os.path.join(dali, "audio"))
    seconds = 0.0
    for name in sorted(meta):
        annotations = dali_annotations(jamendo, name)
        y, sr = sf.read(os.path.join(jamendo, "audio", f"{name}.mp3"), dtype="float32")
        for copy in range(copies):
            steps = 0 if copy == 0 else (2 * ((copy + 1) // 2)) * (1 if copy % 2 else -1)
            song_id = f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}_pitch{steps:+d}"
            info = {"id": song_id, "artist": meta[name]["Artist"], "title": meta[name]["Title"],
                    "metadata": {"language": meta[name]["Language"].lower()}}
            json.dump({"info": info, "annotations": annotations},
                      open(os.path.join(dali, "annotations", f"{song_id}.json"), "w"))
            audio = y if steps == 0 else librosa.effects.pitch_shift(y.mean(axis=1), sr=sr, n_steps=steps)
            sf.write(os.path.join(dali, "audio", f"{song_id}.flac"), audio, sr, subtype="PCM_16")
            seconds += len(y) / sr
    for sub in ("annotations", "audio"):
        for f in os.listdir(os.path.join(ROOT, "sample/dali", sub)):
            shutil.copy(os.path.join(ROOT, "sample/dali", sub, f), os.path.join(dali, sub, f))
    shutil.copytree(os.path.join(ROOT, "sample/musicnet"), os.path.join(workdir, "corpus", "musicnet"))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/lyricbeam-bench")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    build_corpus(args.jamendo, args.copies, args.workdir)
    from lyricbeam.pipeline.cli import main as lyricbeam

    corpus = os.path.join(args.workdir, "corpus")
    output = os.path.join(args.workdir, "out")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    code = lyricbeam(["run", "--no-cache", "--direct_running_mode", "in_memory",
                      "--config", os.path.join(ROOT, "configs/default.yaml"),
                      "--dali-dir", os.path.join(corpus, "dali"), "--musicnet-dir", os.path.join(corpus, "musicnet"),
                      "--output", output])
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    assert code == 0, code
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    stats = json.load(open(os.path.join(output, "stats.json")))
    audio = stats["audio_hours"] * 3600
    stages = {}
    for stage, counters in stats["stages"].items():
        if counters.get("busy_ms") and counters.get("audio_ms"):
            stages[stage] = {"audio_s": counters["audio_ms"] / 1000, "busy_s": counters["busy_ms"] / 1000,
                             "x_real_time": counters["audio_ms"] / counters["busy_ms"]}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "runner": "DirectRunner (FnApiRunner in_memory, 1 worker process)",
        "songs_in": stats["songs_in"], "songs_out": stats["songs_out"], "rejected": stats["rejected"],
        "audio_seconds_out": audio, "wall_s": wall, "cpu_s": cpu,
        "x_real_time_wall": audio / wall, "x_real_time_per_cpu_second": audio / cpu,
        "peak_rss_mib": cpu1.ru_maxrss / 1024, "stages": stages,
    }
    print("\nlyricbeam throughput benchmark")
    print(f"corpus: {stats['songs_in']} songs in, {stats['songs_out']} out, {audio / 60:.1f} min of audio out")
    print(f"{'measure':<44}{'value':>12}")
    for label, value in [("wall time (s)", wall), ("CPU time (s)", cpu),
                         ("audio-s per wall-s (whole run)", audio / wall),
                         ("audio-s per CPU-s (whole run, per core)", audio / cpu),
                         ("peak RSS (MiB)", cpu1.ru_maxrss / 1024)]:
        print(f"{label:<44}{value:>12.1f}")
    print(f"\n{'stage':<12}{'audio (s)':>12}{'busy (s)':>12}{'x real time':>14}")
    for stage, row in stages.items():
        print(f"{stage:<12}{row['audio_s']:>12.1f}{row['busy_s']:>12.1f}{row['x_real_time']:>14.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
