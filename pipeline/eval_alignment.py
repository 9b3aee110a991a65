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
import time

import numpy as np

from lyricbeam.pipeline.jamendo import audio_path

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
    from lyricbeam.transforms.alignment.windows import line_first_words

    firsts = line_first_words(lines)
    return {"lines": lines, "word_onsets": onsets, "line_onsets": [onsets[i] for i in firsts]}


def evaluate(jamendo_dir: str, songs: list[str] | None = None, reference_lines: bool = False,
             threads: int = 1, config=None, reference_shift_s: float = 0.0) -> dict:
    """Align each song with the pipeline's `align_song` and score it; returns the JSON-able report.

    `reference_shift_s` (with `reference_lines`) moves the given line onsets by that many
    seconds, as a source with a global offset error would; the stage must find and undo it.
    """
    import dataclasses

    import librosa

    from lyricbeam.transforms.alignment.align import align_song
    from lyricbeam.transforms.alignment.aligner import load_alignment_models
    from lyricbeam.transforms.alignment.config import AlignConfig
    from lyricbeam.pipeline.jamendo import song_metadata
    from lyricbeam.transforms.quality import LANGUAGE_CODES

    meta = song_metadata(jamendo_dir)
    names = songs or sorted(meta)
    config = dataclasses.replace(config or AlignConfig(), threads=threads)
    per_song = {}
    for name in names:
        language = LANGUAGE_CODES.get(meta[name]["Language"].strip().lower(), "")
        song = read_song(jamendo_dir, name)
        audio, _ = librosa.load(audio_path(jamendo_dir, name), sr=16000)
        duration = len(audio) / 16000

        def read(start_s, end_s, audio=audio):
            return audio[int(round(start_s * 16000)): int(round(end_s * 16000))]

        line_onsets = np.array(song["line_onsets"]) + reference_shift_s if reference_lines else None
        # Models are loaded and run once before the clock starts. The transcription model
        # only loads: it has not sampled, so the song starts on it as on a fresh one
        # (`restart_sampling`).
        align_song(read, min(duration, 1.0), [["warm"]], language, dataclasses.replace(config, lyrics_match=False),
                   source_line_onsets=[0.0])
        load_alignment_models(language, config, line_onsets_given=reference_lines)
        started = time.perf_counter()
        result = align_song(read, duration, song["lines"], language, config, source_line_onsets=line_onsets)
        seconds = time.perf_counter() - started
        words = result.words
        metrics = onset_metrics(np.array(song["word_onsets"]), np.array([w.start for w in words]))
        metrics.update(rtf=seconds / duration, language=language, model=result.model,
                       duration_s=duration, align_s=seconds, placement=result.line_placement,
                       mean_confidence=result.mean_confidence, aligned_fraction=result.aligned_fraction,
                       lyrics_match_wer=result.lyrics_match_wer, transcript=result.transcript_backend,
                       source_onset_offset_s=result.source_onset_offset_s,
                       placement_score=result.placement_score, suspect=result.suspect)
        per_song[name] = metrics
    summary = average_over_songs(per_song)
    mode = "reference_lines" if reference_lines else "audio_and_lyrics_only"
    return {"mode": mode, "threads": threads, "cpu": cpu_description(), "reference_shift_s": reference_shift_s if reference_lines else 0.0,
            "config": dataclasses.asdict(config), **summary,
            "worst_song_aae": max(m["aae"] for m in per_song.values()), "songs": per_song}


def over_seeds(reports: list[dict]) -> dict:
    """One report from runs that differ only in the transcription seed: the figures averaged over
    the runs (per song, then over songs), the worst song of any run, and every run kept."""
    if len(reports) == 1:
        return reports[0]
    keys = ("aae", "median_ae", "pco", "rtf")
    songs = {}
    for name, first in reports[0]["songs"].items():
        runs = [r["songs"][name] for r in reports]
        songs[name] = {**first, **{k: float(np.mean([m[k] for m in runs])) for k in keys},
                       "aae_by_seed": [m["aae"] for m in runs], "pco_by_seed": [m["pco"] for m in runs],
                       "suspect": any(m.get("suspect") for m in runs),
                       "suspect_by_seed": [bool(m.get("suspect")) for m in runs]}
    return {**{k: reports[0][k] for k in ("mode", "threads", "reference_shift_s", "config")},
            "cpu": reports[0].get("cpu", ""),
            "seeds": [r["config"]["transcribe_seed"] for r in reports],
            **{k: float(np.mean([r[k] for r in reports])) for k in keys},
            "worst_song_aae": max(r["worst_song_aae"] for r in reports), "songs": songs,
            "seed_runs": reports}


def table(report: dict) -> str:
    shift = f", line onsets shifted {report['reference_shift_s']:+.2f} s" if report.get("reference_shift_s") else ""
    rows = [f"mode: {report['mode']}  (threads {report['threads']}{shift})",
            f"{'song':32s} {'lang':>4s} {'AAE s':>7s} {'med AE':>7s} {'PCO':>6s} {'RTF':>6s} {'WER':>5s} "
            f"{'offset':>6s} {'score':>6s} {'suspect':>7s}  model / placement"]
    for name, m in report["songs"].items():
        wer = f"{m['lyrics_match_wer']:5.2f}" if m.get("lyrics_match_wer") is not None else f"{'-':>5s}"
        offset = (f"{m['source_onset_offset_s']:+6.2f}" if m.get("source_onset_offset_s") is not None
                  else f"{'-':>6s}")
        score = f"{m['placement_score']:6.3f}" if m.get("placement_score") is not None else f"{'-':>6s}"
        suspect = "yes" if m.get("suspect") else "no"
        rows.append(f"{name[:32]:32s} {m['language']:>4s} {m['aae']:7.3f} {m['median_ae']:7.3f} "
                    f"{m['pco']:6.1%} {m['rtf']:6.3f} {wer} {offset} {score} {suspect:>7s}  {m['model']} / {m['placement']}")
    rows.append(f"{'mean over songs':32s} {'':>4s} {report['aae']:7.3f} {report['median_ae']:7.3f} "
                f"{report['pco']:6.1%} {report['rtf']:6.3f}")
    if report.get("seed_runs"):
        rows.insert(1, f"averaged over {len(report['seeds'])} transcription seeds {report['seeds']}")
        for run in report["seed_runs"]:
            per_song = " ".join(f"{m['aae']:.3f}{'*' if m.get('suspect') else ''}" for m in run["songs"].values())
            rows.append(f"{'  seed ' + str(run['config']['transcribe_seed']):32s} {'':>4s} {run['aae']:7.3f} "
                        f"{run['median_ae']:7.3f} {run['pco']:6.1%} {run['rtf']:6.3f}  songs' AAE {per_song}, "
                        f"worst {run['worst_song_aae']:.3f}")
        rows.append("  (* = flagged suspect)")
    rows.append(f"CPU: {cpu_description()}")
    return "\n".join(rows)


def cpu_description() -> str:
    """The CPU model and the instruction set CTranslate2 was told to use, for every reported figure."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        import platform

        model = platform.processor() or platform.machine()
    isa = os.environ.get("CT2_FORCE_CPU_ISA", "default")
    mkl = os.environ.get("CT2_USE_MKL", "default")
    return f"{model}; CT2_FORCE_CPU_ISA={isa}, CT2_USE_MKL={mkl}"


def main(args) -> int:
    import dataclasses

    from lyricbeam.transforms.alignment.config import AlignConfig, AlignTuning

    tuning = AlignTuning(offset_passes=0) if args.no_offset_correction else AlignTuning()
    config = AlignConfig(transcriber=args.transcriber, model_dir=args.model_dir, lyrics_match=not args.no_lyrics_match,
                         tuning=tuning)
    seeds = [int(seed) for seed in str(args.seeds).split(",")]
    report = over_seeds([evaluate(args.jamendo, args.song, args.reference_lines, args.threads,
                                  dataclasses.replace(config, transcribe_seed=seed), args.reference_shift)
                         for seed in seeds])
    print(table(report))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return 0
