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

import numpy as np

from schemas.records import Song
from transforms.audio_store import song_blocks, song_length
from transforms.rejects import RejectError, RejectingDoFn

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
    lyrics_match_min_words: int = 20  # fewer lyric words: the WER is too noisy to reject on
    # Transcript WER against the lyrics: right lyrics measured 0.31-1.00 (sung Tagalog, English
    # poorly recognised), another song's 0.97-4.22 (bench/results/README.md): only clear mismatches.
    lyrics_match_max_wer: float = 1.0
    instrumental_check: bool = True
    min_vocal_activity: float = 0.15  # p90 speech probability; measured in bench/results/dedup_quality.md
    max_clip_fraction: float = 0.001
    min_bandwidth_ratio: float = 0.40  # real bandwidth / min(Nyquist of the source rate, 20 kHz)
    min_words_per_second: float = 0.05
    max_words_per_second: float = 7.0


def clip_fraction(samples: np.ndarray, min_run: int = 4) -> float:
    """Share of samples in runs of >= `min_run` consecutive samples pinned at the peak level."""
    x = np.abs(samples).max(axis=1) if samples.ndim == 2 else np.abs(samples)
    peak = float(x.max()) if x.size else 0.0
    if peak <= 0:
        return 0.0
    pinned = x >= peak - 2.0 / 32768
    padded = np.concatenate([[False], pinned, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    return float(lengths[lengths >= min_run].sum() / len(x))


def bandwidth_hz(samples: np.ndarray, rate: int, max_seconds: float = 60.0) -> float:
    """Highest frequency whose smoothed power stands clear of the noise floor.

    "Clear" is 20 dB above the spectrum's 10th percentile and no more than 80 dB below its
    peak.
Audio upsampled from a low rate (or low-pass encoded) has nothing above its
    old Nyquist; real wide-band audio keeps content to near its own.
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
    threshold = max(smooth[4:].max() - 80.0, np.percentile(smooth, 10) + 20.0)
    above = np.flatnonzero(smooth >= threshold)
    return float(freqs[above[-1]]) if len(above) else 0.0


_VAD = {}
_VAD_LOCK = threading.Lock()


VAD_WINDOW = 512
VAD_BLOCK = 10000 * VAD_WINDOW  # 320 s at 16 kHz: the model's own batch size


def vocal_activity(y: np.ndarray, sr: int = 16000) -> float:
    """90th percentile of Silero VAD's speech probability over 32 ms chunks (0..1)."""
    return vocal_activity_blocks((y[i: i + VAD_BLOCK] for i in range(0, len(y), VAD_BLOCK)), sr)


def vocal_activity_blocks(blocks, sr: int = 16000) -> float:
    """`vocal_activity` of audio given as consecutive blocks (each a multiple of 512 samples but the last)."""
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
            probs.append(_VAD["model"](np.ascontiguousarray(block[:usable], dtype=np.float32)).reshape(-1))
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


def words_per_second(song: Song) -> float:
    """Annotated words per second of the span they cover (at least 1 s)."""
    if not song.words:
        return 0.0
    span = max(w.end for w in song.words) - min(w.start for w in song.words)
    return len(song.words) / max(span, 1.0)


def measure(song: Song, config: QualityConfig) -> Song:
    """Fill vocal activity and lyrics language (the rest comes from clean)."""
    changes = {}
    if config.instrumental_check and song.source == "dali" and song_length(song):
        blocks = (block for _, block in song_blocks(song, VAD_BLOCK))
        changes["vocal_activity"] = vocal_activity_blocks(blocks, song.sample_rate)
    if config.language_check and song.source == "dali" and song.text:
        words = _WORD.findall(song.text)
        if len(words) >= config.language_min_words:
            code, prob = detect_language(" ".join(words))
            changes.update(lyrics_language=code, lyrics_language_confidence=prob)
    return song.replace(**changes) if changes else song


def check_quality(song: Song, config: QualityConfig) -> None:
    """Raise `RejectError` for the first quality filter `song` fails."""
    if song.clip_fraction > config.max_clip_fraction:
        raise RejectError("clipping", f"{song.clip_fraction:.4%} of samples pinned at the peak")
    # Measured against the audible band too, so a 96/192 kHz file is not faulted for
    # having nothing above 20 kHz.
    reference = min(song.source_sample_rate / 2.0, 20000.0)
    if reference and song.bandwidth_hz < config.min_bandwidth_ratio * reference:
        raise RejectError("low_bandwidth", f"content ends at {song.bandwidth_hz:.0f} Hz "
                          f"(source rate {song.source_sample_rate} Hz)")
    if song.source == "dali" and song.words:
        rate = words_per_second(song)
        if not config.min_words_per_second <= rate <= config.max_words_per_second:
            raise RejectError("implausible_word_density", f"{rate:.2f} words/s")
    if song.source == "dali" and song.words and 0 <= song.vocal_activity < config.min_vocal_activity:
        raise RejectError("instrumental_only",
                          f"vocal activity {song.vocal_activity:.3f} < {config.min_vocal_activity} with lyrics")
    expected = LANGUAGE_CODES.get(song.language.strip().lower())
    if (expected and song.lyrics_language and song.lyrics_language != expected
            and song.lyrics_language_confidence >= config.language_min_confidence):
        raise RejectError("language_mismatch", f"lyrics look {song.lyrics_language} "
                          f"(p={song.lyrics_language_confidence:.2f}), metadata says {song.language}")
    check_lyrics_match(song, config)


def check_lyrics_match(song: Song, config: QualityConfig) -> None:
    """Raise `lyrics_mismatch` when the transcript's WER against the lyrics exceeds the limit
    (songs with fewer than `lyrics_match_min_words` lyric words are not judged: their WER is noise)."""
    if (song.lyrics_match_wer is not None and song.lyrics_match_wer > config.lyrics_match_max_wer
            and len(song.words) >= config.lyrics_match_min_words):
        raise RejectError("lyrics_mismatch", f"transcript WER {song.lyrics_match_wer:.2f} against the lyrics "
                          f"(> {config.lyrics_match_max_wer})")


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
