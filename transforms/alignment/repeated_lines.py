"""Lines sung again are placed where the audio repeats: a block of unanchored lines moved to
where its other occurrence's sound recurs.

A chorus that no transcript word anchors is placed by the aligner's search
(`transcripts.search_unanchored_lines`), which chooses windows by token probabilities: on a
song the transcription hears badly, a whole repetition of a chorus can land ten seconds
late, and a slightly different transcript (another CPU, another seed) moves it somewhere
else again. The lyrics say where to look instead: the lines repeat lines placed elsewhere
in the song, and a repeated passage repeats its melody and harmony. The chroma of the other
occurrence's audio, slid over the stretch the block must lie in, peaks where the block is
sung — a measure that small numeric differences do not move — and the block's lines keep
the other occurrence's spacing.
"""
from __future__ import annotations

import difflib
from typing import Callable, NamedTuple

import numpy as np

from lyricbeam.transforms.alignment.line_placement import line_bounds, normalize_word, unanchored_stretches

SAMPLE_RATE = 16000
CHROMA_HOP = 320  # 50 frames per second: a fiftieth of a second is finer than onsets are judged
MIN_SECONDS_PER_WORD = 0.2  # five words a second: faster than lyrics are sung between phrases
LINE_SIMILARITY = 0.75  # "is spoken in a loud voice" ~ "is spoken with the loud voice" (0.81)


class RepeatedBlock(NamedTuple):
    """Lines `first` .. `first + count - 1` sung again as lines `again` .. `again + count - 1`."""

    first: int
    again: int
    count: int


class BlockMove(NamedTuple):
    """Lines `lines` moved so that their first starts at `start` s, spaced as the `template` lines,
    because the template's chroma matches there by `gain` more than at the lines' placement."""

    lines: range
    template: range
    start: float
    gain: float


def similar_lines(a: list[str], b: list[str], threshold: float = LINE_SIMILARITY) -> bool:
    """Whether two lyric lines are the same line sung again (equal, or nearly: a word changed in a repetition)."""
    left = " ".join(normalize_word(w) for w in a)
    right = " ".join(normalize_word(w) for w in b)
    if not left or not right:
        return False
    return left == right or difflib.SequenceMatcher(None, left, right, autojunk=False).ratio() >= threshold


def repeated_blocks(lines: list[list[str]], min_lines: int = 2, min_words: int = 6) -> list[RepeatedBlock]:
    """Maximal runs of consecutive lines that recur later as consecutive similar lines.

    Parameters
    ----------
    lines : list of list of str
        The lyric lines, as words.
    min_lines, min_words : int
        The smallest block kept: fewer lines or words recur by chance ("oh yeah / oh yeah").

    Returns
    -------
    list of RepeatedBlock
        Each (first, again, count) with ``first + count <= again``; a block is not part of a
        longer one (its line before does not match the line before its repetition).
    """
    n = len(lines)
    same = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            same[i, j] = similar_lines(lines[i], lines[j])
    blocks = []
    for i in range(n):
        for j in range(i + 1, n):
            if not same[i, j] or (i > 0 and same[i - 1, j - 1]):
                continue
            count = 1
            while i + count < j and j + count < n and same[i + count, j + count]:
                count += 1
            words = sum(len(lines[k]) for k in range(i, i + count))
            if count >= min_lines and words >= min_words:
                blocks.append(RepeatedBlock(i, j, count))
    return blocks


def chroma_frames(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = CHROMA_HOP) -> np.ndarray:
    """Chroma of `samples` (12 x frames, one every `hop` samples), each frame scaled to unit length."""
    import librosa

    if len(samples) < 4096:
        samples = np.pad(samples, (0, 4096 - len(samples)))
    chroma = librosa.feature.chroma_stft(y=np.asarray(samples, dtype=np.float32), sr=sample_rate, hop_length=hop,
                                         n_fft=4096)
    return chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9)


def lag_similarities(template: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean cosine similarity of `template`'s frames with `region`'s at every lag (frames) that fits."""
    width = template.shape[1]
    lags = region.shape[1] - width + 1
    if width == 0 or lags <= 0:
        return np.zeros(0)
    # One correlation per pitch class: memory grows with the region, not region x template.
    return sum(np.correlate(region[c], template[c], mode="valid") for c in range(template.shape[0])) / width


def block_moves(read: Callable, lines: list[list[str]], onsets: list[float], anchors: dict[int, float],
                duration: float, min_gain: float = 0.1) -> list[BlockMove]:
    """The moves of unanchored repeated lines to where their other occurrence's chroma matches best.

    For each repeated block, the lines of one occurrence that lie in a stretch without anchors
    (`unanchored_stretches`) may move inside that stretch; the corresponding lines of the other
    occurrence, from their placement to the line after them, are the template. A move is kept
    when the template matches at its new place by at least `min_gain` mean cosine similarity
    more than at the lines' placement (a placement already right gains nothing). Moves are
    returned best first, none touching lines another move moved or copied.
    """
    counts = [len(line) for line in lines]
    firsts = line_bounds(counts)
    stretch_of = {}
    for first_line, last_line, after, before in unanchored_stretches(counts, anchors, duration):
        for line in range(first_line, last_line + 1):
            stretch_of[line] = (first_line, last_line, after, before)
    candidates = []
    for block in repeated_blocks(lines):
        for moved_first, template_first in [(block.again, block.first), (block.first, block.again)]:
            moved = [k for k in range(block.count) if moved_first + k in stretch_of]
            if not moved:
                continue
            # The block's lines in the first unanchored stretch it enters.
            stretch = stretch_of[moved_first + moved[0]]
            moved = [k for k in moved if stretch_of[moved_first + k] == stretch]
            k0, k1 = moved[0], moved[-1] + 1
            lines_moved = range(moved_first + k0, moved_first + k1)
            template = range(template_first + k0, template_first + k1)
            if len(lines_moved) < 2 or sum(counts[i] for i in lines_moved) < 4:
                continue
            start = onsets[template[0]]
            end = onsets[template[-1] + 1] if template[-1] + 1 < len(lines) else min(duration, onsets[template[-1]] + 4.0)
            first_line, last_line, after, before = stretch
            # The stretch's lines before and after the block must still fit around it, sung no
            # faster than `MIN_SECONDS_PER_WORD`.
            after += MIN_SECONDS_PER_WORD * sum(counts[i] for i in range(first_line, lines_moved[0]))
            before -= MIN_SECONDS_PER_WORD * sum(counts[i] for i in range(lines_moved[-1] + 1, last_line + 1))
            # A repetition is sung after its first occurrence (and before its next): the
            # template's own audio, which it matches best, is never a place for the block.
            if moved_first > template_first:
                after = max(after, end)
            else:
                before = min(before, start)
            if end - start < 1.0 or end - start > before - after:
                continue
            template_chroma = chroma_frames(read(start, end))
            similarities = lag_similarities(template_chroma, chroma_frames(read(after, before)))
            if similarities.size == 0:
                continue
            # The lines' placement may run past the stretch (piled at its end): its similarity is
            # measured on the audio it claims, however far that reaches.
            placed_at = onsets[lines_moved[0]]
            placed_chroma = chroma_frames(read(placed_at, placed_at + end - start))
            width = min(template_chroma.shape[1], placed_chroma.shape[1])
            current = float(np.sum(template_chroma[:, :width] * placed_chroma[:, :width]) / template_chroma.shape[1])
            best = int(np.argmax(similarities))
            gain = float(similarities[best] - current)
            if gain >= min_gain:
                candidates.append(BlockMove(lines_moved, template, after + best * CHROMA_HOP / SAMPLE_RATE, gain))
    chosen, touched = [], set()
    for move in sorted(candidates, key=lambda m: (-m.gain, m.lines[0])):
        if touched.isdisjoint(move.lines) and touched.isdisjoint(move.template):
            chosen.append(move)
            touched.update(move.lines)
            touched.update(move.template)
    return chosen


def block_anchors(lines: list[list[str]], moves: list[BlockMove]) -> dict[int, float]:
    """Lyric word index -> onset (s): the first word of each moved block, at the move's start."""
    firsts = line_bounds([len(line) for line in lines])
    return {int(firsts[move.lines[0]]): float(move.start) for move in moves}


def crowded_lines(lines: list[list[str]], onsets: list[float], block: range, min_seconds_per_word: float = 0.2) -> int:
    """How many lines of `block` start less than `min_seconds_per_word` per word after the line before
    them ends its words: lines the search piled up where it could not find them."""
    return sum(1 for line in block if line + 1 < len(onsets)
               and onsets[line + 1] - onsets[line] < min_seconds_per_word * len(lines[line]))


def respaced_repetitions(lines: list[list[str]], onsets: list[float], anchors: dict[int, float]) -> list[float]:
    """`onsets` with each repeated block's unanchored lines spaced as its other occurrence's, where
    that occurrence has fewer crowded lines (`crowded_lines`).

    A repeated passage is sung at the same pace both times (the shared JamendoLyrics chorus: its
    seven lines 48.0 ± 0.1 s apart); the search can place one occurrence's first line right and
    pile its others at a window's end.
    """
    counts = [len(line) for line in lines]
    firsts = line_bounds(counts)
    anchored = {line for line in range(len(lines)) if any(firsts[line] <= k < firsts[line + 1] for k in anchors)}
    placed = np.asarray(onsets, dtype=float).copy()
    for block in repeated_blocks(lines):
        first, again = range(block.first, block.first + block.count), range(block.again, block.again + block.count)
        crowded_first, crowded_again = crowded_lines(lines, placed, first), crowded_lines(lines, placed, again)
        if crowded_first == crowded_again:
            continue
        target, model = (first, again) if crowded_first > crowded_again else (again, first)
        for k in range(1, block.count):
            if target[k] not in anchored:
                placed[target[k]] = placed[target[0]] + placed[model[k]] - placed[model[0]]
    return [float(x) for x in np.maximum.accumulate(placed)]
