"""Peak memory for one 60-minute recording: the worker must not hold the whole decoded file.

    python bench/long_recording.py --jamendo ../shared/data/jamendo --minutes 60 --json bench/results/long_recording.json

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
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jamendo", required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--workdir", default="/tmp/lyricbeam-long")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    import soundfile as sf

    from transforms.jamendo import dali_annotations, song_names, write_dali_song

    shutil.rmtree(args.workdir, ignore_errors=True)
    dali = os.path.join(args.workdir, "dali")
    os.makedirs(os.path.join(dali, "audio"))
    names = song_names(args.jamendo)
    wav = os.path.join(dali, "audio", "long_mix.wav")
    target = int(args.minutes * 60 * 44100)
    written = 0
    with sf.SoundFile(wav, "w", 44100, 2, subtype="PCM_16") as out:
        while written < target:
            for name in names:
                y, _ = sf.read(os.path.join(args.jamendo, "audio", f"{name}.mp3"), dtype="float32")
                y = y[: target - written]
                out.write(y)
                written += len(y)
                if written >= target:
                    break
    write_dali_song(dali, "long_mix", {"id": "long_mix", "artist": "JamendoLyrics medley", "title": "long mix",
                                       "metadata": {"language": "english"}}, dali_annotations(args.jamendo, names[0]))
    config = os.path.join(args.workdir, "config.yaml")
    with open(config, "w") as handle:
        handle.write("audio: {max_duration_s: 7200}\n")
    out_dir = os.path.join(args.workdir, "out")
    from measure import lyricbeam_command, run_measured

    measured = run_measured(lyricbeam_command(
        "run", "--config", config, "--dali-dir", dali, "--output", out_dir, "--no-cache",
        "--direct_running_mode", "multi_processing", "--direct_num_workers", "1"), ROOT)
    wall, rss = measured["wall_s"], measured["peak_rss_mib"]
    stats = json.load(open(os.path.join(out_dir, "stats.json")))
    result = {"minutes": args.minutes, "wav_mib": os.path.getsize(wav) / 2**20,
              "decoded_float32_stereo_mib": target * 2 * 4 / 2**20, "songs_out": stats["songs_out"],
              "rejects": stats["rejects_by_reason"], "wall_s": wall, "peak_rss_mib_largest_process": rss}
    print(f"\n{args.minutes:.0f}-minute recording: WAV {result['wav_mib']:.0f} MiB, decoded float32 stereo would be "
          f"{result['decoded_float32_stereo_mib']:.0f} MiB")
    print(f"songs out {stats['songs_out']}, rejects {stats['rejects_by_reason']}, wall {wall:.1f} s, "
          f"peak RSS of the largest process {rss:.0f} MiB")
    if args.json:
        json.dump(result, open(args.json, "w"), indent=2)



if __name__ == "__main__":
    main()
