"""Aligning a song line by line, each line in its own window at its onset (given or estimated)."""
from __future__ import annotations

import dataclasses
from typing import Optional, TYPE_CHECKING

import numpy as np

from lyricbeam.schemas.records import AlignedWord
from lyricbeam.transforms.alignment.aligner import HOP, SAMPLE_RATE, WINDOW_FRAMES, WhisperAligner
from lyricbeam.transforms.alignment.config import AlignConfig

if TYPE_CHECKING:
    from lyricbeam.transforms.alignment.transcribe import WindowEncodings


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
