"""Pick the f0 tracker by measurement: accuracy on vocadito's F0 annotation, and speed.

    python bench/f0_trackers.py ../shared/data/vocadito [--json bench/results/f0_trackers.json]

Prints raw pitch accuracy (RPA, within 50 cents on reference-voiced frames), raw chroma
accuracy, voicing recall / false alarm, overall accuracy, and speed as x real time on one
core, for each candidate tracker at a 10 ms hop on 16 kHz audio (the pipeline's defaults).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from lyricbeam.transforms.features.acoustic import track_f0  # noqa: E402

SR = 16000
HOP = 160


def score(times, f0, voiced, ref_t, ref_f0):
    est_f0 = np.interp(ref_t, times, np.where(voiced, f0, 0.0))
    est_v = np.interp(ref_t, times, voiced.astype(float)) >= 0.5
    ref_v = ref_f0 > 0
    both = ref_v & est_v & (est_f0 > 0)
    cents = np.full(ref_t.shape, np.inf)
    cents[both] = 1200 * np.abs(np.log2(est_f0[both] / ref_f0[both]))
    chroma = np.full(ref_t.shape, np.inf)
    chroma[both] = np.abs(((cents[both] + 600) % 1200) - 600)
    rpa = float(np.mean(cents[ref_v] <= 50))
    rca = float(np.mean(chroma[ref_v] <= 50))
    recall = float(np.mean(est_v[ref_v]))
    false_alarm = float(np.mean(est_v[~ref_v])) if (~ref_v).any() else 0.0
    correct = np.where(ref_v, est_v & (cents <= 50), ~est_v)
    return {"rpa": rpa, "rca": rca, "voicing_recall": recall, "voicing_false_alarm": false_alarm,
            "overall_accuracy": float(np.mean(correct))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vocadito_dir")
    parser.add_argument("--json", default="")
    parser.add_argument("--pyin-seconds", type=float, default=33.0)
    args = parser.parse_args()
    y, _ = librosa.load(os.path.join(args.vocadito_dir, "Audio", "vocadito_1.wav"), sr=SR)
    ref = np.loadtxt(os.path.join(args.vocadito_dir, "Annotations", "F0", "vocadito_1_f0.csv"), delimiter=",")
    ref_t, ref_f0 = ref[:, 0], ref[:, 1]
    rows = []
    for method in ("yin", "praat_ac", "praat_cc", "pyin"):
        seconds = args.pyin_seconds if method == "pyin" else len(y) / SR
        clip = y[: int(seconds * SR)]
        track_f0(clip[:SR], SR, HOP, method)  # warm-up (numba JIT, library init)
        start = time.perf_counter()
        f0, voiced = track_f0(clip, SR, HOP, method)
        elapsed = time.perf_counter() - start
        times = np.arange(len(f0)) * HOP / SR
        keep = ref_t <= seconds
        row = {"tracker": method, **score(times, f0, voiced, ref_t[keep], ref_f0[keep]),
               "x_real_time": seconds / elapsed, "seconds_of_audio": seconds}
        rows.append(row)
        print(f"{method:14s} RPA {row['rpa']:.3f}  RCA {row['rca']:.3f}  vRecall {row['voicing_recall']:.3f}  "
              f"vFA {row['voicing_false_alarm']:.3f}  OA {row['overall_accuracy']:.3f}  "
              f"{row['x_real_time']:8.1f}x real time", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"audio": "vocadito_1 (33 s a-cappella)", "sample_rate": SR, "hop": HOP,
                       "threads": 1, "results": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
