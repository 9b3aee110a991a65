"""Where each lyric line is sung, without reference timings: transcript words as anchors.

A transcription pass (Whisper with word timestamps) gives words with times; a monotonic
alignment of transcript words to lyric words (a weighted longest common subsequence over
word similarity, so repeated choruses cannot cross) anchors lyric words in time; each
line's onset comes from its first anchored word, and lines without anchors are placed
between their anchored neighbours in proportion to their word counts. The forced
aligner then works line by line in windows around these onsets.
"""
from __future__ import annotations

import difflib
import re
import unicodedata

import numpy as np

_NOT_LETTER = re.compile(r"[^\w]+", re.UNICODE)


def line_bounds(line_word_counts) -> np.ndarray:
    """Index of each line's first word in the song's flat word list, then the word count: line i is words [b[i], b[i + 1])."""
    return np.concatenate([[0], np.cumsum(line_word_counts)]).astype(int)


def normalize_word(word: str) -> str:
    """Lower-case letters and digits only, accents removed: what two spellings of a sung word share."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_LETTER.sub("", plain).replace("_", "")


_VOCABLE = re.compile(r"^(?:(?:o+h*|a+h*|u+h*|e+h*|ha+|he+y*|hm+|m+h*|w?oo+h*|whoa+|yea*h*|ye+a*h*a*|la+|na+|da+m?|ba+|ra+|do+|di+|sha+|hey|heya|yeah|uh|huh)+)$")


def is_vocable_line(words: list[str]) -> bool:
    """True for a line of sung syllables without meaning only (ooh ooh, ba da dam, yeah yeah):
    a transcript cannot tell one repetition of them from another, so they anchor nothing.
    Judged per line, as "a", "la" or "die" alone are words."""
    return bool(words) and all(_VOCABLE.match(normalize_word(w)) for w in words)


_HELD_VOWEL = re.compile(r"^(?:[aeiou]+h*)+$")


def is_held_vowel_line(words: list[str]) -> bool:
    """True for a line of at least two bare vowels (ooh ooh, ah ah oh): sung as held notes,
    with no consonant between them to show where one ends and the next begins."""
    return len(words) > 1 and all(_HELD_VOWEL.match(normalize_word(w)) for w in words)


def word_similarity(a: str, b: str, floor: float = 0.6) -> float:
    """1 for equal normalised words, the character match ratio when it is at least `floor`, else 0."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return ratio if ratio >= floor else 0.0


def match_words(lyric_words: list[str], transcript_words: list[str], ignore=(), heard_positions=None,
                tie_weight: float = 0.01) -> list[tuple[int, int]]:
    """Monotonic (lyric index, transcript index) pairs maximising total word similarity; lyric words in `ignore` match nothing.

    `heard_positions` (each transcript word's place in the song, 0 to 1) break ties: a phrase
    heard once but sung several times (a chorus) goes to the repetition nearest its place in
    the lyrics, not to the last one. At `tie_weight` per pair it cannot outweigh a better match.
    """
    lyric = ["" if i in ignore else normalize_word(w) for i, w in enumerate(lyric_words)]
    heard = [normalize_word(w) for w in transcript_words]
    n, m = len(lyric), len(heard)
    if n == 0 or m == 0:
        return []
    cache: dict[tuple[str, str], float] = {}
    sim = np.zeros((n, m))
    for i, a in enumerate(lyric):
        for j, b in enumerate(heard):
            key = (a, b)
            if key not in cache:
                cache[key] = word_similarity(a, b)
            sim[i, j] = cache[key]
    if heard_positions is not None:
        lyric_positions = np.arange(n) / max(1, n - 1)
        distance = np.abs(lyric_positions[:, None] - np.asarray(heard_positions, float)[None, :])
        sim = np.where(sim > 0, sim - tie_weight * distance, 0.0)
    score = np.zeros((n + 1, m + 1))
    for i in range(1, n + 1):
        diagonal = score[i - 1, :-1] + sim[i - 1]
        row = np.maximum(score[i - 1, 1:], diagonal)
        score[i, 1:] = np.maximum.accumulate(row)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if sim[i - 1, j - 1] > 0 and np.isclose(score[i, j], score[i - 1, j - 1] + sim[i - 1, j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif np.isclose(score[i, j], score[i - 1, j]):
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def line_onsets_from_anchors(line_word_counts: list[int], anchors: dict[int, float], duration: float,
                             seconds_per_word: float = 0.35) -> list[float]:
    """Estimated onset of every line from anchored word times (lyric word index -> time, s).

    An anchored line starts at its first anchor minus the words sung before it at
    `seconds_per_word`; unanchored lines are spread between the anchored lines around them
    in proportion to word counts. Onsets never decrease.
    """
    firsts = line_bounds(line_word_counts)[:-1]
    onsets = np.full(len(line_word_counts), np.nan)
    for line, (first, count) in enumerate(zip(firsts, line_word_counts)):
        known = [k for k in range(first, first + count) if k in anchors]
        if known:
            onsets[line] = max(0.0, anchors[known[0]] - (known[0] - first) * seconds_per_word)
    known_lines = np.flatnonzero(~np.isnan(onsets))
    if len(known_lines) == 0:  # nothing heard: spread the lines evenly over the song
        return list(np.linspace(0.0, duration, len(line_word_counts), endpoint=False))
    position = firsts.astype(float)  # word position of each line start
    missing = np.isnan(onsets)
    onsets[missing] = np.interp(position[missing], position[known_lines], onsets[known_lines])
    # Before the first anchor / after the last: extrapolate at seconds_per_word.
    head, tail = known_lines[0], known_lines[-1]
    onsets[:head] = onsets[head] - (position[head] - position[:head]) * seconds_per_word
    onsets[tail + 1:] = onsets[tail] + (position[tail + 1:] - position[tail]) * seconds_per_word
    onsets = np.clip(np.maximum.accumulate(onsets), 0.0, max(0.0, duration - 0.5))
    return [float(x) for x in onsets]


def reliable_pairs(pairs: list[tuple[int, int]], min_run: int = 2, max_gap: int = 2, times=None,
                   max_seconds_per_word: float = 2.5) -> list[tuple[int, int]]:
    """Pairs that belong to a run of at least `min_run` matches close together in both sequences.

    A lone match (a common short word heard somewhere else) says little about where a line
    is; two or more neighbouring lyric words heard as neighbouring transcript words do.
    With `times` (onset of each transcript word), neighbours also lie at most
    `max_seconds_per_word` per lyric word apart.
    """
    def apart(a, b):
        if b[0] - a[0] > max_gap or b[1] - a[1] > max_gap:
            return True
        return times is not None and times[b[1]] - times[a[1]] > max_seconds_per_word * (b[0] - a[0])

    runs, current = [], []
    for pair in pairs:
        if current and apart(current[-1], pair):
            runs.append(current)
            current = []
        current.append(pair)
    if current:
        runs.append(current)
    return [p for run in runs if len(run) >= min_run for p in run]


def anchor_words(lyric: list[str], transcript, min_run: int = 2, ignore=(), span=None) -> dict[int, float]:
    """Lyric word index -> heard onset (s), for words in runs of at least `min_run` transcript matches.

    `span` (start s, end s): the stretch the lyric words are sung in, which breaks ties between repetitions.
    """
    times = [float(w[1]) for w in transcript]
    positions = None
    if span is not None and span[1] > span[0]:
        positions = np.clip((np.array(times) - span[0]) / (span[1] - span[0]), 0.0, 1.0)
    pairs = reliable_pairs(match_words(lyric, [w[0] for w in transcript], set(ignore), positions), min_run, times=times)
    # Several words at one instant come from a decoding loop, not from singing.
    heard = np.array([times[j] for _, j in pairs])
    order = np.sort(heard)
    close = np.searchsorted(order, heard + 0.02) - np.searchsorted(order, heard - 0.02, side="right")
    return {i: times[j] for (i, j), n in zip(pairs, close) if n == 1}


def anchor_runs(anchors: dict[int, float], max_gap: int = 2, max_seconds_per_word: float = 2.5) -> list[list[int]]:
    """The anchored lyric word indices grouped into runs of neighbours: at most `max_gap` words and
    `max_seconds_per_word` per word apart (the matching's own limit: words heard 50 s apart are two
    phrases, not one)."""
    runs: list[list[int]] = []
    for k in sorted(anchors):
        if (runs and k - runs[-1][-1] <= max_gap
                and anchors[k] - anchors[runs[-1][-1]] <= max_seconds_per_word * (k - runs[-1][-1])):
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def singing_rate(anchors: dict[int, float], min_words: int = 3) -> float:
    """Median words per second inside the anchor runs of at least `min_words` (0 if none): how fast this song is sung."""
    rates = [(run[-1] - run[0]) / (anchors[run[-1]] - anchors[run[0]])
             for run in anchor_runs(anchors) if len(run) >= min_words and anchors[run[-1]] > anchors[run[0]]]
    return float(np.median(rates)) if rates else 0.0


def plausible_anchors(anchors: dict[int, float], max_words_per_second: float = 4.0,
                      rate_factor: float = 2.0, trusted=frozenset()) -> dict[int, float]:
    """`anchors` without the runs that would make the lyrics be sung impossibly fast or backwards.

    Anchors fall into runs (neighbouring lyric words); between two consecutive runs the
    lyric words in between must fit the time in between at `max_words_per_second`, or at
    `rate_factor` times the song's own rate inside its runs where that is faster (rap).
    Where they do not, one run is wrong (a chorus heard at another repetition, a short
    common phrase in a hallucinated stretch): the one with fewer `trusted` anchors (heard
    without a hint) is dropped, or else the shorter, until all fit.
    """
    kept = dict(anchors)
    limit = max(max_words_per_second, rate_factor * singing_rate(anchors))
    while True:
        runs = anchor_runs(kept)
        worst, worst_rate = None, limit
        for a, b in zip(runs, runs[1:]):
            seconds = kept[b[0]] - kept[a[-1]]
            rate = (b[0] - a[-1]) / seconds if seconds > 0 else np.inf
            if rate > worst_rate:
                worst, worst_rate = (a, b), rate
        if worst is None:
            return kept
        for k in min(worst, key=lambda run: (sum(k in trusted for k in run), len(run))):
            del kept[k]


def words_per_second_around(anchors: dict[int, float], first: int, last: int, time_first: float, time_last: float,
                            word_count: int, duration: float) -> float:
    """The faster of the two rates (lyric words per second) at which the words between the anchors
    around lyric words `first`..`last` (sung from `time_first` to `time_last`) would be sung; inf if
    the run would cross or hold other anchors. The song's start (word 0 at 0 s) and end (word
    `word_count` at `duration`) bound a run with no anchor on that side."""
    if any(first <= k <= last for k in anchors):
        return np.inf
    earlier = [k for k in anchors if k < first]
    later = [k for k in anchors if k > last]
    previous, previous_time = (max(earlier), anchors[max(earlier)]) if earlier else (0, 0.0)
    following, following_time = (min(later), anchors[min(later)]) if later else (word_count, duration)
    rates = []
    for words, seconds in [(first - previous, time_first - previous_time), (following - last, following_time - time_last)]:
        if words < 0 or (words > 0 and seconds <= 0):
            return np.inf
        rates.append(words / seconds if words else 0.0)
    return max(rates)


def relocated_repetitions(anchors: dict[int, float], lyric_words: list[str], duration: float,
                          marked=frozenset()) -> tuple[dict[int, float], set[int]]:
    """(`anchors` with each run that makes the words around it faster than the song's own phrases
    moved to another place where the lyrics repeat its words exactly (a chorus), if one asks less
    speed there; the new places of the `marked` anchors).

    A chorus heard once matches every repetition of it equally; the matching picks one, and when
    it picks the wrong one the lines between it and its neighbours must be sung impossibly fast
    on one side (and a 30 s instrumental passage appears on the other). Between two anchored
    phrases, lyrics are not sung faster than the song sings inside its phrases (`singing_rate`).
    """
    limit = singing_rate(anchors)
    marked = set(marked) & set(anchors)
    if limit <= 0:
        return dict(anchors), marked
    plain = [normalize_word(w) for w in lyric_words]
    kept = dict(anchors)
    for run in anchor_runs(anchors):
        first, last = run[0], run[-1]
        others = {k: t for k, t in kept.items() if not first <= k <= last}

        def need(shift):
            return words_per_second_around(others, first + shift, last + shift, anchors[first], anchors[last],
                                           len(plain), duration)
        current = need(0)
        if current <= limit:
            continue
        phrase = plain[first: last + 1]
        shifts = [start - first for start in range(len(plain) - len(phrase) + 1)
                  if start != first and plain[start: start + len(phrase)] == phrase]
        best = min(shifts, key=need, default=None)
        if best is not None and need(best) < current:
            for k in run:
                del kept[k]
            kept.update({k + best: anchors[k] for k in run})
            marked = {k + best if first <= k <= last else k for k in marked}
    return kept, marked


def settled_anchors(anchors: dict[int, float], lyric_words: list[str], duration: float,
                    trusted=None) -> tuple[dict[int, float], set[int]]:
    """(`anchors` without impossible runs (`plausible_anchors`, keeping `trusted` ones first — all
    of them when None), with choruses moved to the repetition that fits (`relocated_repetitions`),
    and checked again; the trusted ones among them, at their new places)."""
    trusted = set(anchors) if trusted is None else set(trusted)
    plausible = plausible_anchors(anchors, trusted=trusted)
    moved, trusted = relocated_repetitions(plausible, lyric_words, duration, trusted)
    kept = plausible_anchors(moved, trusted=trusted)
    return kept, trusted & set(kept)


def agreed_anchors(anchor_sets: list[dict[int, float]], tolerance_s: float = 1.0) -> tuple[dict[int, float], set[int]]:
    """Anchors of several transcripts of one song merged: (lyric word index -> onset s, the words
    two or more transcripts put within `tolerance_s` of each other).

    Each transcript anchors a different few lyric words (sampling differs where decoding failed),
    and almost all of them right; one can anchor a chorus at another repetition. A word takes
    the median time of its largest group of agreeing transcripts; where two groups of one size
    disagree, no transcript is believed and the word is left unanchored.
    """
    times: dict[int, list[float]] = {}
    for anchors in anchor_sets:
        for k, t in anchors.items():
            times.setdefault(k, []).append(float(t))
    merged, agreed = {}, set()
    for k, heard in times.items():
        heard.sort()
        groups = [[t for t in heard if abs(t - centre) <= tolerance_s] for centre in heard]
        largest = max(len(g) for g in groups)
        best = [g for g in groups if len(g) == largest]
        if any(abs(np.median(g) - np.median(best[0])) > tolerance_s for g in best[1:]):
            continue
        merged[k] = float(np.median(best[0]))
        if largest >= 2:
            agreed.add(k)
    return merged, agreed


def unanchored_stretches(line_word_counts: list[int], anchors: dict[int, float],
                         duration: float) -> list[tuple[int, int, float, float]]:
    """Runs of lines without any anchor: (first line, last line, time after, time before).

    The times are the last anchor before the run and the first anchor after it (0 and
    `duration` at the ends): the run must be sung between them.
    """
    firsts = line_bounds(line_word_counts)
    anchored = [any(k in anchors for k in range(firsts[i], firsts[i + 1])) for i in range(len(line_word_counts))]
    stretches, line = [], 0
    while line < len(anchored):
        if anchored[line]:
            line += 1
            continue
        end = line
        while end + 1 < len(anchored) and not anchored[end + 1]:
            end += 1
        before = [t for k, t in anchors.items() if k < firsts[line]]
        after = [t for k, t in anchors.items() if k >= firsts[end + 1]]
        stretches.append((line, end, max(before) if before else 0.0, min(after) if after else duration))
        line = end + 1
    return stretches


def place_lines(lines: list[list[str]], transcript, duration: float, align_stretch=None, weak_run_words: int = 3,
                check_window_s: float = 30.0, other_transcripts=()) -> tuple[list[float], dict[int, float]]:
    """Estimated line onsets from a transcript, and the anchors they rest on.

    Parameters
    ----------
    lines : list of list of str
        The lyric lines, as words.
    transcript : sequence of (word, onset s, ...)
        What a transcription pass heard (`transcribe.HeardWord`s).
    duration : float
        The song's length in seconds.
    align_stretch : callable, optional
        ``align_stretch(first word, end word, start s, end s, pinned=True)`` -> onsets of those
        lyric words aligned in that window. Given, runs of fewer than `weak_run_words` anchored
        words are checked by it (`checked_anchors`): short runs are the ones that are often a
        chance match, in windows of at most `check_window_s`.
    other_transcripts : sequence of transcripts
        More transcripts of the song (other seeds); their anchors are merged
        (`agreed_anchors`), and where runs conflict the ones two transcripts agree on stay.

    Returns
    -------
    onsets : list of float
        One estimated onset per line; lines without an anchor are spread between their
        anchored neighbours.
    anchors : dict of int to float
        Lyric word index -> onset in seconds.
    """
    lyric = [w for line in lines for w in line]
    counts = [len(l) for l in lines]
    firsts = line_bounds(counts)
    vocables = {k for i, line in enumerate(lines) if is_vocable_line(line) for k in range(firsts[i], firsts[i + 1])}
    anchor_sets = [settled_anchors(anchor_words(lyric, heard, ignore=vocables, span=(0.0, duration)), lyric, duration)[0]
                   for heard in [transcript, *other_transcripts]]
    if len(anchor_sets) == 1:
        anchors = anchor_sets[0]
    else:
        merged, agreed = agreed_anchors(anchor_sets)
        anchors, _ = settled_anchors(merged, lyric, duration, trusted=agreed)
    if align_stretch is not None:
        weak = {k for run in anchor_runs(anchors) if len(run) < weak_run_words for k in run}
        anchors = checked_anchors(anchors, weak, len(lyric), duration, align_stretch, check_window_s)
    return line_onsets_from_anchors(counts, anchors, duration), anchors


def checked_anchors(anchors: dict[int, float], doubtful: set[int], word_count: int, duration: float,
                    align_stretch, max_window_s: float = 30.0, tolerance_s: float = 1.5,
                    margin_s: float = 5.0) -> dict[int, float]:
    """`anchors` without the runs of `doubtful` anchors that the forced aligner places elsewhere.

    A transcript hinted with the lyrics it should hear can time them badly: its text follows
    the hint while its word times drift by seconds; a run of one or two words heard without a
    hint can be a chance match or drifted too. Where the stretch between the other anchors
    around a doubtful run fits one aligner window (≤ `max_window_s`), `align_stretch(first word,
    end word, start s, end s)` aligns the stretch's lyric words there, from the anchored word
    at its start; in a longer stretch, the run's own words are aligned in a window opened
    `margin_s` before the run (`align_stretch(..., pinned=False)`: the audio before them goes
    to a lead-in). A run whose median onset is more than `tolerance_s` from the aligner's is
    dropped (the aligner then places its lines).
    """
    kept = dict(anchors)
    placed_cache: dict[tuple, list[float]] = {}
    for run in anchor_runs({k: anchors[k] for k in doubtful}):
        before = [k for k in anchors if k < run[0] and k not in doubtful]
        after = [k for k in anchors if k > run[-1] and k not in doubtful]
        first = max(before) if before else 0
        end = min(after) if after else word_count
        start_s = anchors[first] if before else 0.0
        end_s = anchors[end] if after else duration
        if end_s - start_s > max_window_s:
            window_start = max(start_s, anchors[run[0]] - margin_s)
            placed = align_stretch(run[0], run[-1] + 1, window_start, min(end_s, window_start + max_window_s),
                                   pinned=False)
            offsets = [abs(placed[k - run[0]] - anchors[k]) for k in run]
        else:
            key = (first, end)
            if key not in placed_cache:
                placed_cache[key] = align_stretch(first, end, start_s, end_s)
            offsets = [abs(placed_cache[key][k - first] - anchors[k]) for k in run]
        if np.median(offsets) > tolerance_s:
            for k in run:
                del kept[k]
    return kept
