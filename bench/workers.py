"""Local scaling: the whole pipeline with 1 and 2 worker processes, peak RSS per worker, and a
Dataflow cost estimate for DALI v1 at the measured rate.

    python bench/workers.py --jamendo ../shared/data/jamendo \
        --dali-metadata ../shared/data/dali/dali_v1_metadata.json --json bench/results/workers.json

Corpus: as bench/throughput.py (JamendoLyrics × 3 gains + the sample, ~39 min out). Each run
is `lyricbeam run` in its own process (FnApiRunner multi_processing, `--direct_num_workers N`,
`--no-cache`); peak RSS per worker is the largest worker process's maximum RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def run(corpus: str, out: str, workers: int) -> dict:
    from measure import lyricbeam_command, run_measured

    command = lyricbeam_command(
        "run", "--config", os.path.join(ROOT, "configs/default.yaml"),
        "--dali-dir", os.path.join(corpus, "dali"), "--musicnet-dir", os.path.join(corpus, "musicnet"),
        "--output", out, "--no-cache", "--direct_running_mode", "multi_processing",
        "--direct_num_workers", str(workers))
    measured = run_measured(command, ROOT)
    stats = json.load(open(os.path.join(out, "stats.json")))
    audio = stats["audio_hours"] * 3600
    wall = measured["wall_s"]
    return {"workers": workers, "wall_s": wall, "cpu_s": measured["cpu_s"], "audio_s": audio,
            "x_real_time": audio / wall, "x_real_time_per_worker": audio / wall / workers,
            "peak_rss_mib_largest_process": measured["peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--dali-metadata", required=True)
    parser.add_argument("--workdir", default="/tmp/lyricbeam-workers")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    import shutil

    import soundfile as sf

    from throughput import build_corpus

    shutil.rmtree(args.workdir, ignore_errors=True)
    build_corpus(args.jamendo, 3, args.workdir)
    corpus = os.path.join(args.workdir, "corpus")
    rows = [run(corpus, os.path.join(args.workdir, f"out{n}"), n) for n in (1, 2)]
    scaling = rows[1]["x_real_time"] / rows[0]["x_real_time"]
    songs = len(json.load(open(args.dali_metadata)))
    jamendo_minutes = [sf.info(os.path.join(args.jamendo, "audio", f)).duration / 60
                       for f in os.listdir(os.path.join(args.jamendo, "audio"))]
    mean_minutes = sum(jamendo_minutes) / len(jamendo_minutes)
    per_core = rows[0]["audio_s"] / rows[0]["cpu_s"]  # audio-seconds per CPU-second, 1 worker run
    estimates = {}
    for minutes in (mean_minutes, 4.0):
        audio_hours = songs * minutes / 60
        estimates[f"{minutes:.2f} min/song"] = {"audio_hours": audio_hours, "vcpu_hours": audio_hours / per_core}
    print(f"\n{'workers':>8}{'wall s':>9}{'CPU s':>8}{'audio s':>9}{'x real time':>13}{'x RT / worker':>15}"
          f"{'audio-s/CPU-s':>15}{'peak RSS MiB':>14}")
    for r in rows:
        print(f"{r['workers']:>8}{r['wall_s']:>9.1f}{r['cpu_s']:>8.1f}{r['audio_s']:>9.0f}{r['x_real_time']:>13.1f}"
              f"{r['x_real_time_per_worker']:>15.1f}{r['audio_s'] / r['cpu_s']:>15.1f}{r['peak_rss_mib_largest_process']:>14.0f}")
    print(f"\nscaling 1 -> 2 workers: {scaling:.2f}x (ideal 2.00x on this 2-core machine)")
    print(f"DALI v1: {songs} songs. DALI's metadata has no durations; at the JamendoLyrics mean "
          f"({mean_minutes:.2f} min) and at 4 min per song:")
    for label, e in estimates.items():
        print(f"  {label}: {e['audio_hours']:.0f} h of audio -> {e['vcpu_hours']:.1f} vCPU-hours at "
              f"{per_core:.1f} audio-s per CPU-s (measured, 1-worker run, driver included); alignment not included")
    if args.json:
        json.dump({"runs": rows, "scaling_1_to_2": scaling, "dali_v1_songs": songs,
                   "dali_v1_estimates": estimates}, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
