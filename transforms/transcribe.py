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

import threading
from typing import NamedTuple

import numpy as np

BACKENDS = ("faster-whisper", "whisper-timestamped")


class HeardWord(NamedTuple):
    text: str
    start: float
    end: float
    confidence: float


_MODELS: dict[tuple, object] = {}
_LOCK = threading.Lock()


def _cached(key: tuple, load):
    # Loaded once per process (a Beam worker runs many songs), not once per song.
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load()
        return _MODELS[key]


# faster-whisper's temperature-fallback samples may not repeat an n-gram of this many tokens.
FALLBACK_NO_REPEAT_NGRAM = 4


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

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, *args, **kwargs):
        if kwargs.get("sampling_temperature", 0.0) > 0.0 and self._size > 0:
            kwargs["no_repeat_ngram_size"] = self._size
        return self._model.generate(*args, **kwargs)


WHISPER_MAX_LENGTH = 448  # prompt + generated tokens of one 30 s window
HOTWORDS_MAX = WHISPER_MAX_LENGTH // 2 - 1  # faster-whisper keeps at most this many hint tokens


def transcribe_faster_whisper(model_dir: str, audio: np.ndarray, language: str, threads: int = 1,
                              hint: str = "", word_times: bool = True, max_tokens: int = 0,
                              seed: int = 0, fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM) -> list[HeardWord]:
    """Words of faster-whisper's greedy transcription of 16 kHz `audio`, with times and probabilities.

    `hint`: text expected in the audio (e.g. the lyrics of lines not yet found), given to
    every 30 s window's prompt as hotwords. `word_times=False` (text only, e.g. for a word
    error rate): one decoding at temperature 0, no word-timing pass; each word gets its
    segment's times and probability 0. `max_tokens` (> 0): at most this many tokens decoded
    per 30 s window, so a decoding loop stops there instead of at Whisper's limit. `seed`:
    of the temperature-fallback samples. `fallback_no_repeat_ngram` (0: off): those samples may
    not repeat an n-gram of this many tokens (`NoRepeatsWhenSampling`).
    """
    def load():
        from faster_whisper import WhisperModel

        model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=max(1, threads))
        model.model = NoRepeatsWhenSampling(model.model, fallback_no_repeat_ngram)
        return model

    model = _cached(("faster-whisper", model_dir, threads, fallback_no_repeat_ngram), load)
    import ctranslate2

    # Temperature fallback samples are seeded. The seed reaches a CTranslate2 worker thread
    # only at its first sample, so a song's transcripts are independent of the songs before
    # it only after `restart_sampling()` (text-only calls, `word_times=False`, never sample).
    ctranslate2.set_random_seed(seed)
    segments, _ = model.transcribe(np.asarray(audio, np.float32), language=language or None, beam_size=1,
                                   word_timestamps=word_times, condition_on_previous_text=False,
                                   hotwords=hint or None, temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if word_times else 0.0,
                                   max_new_tokens=window_token_limit(max_tokens, bool(hint)))
    if not word_times:
        return [HeardWord(text, float(s.start), float(s.end), 0.0) for s in segments for text in s.text.split()]
    return [HeardWord(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for s in segments for w in s.words]


def window_token_limit(max_tokens: int, hinted: bool) -> int | None:
    """`max_tokens` as faster-whisper's `max_new_tokens`, within what the window's prompt leaves (None: no limit)."""
    if max_tokens <= 0:
        return None
    # prompt: previous-text marker + hotwords, start-of-transcript, language, task, no-timestamps
    prompt = (1 + HOTWORDS_MAX if hinted else 0) + 4
    return max(1, min(max_tokens, WHISPER_MAX_LENGTH - prompt))


def restart_sampling() -> None:
    """Drop the loaded faster-whisper models, so that the temperature-fallback samples of what is
    transcribed next depend on it alone, not on what this process transcribed before.

    CTranslate2 seeds a worker thread's generator once, at its first sample; a reloaded model
    (about 0.4 s for base) has new worker threads. Songs transcribed at once on one model in
    several threads still share its samples.
    """
    with _LOCK:
        for key in [key for key in _MODELS if key[0] == "faster-whisper"]:
            del _MODELS[key]


def transcribe_whisper_timestamped(checkpoint: str, audio: np.ndarray, language: str, threads: int = 1,
                                   hint: str = "", max_tokens: int = 0, seed: int = 0) -> list[HeardWord]:
    """Words of whisper-timestamped's transcription of 16 kHz `audio` (greedy, fp32 on CPU); `hint` is the
    initial prompt; `max_tokens` (> 0) bounds the tokens decoded per 30 s window; `seed`: of the
    temperature-fallback samples."""
    import torch
    import whisper_timestamped

    from transforms.whisper_models import load_openai_whisper

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(seed)  # temperature fallback samples: seeded for reproducible transcripts
    model = _cached(("whisper-timestamped", checkpoint), lambda: load_openai_whisper(checkpoint))
    if not model.is_multilingual:
        language = "en"
    result = whisper_timestamped.transcribe(model, np.asarray(audio, np.float32), language=language or None,
                                            fp16=False, beam_size=None, best_of=None,
                                            condition_on_previous_text=False, verbose=None,
                                            initial_prompt=hint or None,
                                            sample_len=window_token_limit(max_tokens, bool(hint)))
    return [HeardWord(w["text"].strip(), float(w["start"]), float(w["end"]), float(w.get("confidence", 0.0)))
            for s in result["segments"] for w in s.get("words", [])]


def transcribe(backend: str, audio: np.ndarray, language: str, model_dir: str = "", checkpoint: str = "",
               threads: int = 1, hint: str = "", word_times: bool = True, max_tokens: int = 0,
               seed: int = 0, fallback_no_repeat_ngram: int = FALLBACK_NO_REPEAT_NGRAM) -> tuple[list[HeardWord], str]:
    """(words, model name) of `audio` transcribed by `backend`.

    `model_dir`: a CTranslate2 Whisper directory (empty: the multilingual base, which also
    transcribes English better than tiny.en on sung lyrics — bench/results/README.md).
    `checkpoint`: an openai-whisper checkpoint for whisper-timestamped (empty: converted
    from `model_dir`). `word_times=False`: text is enough (faster-whisper then skips its
    word-timing pass and temperature fallback; whisper-timestamped always times words).
    `max_tokens` (> 0): at most this many tokens decoded per 30 s window. `seed`: of the
    temperature-fallback samples (a different seed is another equally likely transcript).
    `fallback_no_repeat_ngram` (0: off; faster-whisper only): those samples may not repeat an
    n-gram of this many tokens.
    """
    import os

    from transforms.whisper_models import base_dir, openai_checkpoint

    if backend not in BACKENDS:
        raise ValueError(f"unknown transcription backend {backend!r}; known: {BACKENDS}")
    model_dir = model_dir or base_dir()
    if backend == "faster-whisper":
        words = transcribe_faster_whisper(model_dir, audio, language, threads, hint, word_times, max_tokens, seed,
                                          fallback_no_repeat_ngram)
        return words, os.path.basename(model_dir.rstrip("/"))
    checkpoint = checkpoint or openai_checkpoint(model_dir)
    return (transcribe_whisper_timestamped(checkpoint, audio, language, threads, hint, max_tokens, seed),
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
    from transforms.line_placement import normalize_word

    reference = collapse_repeats([w for w in (normalize_word(x) for x in lyric_words) if w])
    hypothesis = collapse_repeats([w for w in (normalize_word(x.text) for x in heard) if w])
    return word_error_rate(reference, hypothesis)
