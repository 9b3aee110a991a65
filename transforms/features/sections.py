"""Song structure: sections (intro, verse, chorus, bridge, inst, outro) with times.

The lyrics give the sections and their names; the aligned words give their times; the audio's
own novelty moves each boundary to where the sound changes:

- a stanza (a DALI paragraph, a block of lines between blank lines) is a section; one whose lines
  recur in another stanza is a `chorus`; a one-off stanza between choruses late in the song (in
  the last 40 % of its sung span) is a `bridge`; the others are `verse`s;
- a vocal section spans its first aligned word's start to its last aligned word's end;
- lyric-free stretches of at least 5 s are `intro` (before the first line), `outro` (after the
  last) and `inst` (between); shorter gaps go to the section before them;
- each boundary moves to the strongest novelty peak of the audio within 2 s of it (a
  checkerboard kernel along the diagonal of the mel spectrogram's self-similarity), never across
  a sung word: a section keeps all its words.

Sections cover the song from 0 to its duration without gaps, as YuE's `msa` and the
lyric-tagged formats (`[verse]`, `[chorus]` ...) expect.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

LABELS = ("intro", "verse", "chorus", "bridge", "inst", "outro")
MIN_GAP_S = 5.0  # a lyric-free stretch this long is a section of its own
SNAP_S = 2.0  # a boundary moves at most this far to the sound's change
BRIDGE_FROM = 0.6  # a bridge starts after this share of the sung span
NOVELTY_HOP_S = 0.25  # novelty frames: a quarter second is finer than boundaries are judged
NOVELTY_HALF_S = 4.0  # the checkerboard kernel compares the 4 s before a point with the 4 s after


class Section(NamedTuple):
    """One section of a song: `label` (of LABELS), `start` and `end` in seconds."""

    label: str
    start: float
    end: float


class Stanza(NamedTuple):
    """A stanza of the lyrics: its lines' words, and its first sung word's start and last's end (NaN: not aligned)."""

    lines: list[list[str]]
    start: float
    end: float


def stanza_labels(stanzas: Sequence[Stanza], similar=None) -> list[str]:
    """`chorus`, `bridge` or `verse` for each stanza, from which stanzas' lines recur (times only place bridges).

    A stanza is a chorus when at least half of its lines recur in another stanza. A bridge is a
    stanza that is not a chorus, comes after a chorus and before another, and starts in the last
    `BRIDGE_FROM` share of the song's sung span. With no chorus, every stanza is a verse.
    """
    if similar is None:
        from lyricbeam.transforms.alignment.repeated_lines import similar_lines as similar
    labels = []
    for i, stanza in enumerate(stanzas):
        others = [line for j, other in enumerate(stanzas) if j != i for line in other.lines]
        recurring = sum(1 for line in stanza.lines if any(similar(line, other) for other in others))
        labels.append("chorus" if stanza.lines and recurring * 2 >= len(stanza.lines) else "verse")
    timed = [s for s in stanzas if math.isfinite(s.start) and math.isfinite(s.end)]
    if not timed:
        return labels
    first, last = min(s.start for s in timed), max(s.end for s in timed)
    choruses = [i for i, label in enumerate(labels) if label == "chorus"]
    for i, stanza in enumerate(stanzas):
        if (labels[i] == "verse" and choruses and choruses[0] < i < choruses[-1] and math.isfinite(stanza.start)
                and stanza.start >= first + BRIDGE_FROM * (last - first)):
            labels[i] = "bridge"
    return labels


def novelty_curve(mel_db: np.ndarray, hop_seconds: float, bin_seconds: float = NOVELTY_HOP_S,
                  half_seconds: float = NOVELTY_HALF_S) -> np.ndarray:
    """Foote novelty of a mel spectrogram: one value per `bin_seconds`, high where the sound changes.

    Frames are averaged into bins and scaled to unit length; at each bin, the mean cosine
    similarity within the `half_seconds` before and within the `half_seconds` after, less the
    mean similarity across the two, is the novelty (a checkerboard kernel on the self-similarity
    matrix, computed along its diagonal only: memory grows with the song's length, not its square).
    """
    mel_db = np.asarray(mel_db, dtype=np.float64)
    per_bin = max(1, int(round(bin_seconds / hop_seconds)))
    bins = len(mel_db) // per_bin
    if bins < 3:
        return np.zeros(max(bins, 0))
    binned = mel_db[: bins * per_bin].reshape(bins, per_bin, -1).mean(axis=1)
    binned = binned - binned.mean(axis=0, keepdims=True)
    binned /= np.linalg.norm(binned, axis=1, keepdims=True) + 1e-9
    half = max(1, int(round(half_seconds / bin_seconds)))
    novelty = np.zeros(bins)
    for t in range(1, bins):
        before, after = binned[max(0, t - half): t], binned[t: t + half]
        if len(before) == 0 or len(after) == 0:
            continue
        within = (np.mean(before @ before.T) + np.mean(after @ after.T)) / 2
        novelty[t] = within - np.mean(before @ after.T)
    return novelty


def snapped(boundary: float, low: float, high: float, novelty: np.ndarray, bin_seconds: float = NOVELTY_HOP_S) -> float:
    """`boundary` moved to the highest novelty peak in [`low`, `high`] (a local maximum); unchanged if none."""
    if novelty.size < 3 or high <= low:
        return boundary
    first, last = max(1, int(math.ceil(low / bin_seconds))), min(novelty.size - 2, int(math.floor(high / bin_seconds)))
    peaks = [b for b in range(first, last + 1) if novelty[b] > 0 and novelty[b] >= novelty[b - 1] and novelty[b] >= novelty[b + 1]]
    if not peaks:
        return boundary
    return float(max(peaks, key=lambda b: (novelty[b], -abs(b * bin_seconds - boundary))) * bin_seconds)


def song_sections(stanzas: Sequence[Stanza], duration: float, novelty: np.ndarray | None = None,
                  bin_seconds: float = NOVELTY_HOP_S) -> list[Section]:
    """The song's sections, covering 0 to `duration` in order.

    Parameters
    ----------
    stanzas : sequence of Stanza
        The lyrics' stanzas in order; stanzas with no aligned word (NaN times) get no section.
    duration : float
        The song's length in seconds.
    novelty : np.ndarray, optional
        `novelty_curve` of the song; without it the boundaries stay where the words put them.

    Returns
    -------
    list of Section
        One `inst` section for a song without timed stanzas (an instrumental).
    """
    if duration <= 0:
        return []
    novelty = np.zeros(0) if novelty is None else np.asarray(novelty, dtype=float)
    labels = stanza_labels(stanzas)
    vocal = sorted((max(0.0, s.start), min(duration, s.end), label) for s, label in zip(stanzas, labels)
                   if math.isfinite(s.start) and math.isfinite(s.end) and s.end > s.start)
    # Stanzas whose sung spans overlap (a word aligned late) are cut where the next one starts.
    vocal = [(start, min(end, vocal[i + 1][0]) if i + 1 < len(vocal) else end, label)
             for i, (start, end, label) in enumerate(vocal)]
    vocal = [v for v in vocal if v[1] > v[0]]
    if not vocal:
        return [Section("inst", 0.0, float(duration))]
    sections: list[Section] = []
    cursor = 0.0
    if vocal[0][0] >= MIN_GAP_S:
        intro_end = snapped(vocal[0][0], vocal[0][0] - SNAP_S, vocal[0][0], novelty, bin_seconds)
        sections.append(Section("intro", 0.0, intro_end))
        cursor = intro_end
    for i, (start, end, label) in enumerate(vocal):
        following = vocal[i + 1][0] if i + 1 < len(vocal) else duration
        gap = following - end
        if i + 1 == len(vocal):
            if gap >= MIN_GAP_S:
                outro_start = snapped(end, end, end + SNAP_S, novelty, bin_seconds)
                sections += [Section(label, cursor, outro_start), Section("outro", outro_start, float(duration))]
            else:
                sections.append(Section(label, cursor, float(duration)))
        elif gap >= MIN_GAP_S:
            inst_start = snapped(end, end, end + SNAP_S, novelty, bin_seconds)
            inst_end = snapped(following, following - SNAP_S, following, novelty, bin_seconds)
            sections += [Section(label, cursor, inst_start), Section("inst", inst_start, inst_end)]
            cursor = inst_end
        else:
            boundary = snapped(following, max(end, following - SNAP_S), following, novelty, bin_seconds)
            sections.append(Section(label, cursor, boundary))
            cursor = boundary
    return [Section(s.label, float(s.start), float(s.end)) for s in sections if s.end > s.start]


def section_at(sections: Sequence[Section], time_s: float) -> str:
    """Label of the section holding `time_s` ("" when none does)."""
    for section in sections:
        if section.start <= time_s < section.end:
            return section.label
    return sections[-1].label if sections and time_s >= sections[-1].end else ""
