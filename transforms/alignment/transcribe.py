"""Transcription with word timestamps, and how well given lyrics match what is sung.

Two backends give the same `HeardWord` list:

- `faster-whisper` (CTranslate2, int8): the fast default.
- `whisper-timestamped` (openai-whisper in PyTorch, word times from cross-attention DTW,
  a confidence per word): runs on a checkpoint converted from the bundled CTranslate2 model
  (`whisper_models.openai_checkpoint`) or on any openai-whisper checkpoint given by path.

A transcript places lyric lines in time (`line_placement`), and its word error rate against
the lyrics flags songs whose lyrics belong to another version (`lyrics_match_wer`).
"""
from __future__ import annotations

import functools
import threading
from typing import NamedTuple, Optional

import numpy as np

BACKENDS = ("faster-whisper", "whisper-timestamped")


class HeardWord(NamedTuple):
    text: str
    start: float
    end: float
    confidence: float


_MODELS: dict[tuple, object] = {}
_LOCK = threading.Lock()
_RECORDING = threading.local()  # this thread's transcription: its mel features and where encoder outputs go


class WindowEncodings:
    """Encoder outputs of the 30 s windows a transcription pass encoded, kept for forced alignment.

    Whisper's encoder is most of an aligner window's cost (a 20 s window: 0.32 s of 0.45 s), and
    the transcription has already encoded the song in 30 s windows: an aligner window that lies
    inside one of them is cut from that output (`covering`) instead of being encoded again.
    A window's frames then carry their 30 s context, not only the window's own audio.
    """

    FRAMES_PER_SECOND = 50

    def __init__(self):
        self.windows: list[tuple[float, float, np.ndarray]] = []  # (start s, end of its audio s, frames [n, d])

    def add(self, start_s: float, content_s: float, frames: np.ndarray) -> None:
        self.windows.append((float(start_s), float(start_s + content_s), frames))

    def extend(self, other: "WindowEncodings", offset_s: float) -> None:
        self.windows += [(start + offset_s, end + offset_s, frames) for start, end, frames in other.windows]

    def covering(self, start_s: float, end_s: float) -> tuple[float, np.ndarray] | None:
        """(time of the first frame, frames) of the stretch `start_s`-`end_s` cut from the window that
        holds it with the most audio around it; None when no window holds it all.

        Never joined from two windows: frames of different 30 s contexts side by side measured
        worse than a fresh encoding (German, 20 s windows across two: onset error 0.39 -> 0.65 s).
        """
        # Not even a frame's tolerance at the end: a song's last window lacks its last 10 ms, and
        # a French song's last line cut from it to the song's end went to the end (13 s off).
        holding = [(min(start_s - start, end - end_s), start, frames) for start, end, frames in self.windows
                   if start <= start_s + 1e-6 and end_s <= end + 1e-6]
        if not holding:
            return None
        _, start, frames = max(holding, key=lambda item: item[0])
        first = int(np.floor((start_s - start) * self.FRAMES_PER_SECOND + 1e-6))
        last = min(len(frames), int(np.ceil((end_s - start) * self.FRAMES_PER_SECOND - 1e-6)))
        if last - first < 2:
            return None
        return start + first / self.FRAMES_PER_SECOND, frames[first:last]

    def held_within(self, start_s: float, end_s: float, keep_from_s: float, keep_to_s: float) -> tuple[float, float] | None:
        """The longest stretch inside `start_s`-`end_s` that still holds `keep_from_s`-`keep_to_s` and
        that one window holds (its audio: `covering` then cuts it); None when none does."""
        best = None
        for start, end, _ in self.windows:
            low, high = max(start_s, start), min(end_s, end)
            if low <= keep_from_s + 1e-9 and high >= keep_to_s - 1e-9 and (best is None or high - low > best[1] - best[0]):
                best = (low, high)
        return best

    def nearest_held_start(self, start_s: float, length_s: float, low_s: float, high_s: float) -> float | None:
        """The start nearest `start_s`, within `low_s`-`high_s`, of a `length_s` stretch that one window holds."""
        best = None
        for start, end, _ in self.windows:
            lowest, highest = max(start, low_s), min(end - length_s, high_s)
            if lowest <= highest + 1e-9:
                moved = min(max(start_s, lowest), highest)
                if best is None or abs(moved - start_s) < abs(best - start_s):
                    best = moved
        return best


def window_start_frame(window: np.ndarray, features: np.ndarray) -> int | None:
    """Index of the frame of a song's mel `features` [n_mels, frames] at which faster-whisper's
    `window` [n_mels, 3000] starts: a slice of them, or (the song's last window) a copy padded
    with zero frames after the content."""
    if np.shares_memory(window, features):
        # By where it lies in memory: values cannot tell windows in silence apart (clamped floor).
        offset = window.__array_interface__["data"][0] - features.__array_interface__["data"][0]
        return int(offset // features.strides[1])
    filled = np.flatnonzero(np.any(window != 0, axis=0))
    content = int(filled[-1]) + 1 if len(filled) else 0
    start = features.shape[-1] - 1 - content  # faster-whisper drops the features' last frame
    if content == 0 or start < 0 or not np.array_equal(features[:, start: start + content], window[:, :content]):
        return None
    return start


# A last window holding less audio than this is not transcribed: it would cost a whole 30 s
# window's encoding and decoding (about 1 s) for a song's last moments, which the window
# before it has already heard all but at most this much of.
MIN_LAST_WINDOW_S = 2.0


# A last window with at least this much padding is encoded without it when words are timed (the
# placement pass): a window padded by less is transcribed differently without its padding. Text-only
# transcriptions keep the padding: without it the lyrics-match WER of short stretches rises.
UNPADDED_LAST_WINDOW_MIN_PADDING_S = 1.0


class _ShortLastWindow(Exception):
    pass


@functools.lru_cache(maxsize=None)
def _recording_whisper_model():
    from faster_whisper import WhisperModel

    class RecordingWhisperModel(WhisperModel):
        """faster-whisper's model that keeps each window's encoder output in this thread's
        `WindowEncodings`, when a transcription asked for them, stops before a last window
        shorter than `MIN_LAST_WINDOW_S` and, when words are timed, encodes a longer last one
        without its padding (`UNPADDED_LAST_WINDOW_MIN_PADDING_S`; audio of one window keeps the
        padding Whisper was trained with)."""

        def generate_segments(self, features, *args, **kwargs):
            _RECORDING.features = features
            return super().generate_segments(features, *args, **kwargs)

        def encode(self, features):
            whole = getattr(_RECORDING, "features", None)
            window = np.asarray(features)
            window = window[0] if window.ndim == 3 else window
            start = window_start_frame(window, whole) if whole is not None else None
            hop_s = self.feature_extractor.time_per_frame
            # faster-whisper's content frames: all of the song's features but the last
            content = min(window.shape[-1], whole.shape[-1] - 1 - start) if start is not None else window.shape[-1]
            if start and content * hop_s < MIN_LAST_WINDOW_S:
                raise _ShortLastWindow()
            if (start and getattr(_RECORDING, "unpadded_last_window", False)
                    and (window.shape[-1] - content) * hop_s >= UNPADDED_LAST_WINDOW_MIN_PADDING_S):
                # The encoder's cost is in proportion to its frames (benchmark: 4 s a run less).
                features = np.ascontiguousarray(window[:, :content + content % 2])
            output = super().encode(features)
            encodings = getattr(_RECORDING, "encodings", None)
            if encodings is not None and start is not None:
                encodings.add(start * hop_s, content * hop_s, np.array(output)[0])
            return output

    return RecordingWhisperModel


def _cached(key: tuple, load):
    # Loaded once per process (a Beam worker runs many songs), not once per song.
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load()
        return _MODELS[key]


# faster-whisper's temperature-fallback samples may not repeat an n-gram of this many tokens.
FALLBACK_NO_REPEAT_NGRAM = 4
# Temperatures sampled when a window's greedy decoding fails (it looped, or is unlikely). On sung
# audio a window that still fails at 0.2 fails at every higher temperature (sung intros, mumbled
# lines): higher samples cost time and do not place lines better.
FALLBACK_TEMPERATURES = (0.2,)


class NoRepeatsWhenSampling:
    """A CTranslate2 Whisper model whose sampled decodings may not repeat any `size`-token n-gram.

    faster-whisper samples only in its temperature fallback, and a window falls back mostly
    because the greedy decoding looped ("ah ah ah ..."). On sung audio the samples at 0.2-0.6
    repeat that loop (all 5 of 5 on a French window), so a loop cost every fallback
    temperature decoded to the token limit; without repeats the first fallback sample is
    the lyrics. Greedy decoding keeps repeats: lyrics do repeat.
    """

    def __init__(self, model, size: int):
        self._model, self._size = model, size
        self.has_sampled = False  # its worker threads' random generators are seeded once used

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, *args, **kwargs):
        if kwargs.get("sampling_temperature", 0.0) > 0.0:
            self.has_sampled = True
            if self._size > 0:
                kwargs["no_repeat_ngram_size"] = self._size
        return self._model.generate(*args, **kwargs)


WHISPER_MAX_LENGTH = 448  # prompt + generated tokens of one 30 s window
HOTWORDS_MAX = WHISPER_MAX_LENGTH // 2 - 1  # faster-whisper keeps at most this many hint tokens


def transcribe_faster_whisper(model_dir: str, audio: np.ndarray, language: str, threads: int = 1,
                              hint: str = "", word_times: bool = True, max_tokens: int = 0,
                              seed: int = 0, fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM,
                              fallback_temperatures: tuple = FALLBACK_TEMPERATURES,
                              encodings: WindowEncodings | None = None) -> list[HeardWord]:
    """Words of faster-whisper's greedy transcription of 16 kHz `audio`, with times and probabilities.

    `hint`: text expected in the audio (e.g. the lyrics of lines not yet found), given to
    every 30 s window's prompt as hotwords. `word_times=False` (text only, e.g. for a word
    error rate): one decoding at temperature 0, no word-timing pass; each word gets its
    segment's times and probability 0. `max_tokens` (> 0): at most this many tokens decoded
    per 30 s window, so a decoding loop stops there instead of at Whisper's limit. `seed`:
    of the temperature-fallback samples. `fallback_no_repeat_ngram` (0: off): those samples may
    not repeat an n-gram of this many tokens (`NoRepeatsWhenSampling`). `fallback_temperatures`:
    sampled in turn while a window's decoding fails Whisper's checks (compression ratio,
    mean log-probability); none: the greedy decoding stays. `encodings`: given, every window's
    encoder output is added to it (times from the start of `audio`).
    """
    model = loaded_faster_whisper(model_dir, threads, fallback_no_repeat_ngram)
    import ctranslate2

    # Temperature fallback samples are seeded. The seed reaches a CTranslate2 worker thread
    # only at its first sample, so a song's transcripts are independent of the songs before
    # it only after `restart_sampling()` (text-only calls, `word_times=False`, never sample).
    ctranslate2.set_random_seed(seed)
    # Text only (a lyrics-match WER, where every word counts), a short last window keeps its padding.
    _RECORDING.encodings, _RECORDING.features, _RECORDING.unpadded_last_window = encodings, None, word_times
    try:
        return _faster_whisper_words(model, audio, language, hint, word_times, max_tokens, fallback_temperatures)
    finally:
        _RECORDING.encodings, _RECORDING.features, _RECORDING.unpadded_last_window = None, None, False


def loaded_faster_whisper(model_dir: str, threads: int = 1,
                          fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM):
    """faster-whisper's int8 model of `model_dir`, loaded once per process (until it samples and
    `restart_sampling` drops it)."""
    def load():
        model = _recording_whisper_model()(model_dir, device="cpu", compute_type="int8", cpu_threads=max(1, threads))
        model.model = NoRepeatsWhenSampling(model.model, fallback_no_repeat_ngram)
        return model

    return _cached(("faster-whisper", model_dir, threads, fallback_no_repeat_ngram), load)


def loaded_openai_whisper(checkpoint: str):
    """openai-whisper's model of `checkpoint` for whisper-timestamped, loaded once per process."""
    from lyricbeam.transforms.alignment.whisper_models import load_openai_whisper

    return _cached(("whisper-timestamped", checkpoint), lambda: load_openai_whisper(checkpoint))


def _model_paths(backend: str, model_dir: str, checkpoint: str) -> tuple[str, str]:
    """(CTranslate2 model directory, openai-whisper checkpoint or "") that `backend` transcribes with."""
    from lyricbeam.transforms.alignment.whisper_models import base_dir, openai_checkpoint

    if backend not in BACKENDS:
        raise ValueError(f"unknown transcription backend {backend!r}; known: {BACKENDS}")
    model_dir = model_dir or base_dir()
    if backend == "faster-whisper":
        return model_dir, ""
    return model_dir, checkpoint or openai_checkpoint(model_dir)


def load_transcriber(backend: str, model_dir: str = "", checkpoint: str = "", threads: int = 1,
                     fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM) -> None:
    """Load the model `transcribe` would use with these arguments, so that its first call does not."""
    model_dir, checkpoint = _model_paths(backend, model_dir, checkpoint)
    if backend == "faster-whisper":
        loaded_faster_whisper(model_dir, threads, fallback_no_repeat_ngram)
    else:
        loaded_openai_whisper(checkpoint)


def _faster_whisper_words(model, audio, language, hint, word_times, max_tokens, fallback_temperatures):
    segments, _ = model.transcribe(np.asarray(audio, np.float32), language=language or None, beam_size=1,
                                   word_timestamps=word_times, condition_on_previous_text=False,
                                   hotwords=hint or None, temperature=[0.0, *fallback_temperatures] if word_times else 0.0,
                                   max_new_tokens=window_token_limit(max_tokens, bool(hint)))
    heard = []
    try:
        for segment in segments:  # decoded window by window as they are asked for
            if not word_times:
                heard += [HeardWord(text, float(segment.start), float(segment.end), 0.0) for text in segment.text.split()]
            else:
                heard += [HeardWord(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                          for w in segment.words]
    except _ShortLastWindow:
        pass
    return heard


def window_token_limit(max_tokens: int, hinted: bool) -> int | None:
    """`max_tokens` as faster-whisper's `max_new_tokens`, within what the window's prompt leaves (None: no limit)."""
    if max_tokens <= 0:
        return None
    # prompt: previous-text marker + hotwords, start-of-transcript, language, task, no-timestamps
    prompt = (1 + HOTWORDS_MAX if hinted else 0) + 4
    return max(1, min(max_tokens, WHISPER_MAX_LENGTH - prompt))


def restart_sampling() -> None:
    """Drop the loaded faster-whisper models that have sampled, so that the temperature-fallback
    samples of what is transcribed next depend on it alone, not on what this process transcribed before.

    CTranslate2 seeds a worker thread's generator once, at its first sample; a reloaded model
    (about 0.3 s for base) has new worker threads, as has one that never sampled yet. Songs
    transcribed at once on one model in several threads still share its samples.
    """
    with _LOCK:
        for key in [key for key, model in _MODELS.items()
                    if key[0] == "faster-whisper" and getattr(model.model, "has_sampled", True)]:
            del _MODELS[key]


def transcribe_whisper_timestamped(checkpoint: str, audio: np.ndarray, language: str, threads: int = 1,
                                   hint: str = "", max_tokens: int = 0, seed: int = 0,
                                   fallback_temperatures: tuple = FALLBACK_TEMPERATURES) -> list[HeardWord]:
    """Words of whisper-timestamped's transcription of 16 kHz `audio` (greedy, fp32 on CPU); `hint` is the
    initial prompt; `max_tokens` (> 0) bounds the tokens decoded per 30 s window; `seed`: of the
    temperature-fallback samples, drawn at `fallback_temperatures`."""
    import whisper_timestamped

    from lyricbeam.transforms.threads import torch_threads

    model = loaded_openai_whisper(checkpoint)
    if not model.is_multilingual:
        language = "en"
    with torch_threads(threads):
        result = whisper_timestamped.transcribe(model, np.asarray(audio, np.float32), language=language or None,
                                                fp16=False, beam_size=None, best_of=None,
                                                condition_on_previous_text=False, verbose=None,
                                                temperature=(0.0, *fallback_temperatures),
                                                seed=seed,  # it seeds torch itself (1234 unless told)
                                                initial_prompt=hint or None,
                                                sample_len=window_token_limit(max_tokens, bool(hint)))
    return [HeardWord(w["text"].strip(), float(w["start"]), float(w["end"]), float(w.get("confidence", 0.0)))
            for s in result["segments"] for w in s.get("words", [])]


def transcribe(backend: str, audio: np.ndarray, language: str, *, model_dir: str = "", checkpoint: str = "",
               threads: int = 1, hint: str = "", word_times: bool = True, max_tokens: int = 0,
               seed: int = 0, fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM,
               fallback_temperatures: tuple = FALLBACK_TEMPERATURES,
               encodings: WindowEncodings | None = None) -> tuple[list[HeardWord], str]:
    """(words, model name) of `audio` transcribed by `backend`.

    `model_dir`: a CTranslate2 Whisper directory (empty: the multilingual base, which also
    transcribes English better than tiny.en on sung lyrics — bench/results/README.md).
    `checkpoint`: an openai-whisper checkpoint for whisper-timestamped (empty: converted
    from `model_dir`). `word_times=False`: text is enough (faster-whisper then skips its
    word-timing pass and temperature fallback; whisper-timestamped always times words).
    `max_tokens` (> 0): at most this many tokens decoded per 30 s window. `seed`: of the
    temperature-fallback samples (a different seed is another equally likely transcript).
    `fallback_no_repeat_ngram` (0: off; faster-whisper only): those samples may not repeat an
    n-gram of this many tokens. `fallback_temperatures`: sampled in turn while a window's
    decoding fails (faster-whisper: with `word_times` only). `encodings` (faster-whisper only):
    receives every window's encoder output (`WindowEncodings`).
    """
    import os

    model_dir, checkpoint = _model_paths(backend, model_dir, checkpoint)
    if backend == "faster-whisper":
        words = transcribe_faster_whisper(model_dir, audio, language, threads, hint, word_times, max_tokens, seed,
                                          fallback_no_repeat_ngram, tuple(fallback_temperatures), encodings)
        return words, os.path.basename(model_dir.rstrip("/"))
    return (transcribe_whisper_timestamped(checkpoint, audio, language, threads, hint, max_tokens, seed,
                                           tuple(fallback_temperatures)),
            os.path.basename(checkpoint))


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """(substitutions + deletions + insertions) / len(reference), by word-level edit distance."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    previous = np.arange(len(hypothesis) + 1)
    for i, ref in enumerate(reference, 1):
        current = np.empty_like(previous)
        current[0] = i
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return float(previous[-1] / len(reference))


def collapse_repeats(words: list[str], longest: int = 8) -> list[str]:
    """`words` with every run that repeats the run just before it (1 to `longest` words) dropped.

    Whisper loops on music ("you can't forever you can't forever ..."); left in, one loop
    counts as dozens of insertions and a song with the right lyrics looks mismatched.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(longest, len(out)), 0, -1):
            if words[i: i + n] == out[-n:]:
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def lyrics_match_wer(lyric_words: list[str], heard: list[HeardWord]) -> float:
    """WER of the transcript against the lyrics, both normalised (case, accents, punctuation) and
    with immediate repeats collapsed (`collapse_repeats`) on both sides."""
    from lyricbeam.transforms.alignment.line_placement import normalize_word

    reference = collapse_repeats([w for w in (normalize_word(x) for x in lyric_words) if w])
    hypothesis = collapse_repeats([w for w in (normalize_word(x.text) for x in heard) if w])
    return word_error_rate(reference, hypothesis)


# Words of at least this many letters carry a song's content; shorter ones ("de", "la", "you")
# recur across songs and languages and match by chance.
DISTINCTIVE_LETTERS = 4
DISTINCTIVE_MIN_WORDS = 3


def shared_word_share(lyric_words: list[str], heard: list[HeardWord]) -> Optional[float]:
    """Share of distinctive words (>= 4 letters) the transcript and the lyrics have in common, in order.

    Counted on the side holding fewer of them (a short transcript is not faulted for what it did
    not hear); ``None`` when either side holds fewer than 3, too few to judge. The WER cannot
    tell a transcript of other words from a short one: both sit at 1.0. On the benchmark's
    renderings another song's lyrics shared none of their distinctive words with the
    transcript, while the right lyrics shared 12-78 % of them.
    """
    from lyricbeam.transforms.alignment.line_placement import normalize_word

    def distinctive(words):
        return collapse_repeats([w for w in words if len(w) >= DISTINCTIVE_LETTERS])

    reference = distinctive([normalize_word(x) for x in lyric_words])
    hypothesis = distinctive([normalize_word(x.text) for x in heard])
    shorter = min(len(reference), len(hypothesis))
    if shorter < DISTINCTIVE_MIN_WORDS:
        return None
    return longest_common_subsequence(reference, hypothesis) / shorter


def longest_common_subsequence(a: list[str], b: list[str]) -> int:
    """Length of the longest sequence of items found in both `a` and `b` in the same order."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]
