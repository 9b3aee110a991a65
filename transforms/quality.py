"""Quality: measurements of a song and the configurable filters that reject on them.

Measured in clean (where the source-rate audio is at hand): clipping and real bandwidth.
Measured here: vocal activity (Silero VAD from faster-whisper, on the 16 kHz mono audio),
lyrics language (langid), annotation density. Each filter has its own reject reason; a
filter whose input is missing (no lyrics-match score, unknown language name) passes.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from typing import Callable, Optional

import numpy as np

from lyricbeam.schemas.records import Song
from lyricbeam.transforms.storage.audio_store import song_blocks, song_length
from lyricbeam.transforms.rejects import RejectError, RejectingDoFn

LANGUAGE_CODES = {
    "english": "en", "german": "de", "french": "fr", "italian": "it", "spanish": "es",
    "portuguese": "pt", "dutch": "nl", "polish": "pl", "finnish": "fi", "swedish": "sv",
    "norwegian": "no", "danish": "da", "russian": "ru", "czech": "cs", "croatian": "hr",
    "hungarian": "hu", "turkish": "tr", "greek": "el", "romanian": "ro", "catalan": "ca",
    "indonesian": "id", "japanese": "ja", "korean": "ko", "chinese": "zh", "tagalog": "tl",
    "icelandic": "is", "estonian": "et", "latvian": "lv", "lithuanian": "lt", "slovak": "sk",
    "slovenian": "sl", "serbian": "sr", "ukrainian": "uk", "hebrew": "he", "arabic": "ar",
    "hindi": "hi", "welsh": "cy", "irish": "ga", "basque": "eu", "galician": "gl",
}


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    language_check: bool = True
    language_min_words: int = 20
    language_min_confidence: float = 0.95
    # Rejected only when less than this share of the lyric words (in chunks of
    # language_min_words) looks like the metadata's language: mixed-language songs stay.
    language_min_share: float = 0.2
    lyrics_match_min_words: int = 20  # fewer lyric words: the WER is too noisy to reject on
    # Transcript WER against the lyrics: right lyrics measured 0.31-1.00 (sung Tagalog, English
    # poorly recognised), another song's 0.97-4.22 (bench/results/README.md): only clear mismatches.
    lyrics_match_max_wer: float = 1.0
    # Distinctive (>= 4 letters) lyric words the transcript shares, in order: another song's
    # lyrics shared none, the right ones 12-78 % (bench/results/quality_false_rejects.txt).
    lyrics_match_min_shared: float = 0.05
    lyrics_match_min_bandwidth_hz: float = 7000.0  # narrower audio: the transcript does not judge the lyrics
    instrumental_check: bool = True
    min_vocal_activity: float = 0.15  # p90 speech probability at -20 dBFS RMS; bench/results/dedup_quality.md, quality_false_rejects.txt
    max_clip_fraction: float = 0.001
    min_bandwidth_ratio: float = 0.45  # real bandwidth / min(Nyquist of the source rate, 20 kHz)
    min_source_sample_rate: int = 0  # Hz; 0 = any rate (reject reason low_sample_rate)
    min_words_per_second: float = 0.05
    max_words_per_second: float = 7.0


def pinned_to_peak(level: np.ndarray, peak: float) -> np.ndarray:
    """Samples whose level sits at the file's peak, within 2 parts in 32768 of it.

    The tolerance is relative to the peak, not to full scale: a clipped file turned down
    (24-bit, float, or -12 dB) still holds exactly equal samples at its new peak, while an
    absolute 2-LSB band would, at a quarter of full scale, take in every sample within
    0.02 % of the peak of a clean, limited master.
    """
    return level >= peak * (1.0 - 2.0 / 32768)


CLIP_MIN_RUN = 4  # consecutive samples at the peak: a limiter's single peak samples are not clipping


def count_pinned_runs(level: np.ndarray, peak: float, run: int, clipped: int) -> tuple[int, int]:
    """Clipped samples counted block by block: the run open at the block's end carries over.

    Parameters
    ----------
    level : np.ndarray
        Absolute sample level of one block (the loudest channel per frame).
    peak : float
        The whole file's peak level.
    run : int
        Length of the run of pinned samples still open at the end of the previous block.
    clipped : int
        Samples counted so far in closed runs of at least `CLIP_MIN_RUN`.

    Returns
    -------
    run, clipped : int
        The run open at this block's end, and the updated count; close the last run with
        ``clipped + (run if run >= CLIP_MIN_RUN else 0)``.
    """
    pinned = pinned_to_peak(level, peak)
    padded = np.concatenate([[False], pinned, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    if not len(lengths):
        return 0, clipped + (run if run >= CLIP_MIN_RUN else 0)
    if starts[0] == 0:  # continues the run from the previous block
        lengths = lengths.copy()
        lengths[0] += run
    elif run >= CLIP_MIN_RUN:
        clipped += run
    open_at_end = ends[-1] == len(pinned)
    closed = lengths[:-1] if open_at_end else lengths
    clipped += int(closed[closed >= CLIP_MIN_RUN].sum())
    return (int(lengths[-1]) if open_at_end else 0), clipped


def clip_fraction(samples: np.ndarray) -> float:
    """Share of samples in runs of at least `CLIP_MIN_RUN` consecutive samples pinned at the peak level."""
    level = np.abs(samples).max(axis=1) if samples.ndim == 2 else np.abs(samples)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0:
        return 0.0
    run, clipped = count_pinned_runs(level, peak, 0, 0)
    clipped += run if run >= CLIP_MIN_RUN else 0
    return clipped / len(level)


# Content is what stands within this many dB of the long-term spectrum's peak ...
BANDWIDTH_RANGE_DB = 70.0
# ... and this many dB above its lowest point (a noisy file's floor is its hiss, not content).
BANDWIDTH_FLOOR_MARGIN_DB = 12.0


def bandwidth_hz(samples: np.ndarray, rate: int, max_seconds: float = 60.0) -> float:
    """Highest frequency of the long-term spectrum that holds content.

    Parameters
    ----------
    samples : np.ndarray
        Audio, shape ``(frames,)`` or ``(frames, channels)``; channels are averaged.
    rate : int
        Sample rate of `samples` in Hz.
    max_seconds : float
        A longer file is measured on `max_seconds` one-second slices spread across it.

    Returns
    -------
    float
        The highest frequency (Hz) whose smoothed Welch power is within
        ``BANDWIDTH_RANGE_DB`` of the spectrum's peak and ``BANDWIDTH_FLOOR_MARGIN_DB`` above
        its lowest point; ``rate / 2`` for audio shorter than one analysis frame.

    Notes
    -----
    The reference is the peak, not a percentile of the spectrum: a percentile assumes an
    empty stop band, and a file that fills its own band (any native or resampled rate) has
    that percentile inside its content, which once put the edge of 16 kHz songs at 1 kHz.
    Music reaches its own Nyquist within 60 dB of the peak (measured on the shared songs at
    8-48 kHz, `bench/results/quality_false_rejects.txt`); audio upsampled from a lower rate
    and lossy low-pass encoding leave a stop band far below that (a resampler's stop band
    and 16-bit quantisation lie ~100 dB under a music spectrum's peak).
    """
    from scipy.signal import welch

    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    step = max(1, int(len(mono) / (max_seconds * rate)))
    if step > 1:  # many short slices across the file instead of the whole file
        slice_len = rate
        starts = np.linspace(0, len(mono) - slice_len, int(max_seconds)).astype(int)
        mono = np.concatenate([mono[s: s + slice_len] for s in starts])
    if len(mono) < 4096:
        return rate / 2.0
    freqs, power = welch(mono.astype(np.float64), fs=rate, nperseg=4096)
    db = 10 * np.log10(power + 1e-20)
    smooth = np.convolve(np.pad(db, 4, mode="edge"), np.ones(9) / 9, mode="valid")
    # The lowest bins hold DC and rumble, not the music's level.
    peak = smooth[4:].max()
    threshold = max(peak - BANDWIDTH_RANGE_DB, smooth.min() + BANDWIDTH_FLOOR_MARGIN_DB)
    above = np.flatnonzero(smooth >= threshold)
    return float(freqs[above[-1]]) if len(above) else 0.0


_VAD = {}
_VAD_LOCK = threading.Lock()


VAD_WINDOW = 512
VAD_BLOCK = 10000 * VAD_WINDOW  # 320 s at 16 kHz: the model's own batch size


def vocal_activity(y: np.ndarray, sr: int = 16000) -> float:
    """90th percentile of Silero VAD's speech probability over 32 ms chunks (0..1), on the audio
    brought to `VAD_REFERENCE_RMS_DBFS`."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    return vocal_activity_blocks((y[i: i + VAD_BLOCK] for i in range(0, len(y), VAD_BLOCK)), sr, level_gain(rms))


# Silero VAD's speech probability falls with the level: the same band-limited song measured 0.44
# at 0 dB and 0.04 at -12 dB. Audio is brought to this RMS level first (bench/results/quality_false_rejects.txt).
VAD_REFERENCE_RMS_DBFS = -20.0


def level_gain(rms: float, reference_dbfs: float = VAD_REFERENCE_RMS_DBFS) -> float:
    """The gain that brings audio of RMS `rms` to `reference_dbfs` (1 for digital silence)."""
    return float(10 ** (reference_dbfs / 20) / rms) if rms > 0 else 1.0


def vocal_activity_blocks(blocks, sr: int = 16000, gain: float = 1.0) -> float:
    """`vocal_activity` of audio given as consecutive blocks (each a multiple of 512 samples but the
    last), each scaled by `gain` (`level_gain`: the measure then does not depend on the level)."""
    if sr != 16000:
        raise ValueError("vocal_activity expects 16 kHz audio")
    with _VAD_LOCK:
        if "model" not in _VAD:
            from faster_whisper.vad import get_vad_model

            _VAD["model"] = get_vad_model()
    probs = []
    for block in blocks:
        usable = len(block) // VAD_WINDOW * VAD_WINDOW
        if usable:
            scaled = np.ascontiguousarray(block[:usable] * np.float32(gain), dtype=np.float32)
            probs.append(_VAD["model"](scaled).reshape(-1))
    if not probs:
        return 0.0
    return float(np.quantile(np.concatenate(probs), 0.9))


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of `text` by langid's bundled model."""
    from langid.langid import LanguageIdentifier, model

    with _VAD_LOCK:
        if "langid" not in _VAD:
            _VAD["langid"] = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    code, prob = _VAD["langid"].classify(text)
    return code, float(prob)


def words_per_second(song: Song) -> Optional[float]:
    """Annotated words per second of the span they cover (at least 1 s); None when fewer than
    half the words have times (lyrics files without word times: nothing to judge)."""
    timed = [w for w in song.words if np.isfinite(w.start) and np.isfinite(w.end)]
    if not song.words or len(timed) < 0.5 * len(song.words):
        return None
    span = max(w.end for w in timed) - min(w.start for w in timed)
    return len(timed) / max(span, 1.0)


def lyric_chunks(lines: list[str], min_words: int) -> list[list[str]]:
    """Consecutive lyric lines grouped into chunks of at least `min_words` words.

    A short remainder joins the chunk before it, so every chunk is long enough for langid.
    """
    chunks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        current += _WORD.findall(line)
        if len(current) >= min_words:
            chunks.append(current)
            current = []
    if current:
        if chunks:
            chunks[-1] = chunks[-1] + current
        else:
            chunks.append(current)
    return chunks


def language_share(lines: list[str], code: str, min_words: int) -> float:
    """Share of the lyric words that lie in chunks langid gives the language `code`.

    Songs mix languages (a Spanish verse, an English chorus); judging the whole text at once
    names only the majority language, so a song tagged with its other language would be
    rejected. Chunks of `min_words` words let each part speak for itself.
    """
    chunks = lyric_chunks(lines, min_words)
    total = sum(len(chunk) for chunk in chunks)
    if not total:
        return 0.0
    matched = sum(len(chunk) for chunk in chunks if detect_language(" ".join(chunk))[0] == code)
    return matched / total


def measure(song: Song, config: QualityConfig) -> Song:
    """Fill vocal activity and lyrics language (the rest comes from clean)."""
    changes = {}
    if config.instrumental_check and (song.has_lyrics or song.source == "audiofolder") and song_length(song):
        energy = sum(float(np.square(block, dtype=np.float64).sum()) for _, block in song_blocks(song, VAD_BLOCK))
        gain = level_gain(np.sqrt(energy / song_length(song)))
        blocks = (block for _, block in song_blocks(song, VAD_BLOCK))
        changes["vocal_activity"] = vocal_activity_blocks(blocks, song.sample_rate, gain)
    if config.language_check and song.has_lyrics and song.text:
        words = _WORD.findall(song.text)
        if len(words) >= config.language_min_words:
            code, prob = detect_language(" ".join(words))
            changes.update(lyrics_language=code, lyrics_language_confidence=prob)
            expected = LANGUAGE_CODES.get(song.language.strip().lower())
            if expected:
                changes["lyrics_language_share"] = language_share(
                    song.text.splitlines(), expected, config.language_min_words)
    return song.replace(**changes) if changes else song


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One filter's judgement of one song: what it measured, against what, and the outcome."""

    reason: str  # the reject reason this filter gives
    value: Optional[float]  # what was measured; None = not measured, so the filter passes
    threshold: Optional[float]
    passed: bool
    detail: str = ""

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise RejectError(self.reason, self.detail, value=self.value, threshold=self.threshold)


def _passed(reason: str, value: Optional[float] = None, threshold: Optional[float] = None) -> Verdict:
    return Verdict(reason, value, threshold, True)


def judge_clipping(song: Song, config: QualityConfig) -> Verdict:
    """`clipping`: the share of source samples in runs pinned at the peak."""
    failed = song.clip_fraction > config.max_clip_fraction
    return Verdict("clipping", song.clip_fraction, config.max_clip_fraction, not failed,
                   f"{song.clip_fraction:.4%} of samples pinned at the peak (> {config.max_clip_fraction:.4%})")


def judge_sample_rate(song: Song, config: QualityConfig) -> Verdict:
    """`low_sample_rate`: a source rate below the project's floor (off by default).

    Kept apart from `low_bandwidth` on purpose: a native 8 kHz recording fills its band;
    whether a dataset wants one is the project's choice, not a defect of the file.
    """
    floor = config.min_source_sample_rate
    failed = bool(floor) and 0 < song.source_sample_rate < floor
    return Verdict("low_sample_rate", float(song.source_sample_rate), float(floor), not failed,
                   f"source rate {song.source_sample_rate} Hz < {floor} Hz")


def judge_bandwidth(song: Song, config: QualityConfig) -> Verdict:
    """`low_bandwidth`: content ending far below the source's own band.

    Measured against the audible band too, so a 96/192 kHz file is not faulted for having
    nothing above 20 kHz. The ratio 0.45 sits between audio upsampled from 16 kHz (content
    to 0.39 of 20 kHz) and from 22.05 kHz (0.53), both measured.
    """
    reference = min(song.source_sample_rate / 2.0, 20000.0)
    if not reference:
        return _passed("low_bandwidth", song.bandwidth_hz)
    threshold = config.min_bandwidth_ratio * reference
    return Verdict("low_bandwidth", song.bandwidth_hz, threshold, song.bandwidth_hz >= threshold,
                   f"content ends at {song.bandwidth_hz:.0f} Hz < {threshold:.0f} Hz "
                   f"({config.min_bandwidth_ratio} of {reference:.0f} Hz; source rate {song.source_sample_rate} Hz)")


def judge_word_density(song: Song, config: QualityConfig) -> Verdict:
    """`implausible_word_density`: annotated words per second outside a singable range."""
    if not song.has_lyrics or not song.words:
        return _passed("implausible_word_density")
    rate = words_per_second(song)
    if rate is None:
        return _passed("implausible_word_density")
    low, high = config.min_words_per_second, config.max_words_per_second
    failed_at = low if rate < low else high if rate > high else None
    return Verdict("implausible_word_density", rate, failed_at, failed_at is None,
                   f"{rate:.2f} words/s outside [{low}, {high}]")


def judge_vocal_activity(song: Song, config: QualityConfig) -> Verdict:
    """`instrumental_only`: lyrics on audio where nobody sings."""
    if not song.has_lyrics or not song.words or song.vocal_activity < 0:
        return _passed("instrumental_only", None, config.min_vocal_activity)
    return Verdict("instrumental_only", song.vocal_activity, config.min_vocal_activity,
                   song.vocal_activity >= config.min_vocal_activity,
                   f"vocal activity {song.vocal_activity:.3f} < {config.min_vocal_activity} with lyrics")


def judge_missing_lyrics(song: Song, config: QualityConfig) -> Verdict:
    """`no_lyrics`: an audio-folder song that came without lyrics and is not to be transcribed,
    yet someone sings in it. Kept as an instrumental when its vocal activity is low."""
    if song.source != "audiofolder" or song.has_lyrics or song.transcribe_lyrics or song.vocal_activity < 0:
        return _passed("no_lyrics", None, config.min_vocal_activity)
    return Verdict("no_lyrics", song.vocal_activity, config.min_vocal_activity,
                   song.vocal_activity < config.min_vocal_activity,
                   f"vocal activity {song.vocal_activity:.3f} >= {config.min_vocal_activity} and no lyrics file "
                   f"(add a .lrc or .txt beside it, or run with --transcribe-missing-lyrics)")


def judge_language(song: Song, config: QualityConfig) -> Verdict:
    """`language_mismatch`: the lyrics are confidently in another language than the metadata's,
    and hardly any part of them is in the metadata's (`language_min_share` of the words)."""
    expected = LANGUAGE_CODES.get(song.language.strip().lower())
    if not (expected and song.lyrics_language and song.lyrics_language_share >= 0):
        return _passed("language_mismatch", None, config.language_min_share)
    failed = (song.lyrics_language != expected
              and song.lyrics_language_confidence >= config.language_min_confidence
              and song.lyrics_language_share < config.language_min_share)
    return Verdict("language_mismatch", song.lyrics_language_share, config.language_min_share, not failed,
                   f"lyrics look {song.lyrics_language} (p={song.lyrics_language_confidence:.2f}) and "
                   f"{song.lyrics_language_share:.0%} of their words look {expected}; metadata says {song.language}")


def judge_lyrics_match(song: Song, config: QualityConfig) -> Verdict:
    """`lyrics_mismatch`: the transcript does not match the lyrics.

    Two measures, either rejects: the transcript's WER against the lyrics above
    `lyrics_match_max_wer` (a long transcript of other words), or fewer than
    `lyrics_match_min_shared` of the distinctive words shared with it (a transcript of other
    words no longer than the lyrics has a WER of exactly 1.0, as a short one of the right
    words nearly does). Songs with fewer than `lyrics_match_min_words` lyric words are not
    judged: their transcripts are too short.
    """
    wer, shared = song.lyrics_match_wer, song.lyrics_match_shared
    if wer is None or len(song.words) < config.lyrics_match_min_words:
        return _passed("lyrics_mismatch", shared, config.lyrics_match_min_shared)
    if 0 < song.bandwidth_hz < config.lyrics_match_min_bandwidth_hz:
        # Telephone-band audio (8 and 11.025 kHz sources) is transcribed too poorly to judge by:
        # the right lyrics measured WER 1.05-1.24 and 0 % shared there.
        return _passed("lyrics_mismatch", None, config.lyrics_match_min_shared)
    if wer > config.lyrics_match_max_wer:
        return Verdict("lyrics_mismatch", wer, config.lyrics_match_max_wer, False,
                       f"transcript WER {wer:.2f} against the lyrics (> {config.lyrics_match_max_wer})")
    if shared is None:
        return _passed("lyrics_mismatch", None, config.lyrics_match_min_shared)
    return Verdict("lyrics_mismatch", shared, config.lyrics_match_min_shared, shared >= config.lyrics_match_min_shared,
                   f"the transcript shares {shared:.0%} of the lyrics' distinctive words "
                   f"(< {config.lyrics_match_min_shared:.0%}; WER {wer:.2f})")


# In the order a song meets them: it is rejected for the first it fails. The lyrics match needs
# the alignment stage's transcript, so it is judged after that stage (`LyricsMatchFilter`).
BEFORE_ALIGNMENT: tuple[Callable[[Song, QualityConfig], Verdict], ...] = (
    judge_clipping, judge_sample_rate, judge_bandwidth, judge_word_density, judge_vocal_activity,
    judge_missing_lyrics, judge_language)
AFTER_ALIGNMENT: tuple[Callable[[Song, QualityConfig], Verdict], ...] = (judge_lyrics_match,)
QUALITY_FILTERS = BEFORE_ALIGNMENT + AFTER_ALIGNMENT


def quality_verdicts(song: Song, config: QualityConfig) -> list[Verdict]:
    """Every quality filter's verdict on `song`, failed or not (the false-reject benchmark's table)."""
    return [judge(song, config) for judge in QUALITY_FILTERS]


def check_quality(song: Song, config: QualityConfig, filters=BEFORE_ALIGNMENT) -> None:
    """Raise `RejectError` (with the measured value and threshold) for the first of `filters` `song` fails."""
    for judge in filters:
        judge(song, config).raise_if_failed()


class QualityFilter(RejectingDoFn):
    """Song -> measured song, or a reject naming the filter it failed."""

    stage = "quality"

    def __init__(self, config: QualityConfig):
        super().__init__()
        self.config = config

    def setup(self) -> None:
        if self.config.instrumental_check:
            vocal_activity(np.zeros(16000, np.float32))

    def transform(self, song: Song) -> Song:
        song = measure(song, self.config)
        check_quality(song, self.config)
        return song


class LyricsMatchFilter(RejectingDoFn):
    """Aligned song -> itself, or a `lyrics_mismatch` reject: the lyrics are not what its transcript heard."""

    stage = "quality"

    def __init__(self, config: QualityConfig):
        super().__init__()
        self.config = config

    def transform(self, song: Song) -> Song:
        check_quality(song, self.config, AFTER_ALIGNMENT)
        return song
