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


def overridden_config(overrides: list[str], workdir: str) -> str:
    """configs/default.yaml with `section.key=value` overrides, written beside the corpus (paths kept absolute)."""
    import yaml

    path = os.path.join(ROOT, "configs/default.yaml")
    if not overrides:
        return path
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    for item in overrides:
        name, value = item.split("=", 1)
        section, key = name.split(".", 1)
        config.setdefault(section, {})[key] = yaml.safe_load(value)
    out = os.path.join(workdir, "config.yaml")
    with open(out, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    return out


def stored_audio_bytes(output: str, audio_seconds: float) -> dict:
    """Bytes of the `audio` column per hour of audio out, in each config."""
    import pyarrow.parquet as pq

    result = {}
    for config in ("songs", "segments"):
        total = 0
        for name in sorted(os.listdir(os.path.join(output, "data", config))):
            column = pq.read_table(os.path.join(output, "data", config, name), columns=["audio"]).column("audio")
            total += sum(len(row["bytes"] or b"") for row in column.to_pylist())
        result[f"{config}_audio_bytes"] = total
        result[f"{config}_audio_mb_per_hour"] = total / 1e6 / (audio_seconds / 3600)
    return result


def loudness_meter_speed(audio_dir: str) -> float:
    """Audio-seconds per second of the BS.1770 meter (integrated, range, true peak) over the corpus files, at their rate and channels."""
    from lyricbeam.transforms.audio.loudness import LoudnessMeter

    seconds, busy = 0.0, 0.0
    for name in sorted(os.listdir(audio_dir)):
        try:
            y, sr = sf.read(os.path.join(audio_dir, name), dtype="float32", always_2d=True)
        except Exception:  # the sample corpus's deliberately broken files
            continue
        start = time.perf_counter()
        meter = LoudnessMeter(sr, y.shape[1])
        for first in range(0, len(y), 30 * sr):
            meter.add(y[first: first + 30 * sr])
        meter.result()
        busy += time.perf_counter() - start
        seconds += len(y) / sr
    return seconds / busy if busy else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/lyricbeam-bench")
    parser.add_argument("--json", default="")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a value of configs/default.yaml (YAML value), e.g. audio.store_channels=1")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    build_corpus(args.jamendo, args.copies, args.workdir)
    from lyricbeam.pipeline.cli import main as lyricbeam

    corpus = os.path.join(args.workdir, "corpus")
    output = os.path.join(args.workdir, "out")
    config_path = overridden_config(args.set, args.workdir)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    code = lyricbeam(["run", "--no-cache", "--direct_running_mode", "in_memory",
                      "--config", config_path,
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
        "peak_rss_mib": cpu1.ru_maxrss / 1024, "stages": stages, "overrides": args.set,
        **stored_audio_bytes(output, audio),
        "loudness_meter_x_real_time": loudness_meter_speed(os.path.join(corpus, "dali", "audio")),
    }
    print("\nlyricbeam throughput benchmark")
    print(f"corpus: {stats['songs_in']} songs in, {stats['songs_out']} out, {audio / 60:.1f} min of audio out")
    print(f"{'measure':<44}{'value':>12}")
    for label, value in [("wall time (s)", wall), ("CPU time (s)", cpu),
                         ("audio-s per wall-s (whole run)", audio / wall),
                         ("audio-s per CPU-s (whole run, per core)", audio / cpu),
                         ("peak RSS (MiB)", cpu1.ru_maxrss / 1024)]:
        print(f"{label:<44}{value:>12.1f}")
    print(f"{'stored audio, songs (MB per hour)':<44}{result['songs_audio_mb_per_hour']:>12.1f}")
    print(f"{'stored audio, segments (MB per hour)':<44}{result['segments_audio_mb_per_hour']:>12.1f}")
    print(f"{'loudness meter (x real time, one core)':<44}{result['loudness_meter_x_real_time']:>12.1f}")
    print(f"\n{'stage':<12}{'audio (s)':>12}{'busy (s)':>12}{'x real time':>14}")
    for stage, row in stages.items():
        print(f"{stage:<12}{row['audio_s']:>12.1f}{row['busy_s']:>12.1f}{row['x_real_time']:>14.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
