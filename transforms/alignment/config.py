"""Settings of the alignment: a run's choices (`AlignConfig`) and the measured constants (`AlignTuning`)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from lyricbeam.transforms.alignment.transcribe import FALLBACK_NO_REPEAT_NGRAM, FALLBACK_TEMPERATURES


LINE_TIMES = ("auto", "source", "transcript")


REUSE_ENCODINGS = ("none", "placement", "all")


@dataclasses.dataclass(frozen=True)
class AlignTuning:
    """Constants of the alignment, chosen by measurement on the benchmark songs (bench/results/).

    Not part of a run's configuration: they decide how well the aligner works, not what a user
    wants from it. Benchmarks and tests vary them through `AlignConfig(tuning=...)`.
    """

    lead_s: float = 0.25  # audio before a given line onset in its window: sung onsets precede annotated ones
    slack_s: float = 1.0  # audio either side of an estimated line window: estimated onsets are off by up to a second
    offset_min_s: float = 0.2  # a source offset below this is within the aligner's own onset scatter
    offset_passes: int = 1  # probes of the source's offset; a probe sees only `slack_s` around each onset
    min_aligned_fraction: float = 0.5  # fewer words aligned than this share: the alignment has failed
    lyrics_match_chunks: int = 3  # with source times, the lyrics match transcribes this many wordiest 30 s stretches (0: all)
    weak_run_words: int = 3  # anchor runs of fewer transcript words are checked by the aligner: short runs are often chance
    search_window_s: float = 20.0  # line-search windows: a 20 s window encodes 2.6x faster than a 30 s one
    search_step_s: float = 10.0  # in a long stretch, windows this far apart compete for its lines (0: only the first)
    search_window_min_s: float = 15.0  # a search window may end early, where a transcription window holds it, if this long
    held_trim_s: float = 0.5  # a line window may give up this much of its slack where a transcription window then holds it
    transcript_token_factor: float = 3.0  # tokens a placement transcript window may decode, x the lyrics' mean: loops stop early
    fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM  # fallback samples may not repeat a 4-token n-gram: they repeated the loop
    fallback_temperatures: tuple = FALLBACK_TEMPERATURES  # sampled while a window's decoding fails; higher ones only hallucinate
    placement_retries: int = 4  # a doubtful placement is retried with at most this many more transcripts
    # Retries from the merged anchors of all transcripts so far instead of the next one alone: a
    # better mean on the benchmark songs, but it let one partly slid run (2.4 s) score above the
    # suspect threshold (bench/results/align_robustness_merged.txt), so it is off.
    merge_transcripts: bool = False
    spread_held_vowels: bool = True  # lines of bare vowels spread over their time: Whisper cannot tell one vowel from the next
    # Unanchored lines that repeat lines placed elsewhere move where that audio's chroma recurs,
    # when it matches there by this much more mean cosine similarity (0 or less: never).
    repeat_min_gain: float = 0.1


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """The `align` section of a run's configuration: the choices a user makes."""

    enabled: bool = True
    required: bool = False  # True: a song whose alignment fails, or is suspect, is rejected (`alignment_failed`)
    model_dir: str = ""  # any CTranslate2 Whisper model directory; empty: tiny.en / base by language
    placement_model_dir: str = ""  # model whose alignments place the lines no transcript word anchored; empty: model_dir, else the multilingual base
    # Where lines are: "source" = the source's line times (offset-corrected), "transcript" = a
    # transcription pass, "auto" = source times when the source has them.
    line_times: str = "auto"
    lyrics_match: bool = True  # transcribe to measure the lyrics-match WER even when source times place the lines
    transcriber: str = "faster-whisper"  # or "whisper-timestamped"
    transcribe_model_dir: str = ""  # CTranslate2 model of the transcription pass; empty: the multilingual base
    whisper_timestamped_checkpoint: str = ""  # openai-whisper checkpoint; empty: converted from the above
    transcribe_seed: int = 0  # seed of the transcription's temperature-fallback samples (another seed: another likely transcript)
    reuse_encodings: str = "all"  # aligner windows cut from the transcription's encoder outputs: "all", "placement" (checks, line search), "none" (slower, more accurate)
    onset_correction_s: Optional[float] = None  # added to every aligned time; None: the bundled model's measured bias (ONSET_CORRECTION_S), 0 for others
    # Without source times, a placement scoring below this (`placement_score`) is retried with
    # more transcripts, then marked `suspect` (bench/results/align_robustness*.txt calibrates it).
    placement_min_score: float = 0.13
    threads: int = 1
    tuning: AlignTuning = AlignTuning()
