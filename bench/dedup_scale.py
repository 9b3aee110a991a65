"""Scale of near-duplicate candidate generation: time and peak memory for 1k, 10k, 100k songs.

    python bench/dedup_scale.py --sizes 1000 10000 100000 --json bench/results/dedup_scale.json

Synthetic fingerprints (allowed here): each song has `--keys` random 63-bit candidate keys
and `--landmarks` landmark hashes; 10 % of songs are copies of another song that keep 60 %
of its keys and landmarks. Each size runs `AudioNearDedup` (the pipeline's transform) on the
local runner in a fresh process; the table gives wall time, peak RSS, pairs verified and the
growth exponent between sizes (1 = linear, 2 = quadratic).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time



def synthetic_songs(n: int, keys: int, landmarks: int, seed: int = 0):
    import numpy as np

    from lyricbeam.schemas.records import Song
    from lyricbeam.transforms.corpus.fingerprint import Fingerprint

    rng = np.random.default_rng(seed)
    songs = []
    originals = int(n * 0.9)
    for i in range(n):
        if i < originals:
            k = rng.integers(0, 2**63 - 1, size=keys, dtype=np.int64).astype(np.uint64)
            h = rng.integers(0, 2**24, size=landmarks, dtype=np.int64).astype(np.uint32)
            t = np.sort(rng.integers(0, 6000, size=landmarks)).astype(np.int32)
        else:
            src = songs[int(rng.integers(0, originals))].fingerprint
            keep_k = rng.random(len(src.keys)) < 0.6
            keep_h = rng.random(len(src.hashes)) < 0.6
            extra = rng.integers(0, 2**63 - 1, size=int((~keep_k).sum()), dtype=np.int64).astype(np.uint64)
            k = np.concatenate([src.keys[keep_k], extra])
            h, t = src.hashes[keep_h], src.times[keep_h] + 37
        fp = Fingerprint(hashes=h, times=t, keys=np.unique(k), frames=6000)
        songs.append(Song(f"s{i:06d}", "dali", f"s{i:06d}.json", duration=180.0, source_format="flac",
                          source_sample_rate=44100, fingerprint=fp))
    return songs


def run_one(n: int, keys: int, landmarks: int) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from lyricbeam.transforms.corpus.near_dedup import AudioNearDedup, NearDedupConfig

    songs = synthetic_songs(n, keys, landmarks)
    start = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
    out = pipeline | beam.Create(songs, reshuffle=False) | AudioNearDedup(NearDedupConfig())
    out["rejects"] | "CountRejects" >> beam.combiners.Count.Globally() | beam.Map(
        lambda c: print(f"RESULT rejects {c}", flush=True))
    result = pipeline.run()
    result.wait_until_finish()
    wall = time.perf_counter() - start
    checked = 0
    for counter in result.metrics().query()["counters"]:
        if counter.key.metric.name == "pairs_checked":
            checked += counter.committed or counter.attempted or 0
    return {"songs": n, "keys_per_song": keys, "wall_s": wall, "pairs_checked": checked,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "planted_copies": n - int(n * 0.9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--keys", type=int, default=32)
    parser.add_argument("--landmarks", type=int, default=200)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.keys, args.landmarks)), flush=True)
        return
    rows = []
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--keys", str(args.keys),
                               "--landmarks", str(args.landmarks)], capture_output=True, text=True)
        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT {")]
        if not line:
            raise SystemExit(proc.stderr[-3000:])
        row = json.loads(line[0][7:])
        rejects = [l for l in proc.stdout.splitlines() if l.startswith("RESULT rejects")]
        row["near_duplicates_rejected"] = int(rejects[0].split()[-1]) if rejects else 0
        rows.append(row)
        print(f"{n:>8} songs  {row['wall_s']:8.1f} s  {row['peak_rss_mib']:8.0f} MiB  "
              f"{row['pairs_checked']:>8} pairs verified  {row['near_duplicates_rejected']:>7} rejected "
              f"(planted {row['planted_copies']})", flush=True)
    print(f"\n{'songs':>8}{'wall s':>10}{'peak MiB':>10}{'pairs':>10}{'rejected':>10}{'time exp.':>11}{'mem exp.':>10}")
    for i, row in enumerate(rows):
        exp_t = exp_m = ""
        if i:
            prev = rows[i - 1]
            ratio = math.log(row["songs"] / prev["songs"])
            exp_t = f"{math.log(row['wall_s'] / prev['wall_s']) / ratio:.2f}"
            exp_m = f"{math.log(row['peak_rss_mib'] / prev['peak_rss_mib']) / ratio:.2f}"
            row["time_growth_exponent"], row["memory_growth_exponent"] = float(exp_t), float(exp_m)
        print(f"{row['songs']:>8}{row['wall_s']:>10.1f}{row['peak_rss_mib']:>10.0f}{row['pairs_checked']:>10}"
              f"{row['near_duplicates_rejected']:>10}{exp_t:>11}{exp_m:>10}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"keys_per_song": args.keys, "landmarks_per_song": args.landmarks, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
