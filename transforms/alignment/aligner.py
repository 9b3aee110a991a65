"""The forced aligner: CTranslate2 Whisper's alignment of KNOWN text, word by word.

`WhisperAligner.align_window` gives every lyric word of a window (≤ 30 s of 16 kHz audio) a
start, an end and a confidence from Whisper's cross-attention alignment of the known text
(`ctranslate2.models.Whisper.align`), not from a transcription. Tokens are mapped back to the
lyric words by this module's own token boundaries (each word tokenised on its own, with its
leading space), so Whisper's word splitting — which differs on apostrophes and punctuation —
never shifts later words. Loaded aligners are cached per model and settings.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, TYPE_CHECKING

import numpy as np

from lyricbeam.schemas.records import AlignedWord
from lyricbeam.transforms.alignment.config import AlignConfig

if TYPE_CHECKING:
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings


SAMPLE_RATE = 16000


HOP = 160  # mel frames of 10 ms


TOKENS_PER_SECOND = 50  # encoder frames: 20 ms


WINDOW_FRAMES = 3000  # Whisper's 30 s input


BACKEND = "ctranslate2-whisper"


# Seconds added to every time the aligner gives, per bundled model: the negated median signed
# onset error on speech whose word onsets are known exactly (bench/onset_bias.py; tiny.en is
# late, base early). Other models get 0 unless `align.onset_correction_s` says otherwise.
ONSET_CORRECTION_S = {"tiny.en": -0.10, "base": 0.13}


class WhisperAligner:
    """A loaded CTranslate2 Whisper model with its tokenizer and feature extractor."""

    def __init__(self, model_dir: str, language: str = "en", threads: int = 1, onset_correction_s: float = 0.0):
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
        self.model_dir = model_dir
        self.onset_correction_s = onset_correction_s

    def word_tokens(self, words: list[str]) -> list[list[int]]:
        """Token ids of each word as Whisper would see it inside a sentence (leading space)."""
        return [self.tokenizer.encode(" " + w.strip()) or [] for w in words]

    def encode_window(self, audio: np.ndarray, pad: bool = False):
        """Whisper's log-mel input for up to 30 s of 16 kHz audio, and its content frame count.

        Unpadded (default), the encoder sees only the window's own frames (CTranslate2 accepts
        shorter inputs): a 5 s line costs a sixth of a 30 s pass.
        """
        import ctranslate2

        audio = np.asarray(audio[: WINDOW_FRAMES * HOP], dtype=np.float32)
        content = min(WINDOW_FRAMES, max(1, len(audio) // HOP))
        if len(audio) < 10 * HOP:  # the STFT's reflect padding needs samples; silence after them
            audio = np.pad(audio, (0, 10 * HOP - len(audio)))
        mel = self.features(audio, padding=0)[:, :WINDOW_FRAMES]
        width = WINDOW_FRAMES if pad else min(WINDOW_FRAMES, max(2, content + content % 2))
        if mel.shape[1] < width:
            mel = np.pad(mel, ((0, 0), (0, width - mel.shape[1])))
        mel = mel[:, :width]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32)), min(content, width)

    def align_window(self, audio: np.ndarray, words: list[str], offset_s: float = 0.0,
                     pad: bool = False, lead_in: str = "", encodings: Optional["WindowEncodings"] = None) -> list[AlignedWord]:
        """Start, end and confidence of each of `words` sung in `audio` (≤ 30 s), times + `offset_s`.

        The alignment path starts on the first token at the window's first frame, so
        whatever precedes the first word would be given to it. `lead_in` (the previous
        line's last word, or a symbol) is aligned first to take that audio, then dropped.
        Every time is moved by the model's `onset_correction_s` (never before 0). `encodings`:
        a transcription's encoder outputs of this model; a window inside one of them is cut
        from it (unless `pad`) instead of encoded, and a window encoded afresh is added to them.
        """
        lead = [self.word_tokens([lead_in])[0]] if lead_in.strip() else []
        per_word = lead + self.word_tokens(words)
        tokens = [t for w in per_word for t in w]
        if not sum(len(t) for t in per_word[len(lead):]):
            return [AlignedWord(w, offset_s, offset_s, 0.0, False) for w in words]
        cut = None if encodings is None or pad else encodings.covering(offset_s, offset_s + len(audio) / SAMPLE_RATE)
        if cut is not None:
            import ctranslate2

            offset_s, frames = cut
            features = ctranslate2.StorageView.from_array(np.ascontiguousarray(frames[None], dtype=np.float32))
            content = 2 * len(frames)  # in mel frames, as for a mel input
        else:
            features, content = self.encode_window(audio, pad)
            if encodings is not None and not pad:
                # kept: a later window inside this one (a line's, in a searched stretch) is cut from it
                features = self.model.encode(features)
                encodings.add(offset_s, content * HOP / SAMPLE_RATE, np.array(features)[0])
        result = self.model.align(features, self.tokenizer.sot_sequence, [tokens], content)[0]
        aligned = words_from_alignment([lead_in] * len(lead) + list(words), per_word, result.alignments,
                                       result.text_token_probs, offset_s + self.onset_correction_s)
        return [corrected_to_zero(w) for w in aligned[len(lead):]]


def corrected_to_zero(word: AlignedWord) -> AlignedWord:
    """`word` with a start or end that a negative onset correction moved before 0 set to 0."""
    if word.start >= 0.0:
        return word
    return dataclasses.replace(word, start=0.0, end=max(0.0, word.end))


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
    reached = ~np.isnan(starts)
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
        out.append(AlignedWord(word, float(start + offset_s), float(max(start, end) + offset_s), conf,
                               bool(toks) and bool(reached[first])))
        first = last
    return out


_ALIGNERS: dict[tuple, "WhisperAligner"] = {}


def aligner_for(language: str, config: AlignConfig) -> tuple[WhisperAligner, str]:
    """The (loaded once per process) aligner for `language`, and its model name."""
    from lyricbeam.transforms.alignment.whisper_models import model_dir_for

    model_dir, model_name = model_dir_for(language, config.model_dir)
    bundled = "" if config.model_dir else ("tiny.en" if model_name.endswith("tiny.en") else "base")
    return loaded_aligner(model_dir, language, config, bundled), model_name


def loaded_aligner(model_dir: str, language: str, config: AlignConfig, bundled: str = "") -> WhisperAligner:
    """The aligner of `model_dir`, loaded once per process. Its onset correction is
    `config.onset_correction_s` when set, else the measured one of the `bundled` model it is
    ("tiny.en", "base"; "": a model the user gave, not measured: 0)."""
    correction = config.onset_correction_s
    if correction is None:
        correction = ONSET_CORRECTION_S.get(bundled, 0.0)
    key = (model_dir, language, config.threads, correction)
    if key not in _ALIGNERS:
        _ALIGNERS[key] = WhisperAligner(model_dir, language or "en", config.threads, correction)
    return _ALIGNERS[key]


def placement_aligner_for(language: str, config: AlignConfig) -> WhisperAligner:
    """The aligner that places lines without transcript anchors and checks doubtful anchors.

    Placing a line means choosing between windows by the likelihood of its words, and tiny.en's
    token probabilities on sung English hardly tell windows apart: with the multilingual base
    placing them (the model of the transcription pass) and tiny.en timing the words, the
    English song's AAE over three transcription seeds fell from 0.84-1.65 s to 0.65-0.73 s.
    """
    from lyricbeam.transforms.alignment.whisper_models import base_dir

    chosen = config.placement_model_dir or config.model_dir
    if chosen:
        return loaded_aligner(chosen, language, config)
    return loaded_aligner(base_dir(), language, config, bundled="base")


def load_alignment_models(language: str, config: AlignConfig, line_onsets_given: bool = False) -> None:
    """Load every model `align_song` uses for a song in `language` (each once per process): the
    aligner; unless the song's line onsets are given and used, the placement aligner; and the
    transcription model for placing lines or measuring the lyrics match."""
    from lyricbeam.transforms.alignment.transcribe import load_transcriber

    aligner_for(language, config)
    placing = not line_onsets_given or config.line_times == "transcript"
    if placing:
        placement_aligner_for(language, config)
    if placing or config.lyrics_match:
        load_transcriber(config.transcriber, config.transcribe_model_dir, config.whisper_timestamped_checkpoint,
                         config.threads, config.tuning.fallback_no_repeat_ngram)
