"""Measure the Whisper aligner's constant onset bias on speech whose word onsets are known exactly.

    python bench/onset_bias.py [--json bench/results/onset_bias.json]

Needs `espeak-ng` (Debian package). Each word of a few sentences per language (written for
this benchmark, not taken from any lyrics) is synthesised on its own, trimmed of silence and
joined to the next with `--gap` seconds between them, so every onset is known to the sample.
The words are aligned in one window, as the pipeline's aligner does, and the signed error of
every onset (ours - true) is reported per model and language, before and after the model's
onset correction (`lyricbeam.transforms.alignment.aligner.ONSET_CORRECTION_S`). The correction is the negated median
signed error of each bundled model over the languages it aligns by default (tiny.en: English;
base: French, Spanish, German), at gap 0 (connected words, the closer match to singing).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from lyricbeam.transforms.alignment.aligner import ONSET_CORRECTION_S, WhisperAligner  # noqa: E402
from lyricbeam.transforms.alignment.whisper_models import base_dir, tiny_en_dir  # noqa: E402

SR = 16000
SENTENCES = {
    "en": ["the river runs beside the old stone wall",
           "and every morning children walk along it to the little school",
           "where they learn to read and write and sing together before noon"],
    "fr": ["la rivière coule près du vieux mur de pierre",
           "et chaque matin les enfants marchent le long de l'eau vers la petite école",
           "où ils apprennent à lire à écrire et à chanter ensemble avant midi"],
    "es": ["el río corre junto al viejo muro de piedra",
           "y cada mañana los niños caminan a su lado hacia la pequeña escuela",
           "donde aprenden a leer a escribir y a cantar juntos antes del mediodía"],
    "de": ["der fluss fließt neben der alten mauer aus stein",
           "und jeden morgen gehen die kinder dort entlang zu der kleinen schule",
           "wo sie lesen und schreiben lernen und vor mittag zusammen singen"],
}
DEFAULT_MODEL = {"en": "tiny.en", "fr": "base", "es": "base", "de": "base"}


def spoken_word(word: str, language: str, rate: int) -> np.ndarray:
    """One word spoken by espeak-ng at `rate` words per minute, 16 kHz, leading and trailing silence trimmed."""
    wav = subprocess.run(["espeak-ng", "-v", language, "-s", str(rate), "--stdout", word],
                         capture_output=True, check=True).stdout
    samples, sr = sf.read(io.BytesIO(wav), dtype="float32")
    samples = librosa.resample(samples, orig_sr=sr, target_sr=SR)
    return librosa.effects.trim(samples, top_db=35)[0]


def spoken_text(words: list[str], language: str, gap_s: float, rate: int) -> tuple[np.ndarray, list[float]]:
    """(16 kHz audio, onset of every word in s): the words spoken one by one, `gap_s` apart, after 0.5 s of silence."""
    gap = np.zeros(int(round(gap_s * SR)), np.float32)
    parts, onsets, at = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for word in words:
        sound = spoken_word(word, language, rate)
        onsets.append(at / SR)
        parts += [sound, gap]
        at += len(sound) + len(gap)
    parts.append(np.zeros(SR // 2, np.float32))
    return np.concatenate(parts), onsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gaps", default="0,0.05", help="seconds between words, comma-separated")
    parser.add_argument("--rate", type=int, default=140)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    models = {"tiny.en": tiny_en_dir(), "base": base_dir()}
    rows = []
    for gap_s in [float(g) for g in args.gaps.split(",")]:
        for language, sentences in SENTENCES.items():
            words = " ".join(sentences).split()
            audio, onsets = spoken_text(words, language, gap_s, args.rate)
            for model in (["tiny.en", "base"] if language == "en" else ["base"]):
                aligner = WhisperAligner(models[model], language, onset_correction_s=0.0)
                placed = aligner.align_window(audio, words, lead_in="♪")
                error = np.array([w.start for w in placed]) - np.array(onsets)
                corrected = error + ONSET_CORRECTION_S.get(model, 0.0)
                rows.append({"gap_s": gap_s, "language": language, "model": model, "words": len(words),
                             "seconds": round(len(audio) / SR, 1), "default": DEFAULT_MODEL[language] == model,
                             "median_signed_s": float(np.median(error)), "mae_s": float(np.abs(error).mean()),
                             "pco": float(np.mean(np.abs(error) < 0.3)),
                             "corrected_median_signed_s": float(np.median(corrected)),
                             "corrected_mae_s": float(np.abs(corrected).mean()),
                             "corrected_pco": float(np.mean(np.abs(corrected) < 0.3)),
                             "signed_errors": [round(float(e), 3) for e in error]})
    print(f"{'gap s':>5} {'lang':4} {'model':8} {'words':>5} {'median signed':>13} {'MAE':>6} {'PCO':>5} |"
          f" {'corrected: median':>17} {'MAE':>6} {'PCO':>5}")
    for r in rows:
        print(f"{r['gap_s']:5.2f} {r['language']:4} {r['model']:8} {r['words']:5d} {r['median_signed_s']:+13.3f}"
              f" {r['mae_s']:6.3f} {r['pco']:5.0%} | {r['corrected_median_signed_s']:+17.3f} {r['corrected_mae_s']:6.3f}"
              f" {r['corrected_pco']:5.0%}")
    pooled = {}
    for model in models:
        errors = np.concatenate([r["signed_errors"] for r in rows if r["model"] == model and r["default"]
                                 and r["gap_s"] == 0.0] or [[np.nan]])
        pooled[model] = {"median_signed_s_gap0_default_languages": float(np.median(errors)),
                         "correction_s": ONSET_CORRECTION_S.get(model, 0.0)}
        print(f"{model}: median signed error over its default languages at gap 0: {np.median(errors):+.3f} s;"
              f" correction in use {ONSET_CORRECTION_S.get(model, 0.0):+.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rate_wpm": args.rate, "rows": rows, "pooled": pooled}, f, indent=1)


if __name__ == "__main__":
    main()
