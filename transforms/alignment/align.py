"""Forced alignment of known lyrics to audio with CTranslate2 Whisper.

`WhisperAligner.align_window` gives every lyric word of a window (≤ 30 s of 16 kHz audio) a
start, an end and a confidence from Whisper's cross-attention alignment of the KNOWN text
(`ctranslate2.models.Whisper.align`), not from a transcription. Tokens are mapped back to
the lyric words by this module's own token boundaries (each word tokenised on its own, with
its leading space), so Whisper's word splitting — which differs on apostrophes and
punctuation — never shifts later words.

`align_with_line_onsets` places windows at given line onsets (DALI line times, or the
reference lines of the benchmark's `--reference-lines` mode); `align_song` chooses where the
lines are (the source's own line times, offset-corrected, or a transcription pass) and
measures the result; `AlignLyrics` is the pipeline stage.
"""
from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

import numpy as np

from lyricbeam.schemas.records import AlignedWord, Song, SongAlignment
from lyricbeam.transforms.rejects import LOG, RejectError, RejectingDoFn
from lyricbeam.transforms.alignment.transcribe import FALLBACK_NO_REPEAT_NGRAM, FALLBACK_TEMPERATURES

if TYPE_CHECKING:
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings

SAMPLE_RATE = 16000
HOP = 160  # mel frames of 10 ms
TOKENS_PER_SECOND = 50  # encoder frames: 20 ms
WINDOW_FRAMES = 3000  # Whisper's 30 s input


BACKEND = "ctranslate2-whisper"
LINE_TIMES = ("auto", "source", "transcript")
REUSE_ENCODINGS = ("none", "placement", "all")
# Seconds added to every time the aligner gives, per bundled model: the negated median signed
# onset error on speech whose word onsets are known exactly (bench/onset_bias.py; tiny.en is
# late, base early). Other models get 0 unless `align.onset_correction_s` says otherwise.
ONSET_CORRECTION_S = {"tiny.en": -0.10, "base": 0.13}


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


def windows_from_line_onsets(line_onsets: list[float], duration: float, lead_s: float = 0.25,
                             tail_s: float = 0.0) -> list[tuple[float, float, list[int]]]:
    """One window per line: (start s, end s, [line index]).

    A window opens `lead_s` before its line's onset and ends `tail_s` after the next line's
    onset (the last at the end of the audio), at most 30 s after it opened; estimated onsets
    want the slack, reference onsets do not. One line per window holds each line to its own
    stretch; windows of several lines let the path drift between them.
    """
    windows = []
    for i, onset in enumerate(line_onsets):
        start = max(0.0, onset - lead_s)
        following = line_onsets[i + 1] + tail_s if i + 1 < len(line_onsets) else duration
        end = min(max(following, start + 1.0), start + WINDOW_FRAMES * HOP / SAMPLE_RATE, duration)
        windows.append((start, end, [i]))
    return windows


def align_with_line_onsets(aligner: WhisperAligner, audio, lines: list[list[str]],
                           line_onsets: list[float], config: AlignConfig = AlignConfig(),
                           estimated: bool = False, duration: Optional[float] = None,
                           encodings: Optional["WindowEncodings"] = None) -> list[AlignedWord]:
    """Align every word of `lines` (lists of words) in windows opened at the given line onsets.

    `audio`: 16 kHz samples, or a function `(start_s, end_s) -> samples` (so a long song is
    read window by window; then give `duration`). `estimated`: the onsets come from
    `line_placement`, so windows get `config.tuning.slack_s` of extra audio on both sides.
    `encodings`: a transcription's encoder outputs of the aligner's model, for windows inside them.
    """
    read = audio if callable(audio) else (
        lambda a, b: audio[int(round(a * SAMPLE_RATE)): int(round(b * SAMPLE_RATE))])
    if duration is None:
        duration = len(audio) / SAMPLE_RATE
    lead, tail = (config.tuning.slack_s, config.tuning.slack_s) if estimated else (config.tuning.lead_s, 0.0)
    out: list[AlignedWord] = []
    # The word sung last before each line (one pass), aligned first as its window's lead-in.
    last_before, last = [], "♪"
    for line in lines:
        last_before.append(last)
        last = line[-1] if line else last
    for start, end, members in windows_from_line_onsets(line_onsets, duration, lead, tail):
        words = [w for i in members for w in lines[i]]
        if encodings is not None and estimated and encodings.covering(start, end) is None:
            start, end = held_line_window(encodings, start, end, line_onsets, members[-1], duration, config)
        # Only with slack: at a reference onset the lead-in word would take the first word's audio.
        lead_in = last_before[members[0]] if estimated else ""
        aligned = aligner.align_window(read(start, end), words, offset_s=start, lead_in=lead_in,
                                       encodings=encodings)
        if len(aligned) > 1 and estimated:
            # With slack, the audio before the line goes partly to its first word; it is held
            # to the median length of the line's other words.
            typical = float(np.median([w.end - w.start for w in aligned[1:]]))
            aligned[0] = dataclasses.replace(aligned[0], start=max(aligned[0].start, aligned[0].end - typical))
        if aligned and not estimated:
            # The path pins the first word to the window's first frame, `lead_s` early; a
            # given onset is the better time for it.
            onset = min(max(line_onsets[members[0]], aligned[0].start), aligned[0].end)
            aligned[0] = dataclasses.replace(aligned[0], start=float(onset))
        out += aligned
    return spread_held_vowel_lines(out, lines) if config.tuning.spread_held_vowels else out


def held_line_window(encodings: "WindowEncodings", start: float, end: float, line_onsets: list[float], line: int,
                     duration: float, config: AlignConfig) -> tuple[float, float]:
    """`start`-`end`, the window of `line`, or a part of it that one transcription window holds (so that
    the aligner cuts it from that window's encoder output), trimmed by at most `config.tuning.held_trim_s` of
    slack at either end: the line's own stretch, from its onset to the next line's, always stays."""
    onset = line_onsets[line]
    following = line_onsets[line + 1] if line + 1 < len(line_onsets) else duration
    keep_from = min(max(start, onset - config.tuning.slack_s + config.tuning.held_trim_s), onset)
    keep_to = max(min(end, following + config.tuning.slack_s - config.tuning.held_trim_s), min(end, following))
    held = encodings.held_within(start, end, keep_from, keep_to)
    return held if held is not None else (start, end)


def spread_held_vowel_lines(words: list[AlignedWord], lines: list[list[str]]) -> list[AlignedWord]:
    """`words` with each line of held vowels (ooh ooh ooh) spread evenly from its first word's
    start to the next line's first word.

    Whisper's path cannot tell one bare vowel from the next and packs them anywhere in the
    window (the Spanish benchmark song's four "ooh"s, sung over 26 s, all started in its first
    9 s); such a line fills its time. The last line keeps its aligned times: nothing bounds it.
    """
    from lyricbeam.transforms.alignment.line_placement import is_held_vowel_line

    out = list(words)
    firsts = line_first_words(lines)
    for line, first in enumerate(firsts[:-1]):
        if not is_held_vowel_line(lines[line]):
            continue
        count, start, stop = len(lines[line]), out[first].start, out[firsts[line + 1]].start
        if stop <= start:
            continue
        edges = np.linspace(start, stop, count + 1)
        for k in range(count):
            out[first + k] = dataclasses.replace(out[first + k], start=float(edges[k]), end=float(edges[k + 1]))
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


def line_first_words(lines: list[list[str]]) -> list[int]:
    """Index of each line's first word in the song's flat word list."""
    from lyricbeam.transforms.alignment.line_placement import line_bounds

    return [int(x) for x in line_bounds([len(line) for line in lines])[:-1]]


def median_offset(words: list[AlignedWord], reference_onsets, window_first: list[int] = ()) -> float:
    """Median of (aligned onset - reference onset) over the words the path reached.

    `reference_onsets` may hold NaN for words without a reference time (e.g. only line
    onsets are known). Words in `window_first` (each window's first word, which the path
    pins to the window's start) are left out when other words have reference times.
    """
    ours = np.array([w.start for w in words])
    theirs = np.asarray(reference_onsets, dtype=float)
    known = np.isfinite(theirs)
    inner = known.copy()
    inner[list(window_first)] = False
    known = inner if inner.any() else known
    use = known & np.array([w.aligned for w in words], dtype=bool)
    use = use if use.any() else known
    return float(np.median(ours[use] - theirs[use])) if use.any() else 0.0


def transcribe_song(read: Callable, duration: float, language: str, config: AlignConfig, block_s: float = 300.0,
                    start: float = 0.0, hint: str = "", word_times: bool = True, max_tokens: int = 0,
                    encodings: Optional["WindowEncodings"] = None):
    """Transcript words of a song from `start` to `duration`, read in blocks of `block_s` (bounded memory); model name.

    `max_tokens` (> 0): at most this many tokens decoded per 30 s window. `encodings`: receives
    the encoder output of every window (faster-whisper), in song time."""
    from lyricbeam.transforms.alignment.transcribe import HeardWord, WindowEncodings, transcribe

    heard, model = [], ""
    while start < duration:
        end = min(duration, start + block_s)
        block = WindowEncodings() if encodings is not None else None
        words, model = transcribe(config.transcriber, read(start, end), language,
                                  model_dir=config.transcribe_model_dir,
                                  checkpoint=config.whisper_timestamped_checkpoint, threads=config.threads, hint=hint,
                                  word_times=word_times, max_tokens=max_tokens, seed=config.transcribe_seed,
                                  fallback_no_repeat_ngram=config.tuning.fallback_no_repeat_ngram,
                                  fallback_temperatures=config.tuning.fallback_temperatures, encodings=block)
        heard += [HeardWord(w.text, w.start + start, w.end + start, w.confidence) for w in words]
        if block is not None:
            encodings.extend(block, start)
        start = end
    return heard, model


def transcript_token_limit(aligner: WhisperAligner, words: list[str], duration: float, config: AlignConfig) -> int:
    """Tokens one 30 s window of the placement transcript may decode (0: no limit).

    `config.tuning.transcript_token_factor` times the lyrics' tokens per 30 s at the song's mean rate,
    plus 32 (timestamps, misheard spellings). The densest 30 s of a song held 1.5-2.3 times
    its mean on the benchmark; a window that loops to Whisper's 448 tokens, and its
    temperature-fallback samples, stop at the limit instead (one German window's fallbacks
    cost 16 s of 28).
    """
    if config.tuning.transcript_token_factor <= 0 or duration <= 0:
        return 0
    tokens = sum(len(t) for t in aligner.word_tokens(words))
    window_s = WINDOW_FRAMES * HOP / SAMPLE_RATE
    return int(np.ceil(config.tuning.transcript_token_factor * tokens * min(1.0, window_s / duration))) + 32


def densest_stretches(onsets: list[float], duration: float, count: int, length_s: float = 30.0) -> list[tuple[float, float]]:
    """Up to `count` non-overlapping `length_s` stretches holding the most word onsets, in time order."""
    onsets = np.sort(np.asarray(onsets, float))
    starts = np.arange(0.0, max(duration - length_s, 0.0) + 1.0, 1.0)
    counts = np.searchsorted(onsets, starts + length_s) - np.searchsorted(onsets, starts)
    chosen: list[tuple[float, float]] = []
    for i in np.argsort(-counts, kind="stable"):
        if len(chosen) == count or counts[i] == 0:
            break
        start = float(starts[i])
        if all(start + length_s <= a or start >= b for a, b in chosen):
            chosen.append((start, min(duration, start + length_s)))
    return sorted(chosen)


def sampled_lyrics_match(read: Callable, duration: float, words: list[AlignedWord], language: str,
                         config: AlignConfig):
    """(WER, shared distinctive words, transcript, model) of the lyrics against a transcript of the
    song's wordiest stretches (`transcribe.lyrics_match_wer`, `transcribe.shared_word_share`).

    The aligned word times say which lyric words each stretch holds, so a few 30 s stretches
    measure the match at a fraction of a whole-song transcription (`lyrics_match_chunks`;
    0 transcribes the whole song).
    """
    from lyricbeam.transforms.alignment.transcribe import lyrics_match_wer, shared_word_share

    if config.tuning.lyrics_match_chunks <= 0:
        heard, model = transcribe_song(read, duration, language, config, word_times=False)
        lyric = [w.text for w in words]
        return lyrics_match_wer(lyric, heard), shared_word_share(lyric, heard), heard, model
    heard, expected, model = [], [], ""
    for start, end in densest_stretches([w.start for w in words], duration, config.tuning.lyrics_match_chunks):
        part, model = transcribe_song(read, end, language, config, start=start, word_times=False)
        heard += part
        expected += [w.text for w in words if start <= w.start < end]
    return lyrics_match_wer(expected, heard), shared_word_share(expected, heard), heard, model


def search_unanchored_lines(aligner: WhisperAligner, read: Callable, lines: list[list[str]], anchors: dict[int, float],
                            onsets: list[float], duration: float, config: AlignConfig,
                            reach_s: Optional[float] = None, encodings: Optional["WindowEncodings"] = None) -> list[float]:
    """`onsets` with the lines no transcript word anchored placed by the aligner itself.

    Such lines lie between the last anchored word before them and the first after. The
    stretch's words — from that last anchored word, which starts the window — are aligned
    together in one window when it fits (`config.tuning.search_window_s`, 20 s). A longer stretch is
    walked window by window: each window takes the lines whose spread-out onsets lie within
    `reach_s` (default: two thirds of a window) of its start, keeps all but the last of them,
    and the next window opens at the last kept line. Windows opened later in the stretch
    compete with it for those lines (`later_windows`). `encodings`: the transcription's, for
    windows inside them.
    """
    from lyricbeam.transforms.alignment.line_placement import line_bounds, unanchored_stretches

    window_s = search_window(config)
    reach_s = window_s * 2 / 3 if reach_s is None else reach_s
    counts = [len(line) for line in lines]
    firsts = line_bounds(counts)
    flat = [w for line in lines for w in line]
    placed_onsets = list(onsets)
    for first_line, last_line, after, before in unanchored_stretches(counts, anchors, duration):
        if before - after < 0.5:
            continue
        earlier = [k for k in anchors if k < firsts[first_line]]
        start_word = max(earlier) if earlier else firsts[first_line]
        start, lead_in = after, "" if earlier else "♪"
        pending = list(range(first_line, last_line + 1))
        while pending:
            last_window = before - start <= window_s
            if not earlier and not last_window and onsets[pending[0]] >= start + reach_s:
                # Before the first anchor no line is due within reach of this window: it opens
                # where the next is due (an intro would otherwise fill it).
                start = min(onsets[pending[0]] - reach_s, before - window_s)
                start_word = firsts[pending[0]]
                lead_in = flat[start_word - 1] if start_word else "♪"
                last_window = before - start <= window_s
            taken = pending if last_window else ([l for l in pending if onsets[l] < start + reach_s] or pending[:1])
            words = flat[start_word: firsts[taken[-1] + 1]]
            window_end = held_window_end(encodings, start, min(before, start + window_s), config)
            placed = aligner.align_window(read(start, window_end), words, offset_s=start,
                                          lead_in=lead_in, encodings=encodings)
            placed_from = start_word
            if not last_window and config.tuning.search_step_s > 0:
                # The window at the last placed word may hold an instrumental passage, and the
                # path must put the lines somewhere in it: windows later in the stretch, every
                # `search_step_s`, compete by the mean token probability of the lines' words
                # (on a tie the first window stays).
                first, end = firsts[taken[0]], firsts[taken[-1] + 1]
                candidates = [(placed_from, placed)] + [
                    (first, trial) for trial in later_windows(aligner, read, flat[first:end], flat[first - 1] if first else "♪",
                                                              start, before, config, encodings)]
                placed_from, placed = max(candidates, key=lambda c: np.mean([w.confidence for w in c[1][first - c[0]:]]))
            kept = taken if last_window or len(taken) == 1 else taken[:-1]
            for line in kept:
                placed_onsets[line] = placed[firsts[line] - placed_from].start
            pending = pending[len(kept):]
            if pending:  # the next window opens at the last kept line, its first word pinned there
                # (never within a second of the stretch's end: the lines left must be sung before it)
                opening = min(max(start + 0.5, placed_onsets[kept[-1]]), max(after, before - 1.0))
                start_word, start, lead_in = firsts[kept[-1]], opening, ""
    return [float(x) for x in np.maximum.accumulate(placed_onsets)]


def held_window_end(encodings: Optional["WindowEncodings"], start: float, end: float, config: AlignConfig) -> float:
    """`end`, or an earlier end (≥ `config.tuning.search_window_min_s` after `start`) at which one transcription
    window holds the line-search window, so that it costs no encoding."""
    if encodings is None or encodings.covering(start, end) is not None:
        return end
    ends = [held_end for held_start, held_end, _ in encodings.windows
            if held_start <= start and held_end >= start + min(config.tuning.search_window_min_s, end - start)]
    return min(end, max(ends)) if ends else end


def search_window(config: AlignConfig) -> float:
    """Seconds of one line-search window: `config.tuning.search_window_s`, at most Whisper's 30 s."""
    return min(WINDOW_FRAMES * HOP / SAMPLE_RATE, config.tuning.search_window_s)


def later_windows(aligner: WhisperAligner, read: Callable, words: list[str], lead_in: str, start: float,
                  before: float, config: AlignConfig,
                  encodings: Optional["WindowEncodings"] = None) -> list[list[AlignedWord]]:
    """`words` aligned in line-search windows (`search_window`) opened every `config.tuning.search_step_s`
    after `start`, the last one ending at `before`."""
    window_s = search_window(config)
    step = config.tuning.search_step_s
    shifts = np.unique(np.minimum(np.arange(start + step, before - window_s + step, step), before - window_s))
    if encodings is not None:
        # Each window moves (by at most half a step) to where one transcription window holds it:
        # then it costs no encoding.
        held = [encodings.nearest_held_start(x, window_s, max(start + step / 2, x - step / 2), min(before - window_s, x + step / 2))
                for x in shifts]
        shifts = np.unique([x if h is None else h for x, h in zip(shifts, held)])
    return [aligner.align_window(read(shifted, shifted + window_s), words, offset_s=float(shifted),
                                 lead_in=lead_in, encodings=encodings)
            for shifted in shifts]


def transcription_encodings(config: AlignConfig) -> Optional["WindowEncodings"]:
    """An empty `WindowEncodings` for the transcription pass to fill, when aligner windows may reuse them
    (`config.reuse_encodings`; faster-whisper)."""
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings

    wanted = config.reuse_encodings != "none" and config.transcriber == "faster-whisper"
    return WindowEncodings() if wanted else None


def same_model(aligner: WhisperAligner, config: AlignConfig) -> bool:
    """Whether `aligner` runs the transcription pass's model (so its encoder outputs are the aligner's own)."""
    import os

    from lyricbeam.transforms.alignment.whisper_models import base_dir

    transcribing = config.transcribe_model_dir or base_dir()
    return os.path.realpath(aligner.model_dir) == os.path.realpath(transcribing)


def align_song(read: Callable, duration: float, lines: list[list[str]], language: str,
               config: AlignConfig = AlignConfig(), source_word_onsets=None,
               source_line_onsets=None) -> SongAlignment:
    """Forced alignment of a song's lyric `lines` (lists of words) to its audio.

    Parameters
    ----------
    read : callable
        ``read(start_s, end_s)`` -> 16 kHz mono samples of that stretch.
    duration : float
        The song's length in seconds.
    lines : list of list of str
        The lyric lines, as words.
    language : str
        ISO 639-1 code; chooses the bundled model (tiny.en for English, else the multilingual base).
    config : AlignConfig
    source_word_onsets, source_line_onsets : sequence of float, optional
        The source's onsets, one per word (DALI) or one per line.

    Returns
    -------
    SongAlignment
        With source onsets (and `line_times` "auto" or "source"): `aligned_at_source_lines`.
        Otherwise: `placement_by_transcripts` (lines placed from transcripts, a placement
        score, `suspect` below `placement_min_score`).
    """
    if config.line_times not in LINE_TIMES:
        raise ValueError(f"align.line_times must be one of {LINE_TIMES}")
    if config.reuse_encodings not in REUSE_ENCODINGS:
        raise ValueError(f"align.reuse_encodings must be one of {REUSE_ENCODINGS}")
    if source_word_onsets is None and source_line_onsets is not None:
        source_word_onsets = np.full(sum(len(line) for line in lines), np.nan)
        source_word_onsets[line_first_words(lines)] = source_line_onsets
    if config.line_times == "source" and source_word_onsets is None:
        raise ValueError("align.line_times is 'source' but the song has no word times")
    aligner, model_name = aligner_for(language, config)
    if source_word_onsets is not None and config.line_times != "transcript":
        return aligned_at_source_lines(read, duration, lines, language, config, aligner, model_name,
                                       np.asarray(source_word_onsets, dtype=float))
    return aligned_from_transcripts(read, duration, lines, language, config, aligner, model_name)


def aligned_at_source_lines(read: Callable, duration: float, lines: list[list[str]], language: str,
                            config: AlignConfig, aligner: WhisperAligner, model_name: str,
                            source: np.ndarray) -> SongAlignment:
    """The song aligned in windows at the source's line onsets, offset-corrected when that is likelier.

    A probe pass with slack around the onsets measures the median offset between the aligner's
    onsets and the source's (up to `tuning.offset_passes` times, each from the last correction,
    while at least `tuning.offset_min_s`): a window opened at a late onset cannot see the word it
    misses. The song is aligned at the source's onsets and at each corrected set, and the
    alignment with the highest mean token probability is kept. With `lyrics_match`, the
    wordiest stretches are transcribed to measure the lyrics match.
    """
    firsts = line_first_words(lines)
    onsets = source[firsts]
    candidates, shift, probe_onsets = [("source_lines", onsets)], 0.0, onsets
    for _ in range(max(0, config.tuning.offset_passes)):
        # A probe sees only `slack_s` around each onset, so a large offset is found in steps.
        probe = align_with_line_onsets(aligner, read, lines, list(probe_onsets), config, estimated=True,
                                       duration=duration)
        step = median_offset(probe, source + shift, firsts)
        if abs(step) < config.tuning.offset_min_s:
            break
        shift += step
        probe_onsets = np.clip(onsets + shift, 0.0, max(0.0, duration - 0.5))
        candidates.append(("source_lines_offset_corrected", probe_onsets))
    # The probe's offset can be the aligner's own bias rather than the source's error, so
    # the alignment's token probabilities decide whether to apply it.
    scored = []
    for placement, line_onsets in candidates:
        aligned = align_with_line_onsets(aligner, read, lines, list(line_onsets), config, duration=duration)
        scored.append((placement_score(aligned), placement, aligned))
    _, placement, words = max(scored, key=lambda item: item[0])
    wer, shared, heard, transcript_model = None, None, None, ""
    if config.lyrics_match:
        wer, shared, heard, transcript_model = sampled_lyrics_match(read, duration, words, language, config)
    return song_alignment(words, config, model_name, language, placement, wer, shared, heard is not None,
                          transcript_model, source_onset_offset_s=median_offset(words, source, firsts))


def aligned_from_transcripts(read: Callable, duration: float, lines: list[list[str]], language: str,
                             config: AlignConfig, aligner: WhisperAligner, model_name: str) -> SongAlignment:
    """The song aligned at lines placed from its transcripts (`placement_by_transcripts`), with the
    placement's score, whether it is `suspect`, and the first transcript's lyrics match."""
    from lyricbeam.transforms.alignment.transcribe import lyrics_match_wer, shared_word_share

    flat = [w for line in lines for w in line]
    placed = placement_by_transcripts(read, duration, lines, language, config, aligner)
    return song_alignment(placed.words, config, model_name, language, "transcript",
                          lyrics_match_wer(flat, placed.heard), shared_word_share(flat, placed.heard), True,
                          placed.transcript_model, placement_score=placed.score,
                          suspect=placed.score < config.placement_min_score)


def song_alignment(words: list[AlignedWord], config: AlignConfig, model_name: str, language: str, placement: str,
                   wer: Optional[float], shared: Optional[float], transcribed: bool, transcript_model: str,
                   **fields) -> SongAlignment:
    """A `SongAlignment` of `words` with its summary figures."""
    return SongAlignment(
        backend=BACKEND, model=model_name, language=language, line_placement=placement, words=words,
        mean_confidence=placement_score(words), aligned_fraction=float(np.mean([w.aligned for w in words])) if words else 0.0,
        lyrics_match_wer=wer, lyrics_match_shared=shared,
        transcript_backend=config.transcriber if transcribed else "", transcript_model=transcript_model, **fields)


class TranscriptPlacement(NamedTuple):
    """One placement of a song's lines from the anchors of `transcripts` transcripts, and its support (`placement_score`)."""

    words: list[AlignedWord]
    heard: list
    transcript_model: str
    score: float
    transcripts: int


def placement_score(words: list[AlignedWord]) -> float:
    """How well the audio supports a placement of the lyrics: the aligned words' mean token probability.

    Measured on the shared songs: a placement that slid (a block of lines put at another
    repetition of a chorus, tens of seconds off) scored well below a placement with the lines
    where they are sung, because the aligner then forces words onto audio that does not hold
    them (bench/results/align_robustness.txt).
    """
    return float(np.mean([w.confidence for w in words])) if words else 0.0


def placement_by_transcripts(read: Callable, duration: float, lines: list[list[str]],
                             language: str, config: AlignConfig, aligner: WhisperAligner) -> TranscriptPlacement:
    """The best-supported placement of `lines`, from more transcripts when the first is doubtful.

    A transcript's small numeric differences (another CPU's kernels, another seed) can move a
    block of lines to another repetition of a chorus. While the best placement scores below
    `placement_min_score`, the lines are placed again from the transcript of the next seed
    (`tuning.placement_retries` times at most) — or, with `tuning.merge_transcripts`, from the
    anchors of all transcripts so far (`line_placement.agreed_anchors`). The highest-scoring
    placement is kept.
    """
    flat = [w for line in lines for w in line]
    placer = placement_aligner_for(language, config)  # its tokenizer is the transcription model's
    transcripts: list[tuple] = []
    attempts: list[TranscriptPlacement] = []
    first_seed = config.transcribe_seed
    for seed in range(first_seed, first_seed + 1 + max(0, config.tuning.placement_retries)):
        if attempts and max(a.score for a in attempts) >= config.placement_min_score:
            break
        # Each transcript keeps the encoder outputs of its own windows (where a window starts
        # depends on what was decoded before it), for the aligner windows inside them.
        encodings = transcription_encodings(config)
        transcripts.append((*placement_transcript(read, duration, flat, language, config, placer, seed, encodings),
                            encodings))
        evidence = transcripts if config.tuning.merge_transcripts else transcripts[-1:]
        attempts.append(placed_from_transcripts(read, duration, lines, language, config, aligner, placer,
                                                [(words, model) for words, model, _ in evidence], evidence[0][2]))
    return max(attempts, key=lambda a: a.score)


def placement_transcript(read: Callable, duration: float, flat: list[str], language: str, config: AlignConfig,
                         placer: WhisperAligner, seed: int, encodings: Optional["WindowEncodings"]):
    """The song's transcript sampled with `seed` (where decoding falls back to sampling), its model's name."""
    from lyricbeam.transforms.alignment.transcribe import restart_sampling

    config = dataclasses.replace(config, transcribe_seed=seed)
    restart_sampling()  # the song's placement transcripts depend on this song and seed only
    return transcribe_song(read, duration, language, config,
                           max_tokens=transcript_token_limit(placer, flat, duration, config), encodings=encodings)


def placed_from_transcripts(read: Callable, duration: float, lines: list[list[str]],
                            language: str, config: AlignConfig, aligner: WhisperAligner, placer: WhisperAligner,
                            transcripts: list, encodings: Optional["WindowEncodings"]) -> TranscriptPlacement:
    """Lines placed from the anchors of `transcripts` ((words, model) pairs; `line_placement.place_lines`),
    then the aligner's search for unanchored lines, and the words aligned in windows at those lines."""
    from lyricbeam.transforms.alignment.line_placement import place_lines

    flat = [w for line in lines for w in line]
    heard, transcript_model = transcripts[0]
    placer_encodings = encodings if encodings is not None and same_model(placer, config) else None
    final_encodings = placer_encodings if config.reuse_encodings == "all" and aligner is placer else None

    def align_stretch(first_word, end_word, start_s, end_s, pinned=True):
        # Pinned: from an anchored word at the window's start (or from the song's start); else
        # the word sung before them takes the audio before them.
        lead_in = "" if pinned and first_word else (flat[first_word - 1] if first_word else "♪")
        placed = placer.align_window(read(start_s, end_s), flat[first_word:end_word], offset_s=start_s,
                                      lead_in=lead_in, encodings=placer_encodings)
        return [w.start for w in placed]

    onsets, anchors = place_lines(lines, heard, duration, align_stretch=align_stretch,
                                  weak_run_words=config.tuning.weak_run_words, check_window_s=search_window(config),
                                  other_transcripts=[words for words, _ in transcripts[1:]])
    onsets = search_unanchored_lines(placer, read, lines, anchors, onsets, duration, config,
                                     encodings=placer_encodings)
    words = align_with_line_onsets(aligner, read, lines, onsets, config, estimated=True, duration=duration,
                                   encodings=final_encodings)
    return TranscriptPlacement(words, heard, transcript_model, placement_score(words), len(transcripts))


def song_lyric_lines(song: Song) -> list[list[int]]:
    """Indexes of `song.words` grouped into lines: consecutive words with one parent line."""
    groups: list[list[int]] = []
    for i, word in enumerate(song.words):
        if groups and song.words[groups[-1][-1]].parent == word.parent and word.parent >= 0:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def alignment_language(song: Song) -> str:
    """ISO 639-1 code of the song's lyrics: metadata first, then what langid found, then langid now."""
    from lyricbeam.transforms.quality import LANGUAGE_CODES, detect_language

    code = LANGUAGE_CODES.get(song.language.strip().lower(), "")
    if not code and len(song.language.strip()) == 2:
        code = song.language.strip().lower()
    return code or song.lyrics_language or (detect_language(song.text)[0] if song.text.strip() else "en")


def alignment_to_json(alignment: SongAlignment) -> str:
    return json.dumps(dataclasses.asdict(alignment), sort_keys=True)


def alignment_from_json(text: str) -> SongAlignment:
    fields = json.loads(text)
    fields["words"] = [AlignedWord(**w) for w in fields["words"]]
    return SongAlignment(**fields)


class AlignLyrics(RejectingDoFn):
    """Song -> song with `alignment` (words with start, end, confidence), or a reject.

    Songs without lyrics pass with `alignment = None` (`not_applicable`); a song whose
    alignment fails is rejected (`alignment_failed`) only when `config.required`, else kept
    with `alignment = None` and counted (`failed_kept`). Results are cached per song under
    `cache_dir` (keyed by decoded audio, lyrics, times and settings), so a re-run after a
    crash does not align finished songs again.
    """

    stage = "align"

    def __init__(self, config: AlignConfig, cache_dir: str = ""):
        super().__init__()
        self.config, self.cache_dir = config, cache_dir

    def setup(self) -> None:
        # The transcription model serves every language: loaded once per worker here, not in
        # the first song (the aligners, one per language, load with their first song).
        from lyricbeam.transforms.alignment.transcribe import load_transcriber

        if self.config.enabled and (self.config.lyrics_match or self.config.line_times != "source"):
            try:
                load_transcriber(self.config.transcriber, self.config.transcribe_model_dir,
                                 self.config.whisper_timestamped_checkpoint, self.config.threads,
                                 self.config.tuning.fallback_no_repeat_ngram)
            except Exception as err:  # noqa: BLE001 - each song then meets the error and is counted
                LOG.warning("[align] transcription model not loaded at setup: %s", err)

    def _cache_path(self, song: Song, language: str) -> str:
        from lyricbeam.transforms.storage.workdir import cache_key, entry_path, result_settings

        key = cache_key(song.pcm_sha256, language, [(w.text, w.start, w.parent) for w in song.words],
                        result_settings(self.config))
        return entry_path(self.cache_dir, key, ".json")

    def _aligned(self, song: Song, language: str) -> SongAlignment:
        from lyricbeam.transforms.storage.audio_store import song_samples
        from lyricbeam.transforms.storage.workdir import read_bytes, write_atomically

        path = self._cache_path(song, language) if self.cache_dir else ""
        cached = read_bytes(path) if path else None
        if cached is not None:
            return alignment_from_json(cached.decode())
        rate = song.sample_rate

        def read(start_s: float, end_s: float) -> np.ndarray:
            clip = song_samples(song, int(round(start_s * rate)), int(round(end_s * rate)))
            if rate != SAMPLE_RATE:
                import soxr

                clip = soxr.resample(clip, rate, SAMPLE_RATE)
            return np.asarray(clip, np.float32)

        groups = song_lyric_lines(song)
        lines = [[song.words[i].text for i in group] for group in groups]
        onsets = [song.words[i].start for group in groups for i in group]
        result = align_song(read, song.duration, lines, language, self.config, onsets)
        if path:
            write_atomically(path, alignment_to_json(result).encode())
        return result

    def transform(self, song: Song) -> Song:
        if not self.config.enabled or not song.has_lyrics or not song.words:
            self._count("not_applicable")
            return song
        language = alignment_language(song)
        try:
            result = self._aligned(song, language)
            if result.aligned_fraction < self.config.tuning.min_aligned_fraction:
                raise RuntimeError(f"only {result.aligned_fraction:.0%} of words aligned "
                                   f"(< {self.config.tuning.min_aligned_fraction:.0%})")
        except Exception as err:  # noqa: BLE001 - the song is kept or rejected, never lost
            if self.config.required:
                raise RejectError("alignment_failed", f"{type(err).__name__}: {err}") from err
            self._count("failed_kept")
            return song.replace(alignment=None)
        if result.suspect:
            # Never a silent slide: counted, marked in the row, or rejected where alignment is required.
            self._count("suspect")
            if self.config.required:
                raise RejectError("alignment_failed", f"line placement not supported by the evidence: score "
                                  f"{result.placement_score:.3f} < {self.config.placement_min_score}",
                                  value=result.placement_score, threshold=self.config.placement_min_score)
        self._count("aligned")
        song = song.replace(alignment=result, lyrics_match_wer=result.lyrics_match_wer,
                            lyrics_match_shared=result.lyrics_match_shared,
                            alignment_score=result.mean_confidence)
        return song
