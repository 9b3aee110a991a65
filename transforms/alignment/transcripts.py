"""What transcripts give the alignment: where the lines are when the source has no times, and the lyrics match.

A transcription pass anchors lyric words (`line_placement`), the aligner searches for the lines
no anchor holds (`search_unanchored_lines`), and every placement gets a score; a doubtful one is
tried again from the transcripts of other seeds (`placement_by_transcripts`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional, TYPE_CHECKING

import numpy as np

from lyricbeam.schemas.records import AlignedWord
from lyricbeam.transforms.alignment.aligner import HOP, SAMPLE_RATE, WINDOW_FRAMES, WhisperAligner, placement_aligner_for
from lyricbeam.transforms.alignment.config import AlignConfig
from lyricbeam.transforms.alignment.windows import align_with_line_onsets

if TYPE_CHECKING:
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings


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
                            reach_s: Optional[float] = None, encodings: Optional["WindowEncodings"] = None,
                            only_lines=None) -> list[float]:
    """`onsets` with the lines no transcript word anchored placed by the aligner itself
    (with `only_lines`, a set of line indices: in the stretches that hold one of them).

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
        if only_lines is not None and not any(first_line <= line <= last_line for line in only_lines):
            continue
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
    from lyricbeam.transforms.alignment.line_placement import line_onsets_from_anchors, place_lines, unanchored_stretches
    from lyricbeam.transforms.alignment.repeated_lines import block_anchors, block_moves, respaced_repetitions

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
    if config.tuning.repeat_min_gain > 0:
        # Repeated lines the search put where their other occurrence's sound is not: each such
        # block's first word is anchored where that sound recurs, and its stretch searched again.
        moves = block_moves(read, lines, onsets, anchors, duration, config.tuning.repeat_min_gain)
        if moves:
            moved = {line for first, last, _, _ in unanchored_stretches([len(line) for line in lines], anchors, duration)
                     if any(first <= move.lines[0] <= last for move in moves) for line in range(first, last + 1)}
            anchors = {**anchors, **block_anchors(lines, moves)}
            estimates = line_onsets_from_anchors([len(line) for line in lines], anchors, duration)
            onsets = search_unanchored_lines(placer, read, lines, anchors,
                                             [estimates[i] if i in moved else x for i, x in enumerate(onsets)],
                                             duration, config, encodings=placer_encodings, only_lines=moved)
        onsets = respaced_repetitions(lines, onsets, anchors)
    words = align_with_line_onsets(aligner, read, lines, onsets, config, estimated=True, duration=duration,
                                   encodings=final_encodings)
    return TranscriptPlacement(words, heard, transcript_model, placement_score(words), len(transcripts))
