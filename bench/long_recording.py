"""Peak memory for one 60-minute recording: the worker must not hold the whole decoded file.

    python bench/long_recording.py --jamendo ../shared/data/jamendo --minutes 15 60 --json bench/results/long_recording.json

Builds one DALI-form song whose audio is the four JamendoLyrics mixes repeated to `--minutes`
(44.1 kHz stereo 16-bit WAV, ~10 MB per minute) with the first song's real word times, runs
`lyricbeam run` on it with one worker process, and prints wall time and the peak RSS of the
largest process (the worker), next to the size of the WAV and of its decoded float32 samples.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build_song(jamendo: str, workdir: str, minutes: float) -> tuple[str, str, int]:
    """A DALI-form song of `minutes` of real mixes; returns (dali dir, wav path, frames)."""
    import soundfile as sf

    from lyricbeam.pipeline.jamendo import dali_annotations, song_names, write_dali_song

    shutil.rmtree(workdir, ignore_errors=True)
    dali = os.path.join(workdir, "dali")
    os.makedirs(os.path.join(dali, "audio"))
    names = song_names(jamendo)
    wav = os.path.join(dali, "audio", "long_mix.wav")
    target = int(minutes * 60 * 44100)
    written = 0
    with sf.SoundFile(wav, "w", 44100, 2, subtype="PCM_16") as out:
        while written < target:
            for name in names:
                y, _ = sf.read(os.path.join(jamendo, "audio", f"{name}.mp3"), dtype="float32")
                y = y[: target - written]
                out.write(y)
                written += len(y)
                if written >= target:
                    break
    write_dali_song(dali, "long_mix", {"id": "long_mix", "artist": "JamendoLyrics medley", "title": "long mix",
                                       "metadata": {"language": "english"}}, dali_annotations(jamendo, names[0]))
    return dali, wav, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--minutes", type=float, nargs="+", default=[15.0, 60.0])
    parser.add_argument("--workdir", default="/tmp/lyricbeam-long")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    from measure import lyricbeam_command, run_measured

    results = []
    for minutes in args.minutes:
        dali, wav, target = build_song(args.jamendo, args.workdir, minutes)
        config = os.path.join(args.workdir, "config.yaml")
        with open(config, "w") as handle:
            handle.write("audio: {max_duration_s: 7200}\n")
        out_dir = os.path.join(args.workdir, "out")
        measured = run_measured(lyricbeam_command(
            "run", "--config", config, "--dali-dir", dali, "--output", out_dir, "--no-cache",
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "1"), ROOT)
        stats = json.load(open(os.path.join(out_dir, "stats.json")))
        results.append({"minutes": minutes, "wav_mib": os.path.getsize(wav) / 2**20,
                        "decoded_mono_16k_float32_mib": target / 44100 * 16000 * 4 / 2**20,
                        "songs_out": stats["songs_out"], "rejects": stats["rejects_by_reason"],
                        "wall_s": measured["wall_s"], "cpu_s": measured["cpu_s"],
                        "peak_rss_mib_largest_process": measured["peak_rss_mib"]})
    print("\nminutes | WAV MiB | 16 kHz mono float32 MiB | songs out | wall s | peak RSS MiB (largest process)")
    for r in results:
        print(f"{r['minutes']:7.0f} | {r['wav_mib']:7.0f} | {r['decoded_mono_16k_float32_mib']:23.0f} | "
              f"{r['songs_out']:9d} | {r['wall_s']:6.1f} | {r['peak_rss_mib_largest_process']:.0f}")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        slope = (b["peak_rss_mib_largest_process"] - a["peak_rss_mib_largest_process"]) / (b["minutes"] - a["minutes"])
        print(f"peak RSS grows {slope:.1f} MiB per extra minute of audio")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
