"""`lyricbeam eval-alignment`: word-onset accuracy on a JamendoLyrics-layout directory.

The aligner gets only the audio, the lyrics text and the language; the annotations are read
for scoring alone. `--reference-lines` is the separate, labelled mode that also gives it the
reference line onsets (what a source with good line times, like DALI, provides).

Metrics as JamendoLyrics' evaluation defines them: per song, over words matched by position,
the mean absolute onset error (AAE), the median absolute error, and the share of onsets
within 0.3 s (PCO); each then averaged over songs.
"""
from __future__ import annotations

import csv
import json
import os
import re
import time

import numpy as np

TOLERANCE_S = 0.3


def onset_metrics(reference: np.ndarray, predicted: np.ndarray, tolerance: float = TOLERANCE_S) -> dict:
    """AAE, median AE and PCO of predicted word onsets against reference onsets (same length)."""
    reference, predicted = np.asarray(reference, float), np.asarray(predicted, float)
    if reference.shape != predicted.shape or reference.size == 0:
        raise ValueError(f"{predicted.size} predicted onsets for {reference.size} reference onsets")
    errors = np.abs(predicted - reference)
    return {"aae": float(errors.mean()), "median_ae": float(np.median(errors)),
            "pco": float(np.mean(errors < tolerance)), "max_ae": float(errors.max()), "words": int(errors.size)}


def average_over_songs(per_song: dict[str, dict]) -> dict:
    """Each metric's mean over songs (songs weigh equally, as in the benchmark)."""
    keys = ("aae", "median_ae", "pco", "rtf")
    return {k: float(np.mean([m[k] for m in per_song.values()])) for k in keys if per_song}


def read_song(jamendo_dir: str, name: str) -> dict:
    """Lyrics lines (lists of words), reference word onsets and line onsets of one song."""
    with open(os.path.join(jamendo_dir, "lyrics", f"{name}.txt"), encoding="utf-8") as handle:
        lines = [line.split() for line in handle.read().splitlines() if line.strip()]
    with open(os.path.join(jamendo_dir, "annotations", "words", f"{name}.csv"), encoding="utf-8") as handle:
        onsets = [float(row["word_start"]) for row in csv.DictReader(handle)]
    n_words = sum(len(l) for l in lines)
    if n_words != len(onsets):
        raise ValueError(f"{name}: {n_words} lyric words but {len(onsets)} annotated onsets")
    firsts = np.cumsum([0] + [len(l) for l in lines[:-1]])
    return {"lines": lines, "word_onsets": onsets, "line_onsets": [onsets[i] for i in firsts]}


def audio_path(jamendo_dir: str, name: str) -> str:
    for folder in ("mp3", "audio"):
        path = os.path.join(jamendo_dir, folder, f"{name}.mp3")
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no audio for {name} under {jamendo_dir}/mp3 or /audio")


def evaluate(jamendo_dir: str, songs: list[str] | None = None, reference_lines: bool = False,
             threads: int = 1) -> dict:
    """Align each song and score it; returns the JSON-able report."""
    import librosa

    from transforms.align import AlignConfig, WhisperAligner, align_with_line_onsets
    from transforms.jamendo import song_metadata
    from transforms.quality import LANGUAGE_CODES
    from transforms.line_placement import place_lines, transcribe_words
    from transforms.whisper_models import base_dir, model_dir_for

    meta = song_metadata(jamendo_dir)
    names = songs or sorted(meta)
    config = AlignConfig(threads=threads)
    aligners: dict[str, tuple] = {}
    per_song = {}
    for name in names:
        language = LANGUAGE_CODES.get(meta[name]["Language"].strip().lower(), "")
        song = read_song(jamendo_dir, name)
        audio, _ = librosa.load(audio_path(jamendo_dir, name), sr=16000)
        model_dir, model_name = model_dir_for(language)
        key = f"{model_dir}:{language}"
        if key not in aligners:
            aligners[key] = (WhisperAligner(model_dir, language or "en", threads), model_name)
        aligner, model_name = aligners[key]
        started = time.perf_counter()
        extra = {}
        if reference_lines:
            words = align_with_line_onsets(aligner, audio, song["lines"], song["line_onsets"], config)
        else:
            # Only audio, lyrics and language: a transcription pass places the lines.
            transcript = transcribe_words(config.transcribe_model_dir or base_dir(), audio, language, threads)
            onsets, anchored = place_lines(song["lines"], transcript, len(audio) / 16000)
            words = align_with_line_onsets(aligner, audio, song["lines"], onsets, config, estimated=True)
            line_errors = np.abs(np.array(onsets) - np.array(song["line_onsets"]))
            extra = {"anchored_words": anchored, "transcript_words": len(transcript),
                     "line_onset_median_error": float(np.median(line_errors)),
                     "line_onset_mean_error": float(line_errors.mean())}
        seconds = time.perf_counter() - started
        metrics = onset_metrics(np.array(song["word_onsets"]), np.array([w.start for w in words]))
        metrics.update(rtf=seconds / (len(audio) / 16000), language=language, model=model_name,
                       duration_s=len(audio) / 16000, align_s=seconds,
                       mean_confidence=float(np.mean([w.confidence for w in words])), **extra)
        per_song[name] = metrics
    summary = average_over_songs(per_song)
    return {"mode": "reference_lines" if reference_lines else "audio_and_lyrics_only", "threads": threads,
            **summary, "worst_song_aae": max(m["aae"] for m in per_song.values()), "songs": per_song}


def table(report: dict) -> str:
    rows = [f"mode: {report['mode']}  (threads {report['threads']})",
            f"{'song':32s} {'lang':>4s} {'AAE s':>7s} {'med AE':>7s} {'PCO':>6s} {'RTF':>6s}  model"]
    for name, m in report["songs"].items():
        rows.append(f"{name[:32]:32s} {m['language']:>4s} {m['aae']:7.3f} {m['median_ae']:7.3f} "
                    f"{m['pco']:6.1%} {m['rtf']:6.3f}  {m['model']}")
    rows.append(f"{'mean over songs':32s} {'':>4s} {report['aae']:7.3f} {report['median_ae']:7.3f} "
                f"{report['pco']:6.1%} {report['rtf']:6.3f}")
    return "\n".join(rows)


def main(args) -> int:
    report = evaluate(args.jamendo, args.song, args.reference_lines, args.threads)
    print(table(report))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return 0
