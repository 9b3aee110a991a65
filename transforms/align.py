"""Forced alignment of known lyrics to audio with CTranslate2 Whisper.

`WhisperAligner.align_window` gives every lyric word of a window (≤ 30 s of 16 kHz audio) a
start, an end and a confidence from Whisper's cross-attention alignment of the KNOWN text
(`ctranslate2.models.Whisper.align`), not from a transcription. Tokens are mapped back to
the lyric words by this module's own token boundaries (each word tokenised on its own, with
its leading space), so Whisper's word splitting — which differs on apostrophes and
punctuation — never shifts later words.

`align_with_line_onsets` places windows at given line onsets (DALI line times, or the
reference lines of the benchmark's `--reference-lines` mode).
"""
from __future__ import annotations

import dataclasses

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # mel frames of 10 ms
TOKENS_PER_SECOND = 50  # encoder frames: 20 ms
WINDOW_FRAMES = 3000  # Whisper's 30 s input


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    enabled: bool = True
    required: bool = False  # True: a song whose alignment fails is rejected
    model_dir: str = ""  # any CTranslate2 Whisper model directory; empty: tiny.en / base by language
    lead_s: float = 0.25  # audio before a line's onset in its window (given onsets)
    slack_s: float = 1.0  # audio before and after a line's window (estimated onsets)
    transcribe_model_dir: str = ""  # the transcription pass's model; empty: the multilingual base
    threads: int = 1


@dataclasses.dataclass
class AlignedWord:
    text: str
    start: float
    end: float
    confidence: float


class WhisperAligner:
    """A loaded CTranslate2 Whisper model with its tokenizer and feature extractor."""

    def __init__(self, model_dir: str, language: str = "en", threads: int = 1):
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="int8",
                                                 intra_threads=max(1, threads))
        hf_tokenizer = tokenizers.Tokenizer.from_file(f"{model_dir}/tokenizer.json")
        multilingual = self.model.is_multilingual
        self.tokenizer = Tokenizer(hf_tokenizer, multilingual, task="transcribe",
                                   language=language if multilingual else None)
        self.features = FeatureExtractor(feature_size=self.model.n_mels)

    def word_tokens(self, words: list[str]) -> list[list[int]]:
        """Token ids of each word as Whisper would see it inside a sentence (leading space)."""
        return [self.tokenizer.encode(" " + w.strip()) or [] for w in words]

    def encode_window(self, audio: np.ndarray):
        """Whisper's log-mel input for up to 30 s of 16 kHz audio, and its content frame count."""
        import ctranslate2

        audio = np.asarray(audio[: WINDOW_FRAMES * HOP], dtype=np.float32)
        mel = self.features(audio, padding=0)[:, :WINDOW_FRAMES]
        content = min(WINDOW_FRAMES, max(1, len(audio) // HOP))
        if mel.shape[1] < WINDOW_FRAMES:
            mel = np.pad(mel, ((0, 0), (0, WINDOW_FRAMES - mel.shape[1])))
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32)), content

    def align_window(self, audio: np.ndarray, words: list[str], offset_s: float = 0.0) -> list[AlignedWord]:
        """Start, end and confidence of each of `words` sung in `audio` (≤ 30 s), times + `offset_s`."""
        per_word = self.word_tokens(words)
        tokens = [t for w in per_word for t in w]
        if not tokens:
            return [AlignedWord(w, offset_s, offset_s, 0.0) for w in words]
        features, content = self.encode_window(audio)
        result = self.model.align(features, self.tokenizer.sot_sequence, [tokens], content)[0]
        return words_from_alignment(words, per_word, result.alignments, result.text_token_probs, offset_s)


def words_from_alignment(words: list[str], per_word: list[list[int]], alignments, token_probs,
                         offset_s: float = 0.0) -> list[AlignedWord]:
    """Per-word times from a token-level alignment path, by the words' own token boundaries.

    `alignments` is the monotonic path of (token index, encoder frame) pairs; a token starts
    at the first frame the path reaches it. A word spans from its first token's start to the
    start of the token after its last (the end-of-text token for the last word).
    """
    text_index = np.array([a[0] for a in alignments])
    time_index = np.array([a[1] for a in alignments])
    n_tokens = sum(len(t) for t in per_word)
    starts = np.full(n_tokens + 1, np.nan)
    for token in range(n_tokens + 1):
        hits = np.flatnonzero(text_index == token)
        if len(hits):
            starts[token] = time_index[hits[0]] / TOKENS_PER_SECOND
    # Tokens the path skipped take the next known start (monotonic by construction).
    for token in range(n_tokens - 1, -1, -1):
        if np.isnan(starts[token]):
            starts[token] = starts[token + 1]
    if np.isnan(starts[n_tokens]):
        starts[n_tokens] = np.nanmax(starts) if np.isfinite(starts).any() else 0.0
    starts = np.nan_to_num(starts, nan=0.0)
    probs = np.asarray(token_probs, dtype=np.float64)
    out, first = [], 0
    for word, toks in zip(words, per_word):
        last = first + len(toks)
        if toks:
            start, end = starts[first], starts[last]
            conf = float(np.mean(probs[first:last])) if len(probs) >= last else 0.0
        else:  # nothing to align (e.g. a lone symbol): pinned to the previous word's end
            start = end = starts[first]
            conf = 0.0
        out.append(AlignedWord(word, float(start + offset_s), float(max(start, end) + offset_s), conf))
        first = last
    return out


def windows_from_line_onsets(line_onsets: list[float], duration: float, lead_s: float = 0.25,
                             tail_s: float = 0.0) -> list[tuple[float, float, list[int]]]:
    """One window per line: (start s, end s, [line index]).

    A window opens `lead_s` before its line's onset and ends `tail_s` after the next line's
    onset (the last at the end of the audio), at most 30 s after it opened; estimated onsets
    want the slack, reference onsets do not. One line per window
    measured better than several lines per window (bench/results/README.md: AAE 0.37 s
    against 0.63 s with ≤ 25 s groups), as each line is then held to its own stretch.
    """
    windows = []
    for i, onset in enumerate(line_onsets):
        start = max(0.0, onset - lead_s)
        following = line_onsets[i + 1] + tail_s if i + 1 < len(line_onsets) else duration
        end = min(max(following, start + 1.0), start + WINDOW_FRAMES * HOP / SAMPLE_RATE, duration)
        windows.append((start, end, [i]))
    return windows


def align_with_line_onsets(aligner: WhisperAligner, audio: np.ndarray, lines: list[list[str]],
                           line_onsets: list[float], config: AlignConfig = AlignConfig(),
                           estimated: bool = False) -> list[AlignedWord]:
    """Align every word of `lines` (lists of words) in windows opened at the given line onsets.

    `estimated`: the onsets come from `line_placement`, so windows get `config.slack_s` of
    extra audio on both sides.
    """
    duration = len(audio) / SAMPLE_RATE
    lead, tail = (config.slack_s, config.slack_s) if estimated else (config.lead_s, 0.0)
    out: list[AlignedWord] = []
    for start, end, members in windows_from_line_onsets(line_onsets, duration, lead, tail):
        words = [w for i in members for w in lines[i]]
        clip = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        out += aligner.align_window(clip, words, offset_s=start)
    return out
