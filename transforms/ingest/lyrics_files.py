"""Lyrics beside audio files: LRC (line-synced, optionally word-synced) and plain text.

Pure functions from a sidecar's bytes to lyric lines, and from lines to the `words` / `lines` /
`paragraphs` annotation events every source produces. Times the file does not give are NaN
(written as null): a plain-text song has no times at all, an LRC song has one per line and,
in enhanced LRC, one per word.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from lyricbeam.schemas.records import AnnotationEvent
from lyricbeam.transforms.rejects import RejectError

NAN = float("nan")
# [mm:ss], [mm:ss.xx], [mm:ss.xxx], [mm:ss:xx] (some editors write a colon before the hundredths)
_STAMP = r"(\d{1,3}):(\d{1,2})(?:[.:](\d{1,3}))?"
LINE_STAMP = re.compile(r"\[" + _STAMP + r"\]")
WORD_STAMP = re.compile(r"<" + _STAMP + r">")
TAG = re.compile(r"^\[([A-Za-z#]+):(.*)\]\s*$")
SECTION_LABEL = re.compile(r"^\s*\[([^\]:]{1,40})\]\s*$")  # a line that is only "[Chorus]", "[Verse 2]"
# Share of the characters that may be control characters before a file counts as binary, not text.
MAX_CONTROL_SHARE = 0.01


@dataclass(frozen=True)
class LyricLine:
    """One sung line: its start (NaN when the file gives none), its words, each word's start
    (NaN where not given), and the stanza it belongs to."""

    start: float
    words: tuple[str, ...]
    word_starts: tuple[float, ...]
    stanza: int


@dataclass(frozen=True)
class SidecarLyrics:
    """What a lyrics file holds: its lines in singing order, stanza labels, and its tags."""

    kind: str  # "lrc" | "text"
    lines: tuple[LyricLine, ...]
    stanza_labels: dict[int, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def timed(self) -> bool:
        return any(math.isfinite(line.start) for line in self.lines)


def decode_text(raw: bytes) -> str:
    """The text of a lyrics file: UTF-8 (with or without BOM), UTF-16 (BOM, or the zero bytes
    of mostly-ASCII text), else Latin-1 — the encodings lyrics files come in.

    Raises
    ------
    RejectError
        `not_text`: the bytes are binary (NULs or control characters a text never holds).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        text = raw[3:].decode("utf-8", errors="replace")
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    elif len(raw) >= 4 and raw[1::2].count(0) > 0.4 * (len(raw) // 2) and raw[0::2].count(0) == 0:
        text = raw.decode("utf-16-le", errors="replace")
    elif len(raw) >= 4 and raw[0::2].count(0) > 0.4 * (len(raw) // 2) and raw[1::2].count(0) == 0:
        text = raw.decode("utf-16-be", errors="replace")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    controls = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    if controls > MAX_CONTROL_SHARE * max(len(text), 1):
        raise RejectError("not_text", f"{controls} of {len(text)} characters are control or undecodable "
                                      f"characters: binary data, not lyrics")
    return text


def _seconds(minutes: str, seconds: str, fraction: Optional[str]) -> float:
    frac = 0.0
    if fraction:
        frac = int(fraction) / (10 ** len(fraction))
    return int(minutes) * 60 + int(seconds) + frac


def looks_like_lrc(text: str) -> bool:
    """Whether most non-empty lines open with an LRC time tag (an LRC file saved as `.txt`)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    stamped = sum(1 for line in lines if LINE_STAMP.match(line))
    return bool(lines) and stamped >= 0.5 * len(lines)


def _line_words(text: str, line_start: float, offset_s: float, where: str) -> tuple[list[str], list[float]]:
    """Words of an LRC line's text and their enhanced `<mm:ss.xx>` starts (NaN where none)."""
    words, starts = [], []
    pieces = WORD_STAMP.split(text)
    # split() gives: text before the first stamp, then (min, sec, frac, text) per stamp
    for token in pieces[0].split():
        words.append(token)
        starts.append(NAN)
    for i in range(1, len(pieces), 4):
        stamp = _seconds(pieces[i], pieces[i + 1], pieces[i + 2]) - offset_s
        for k, token in enumerate(pieces[i + 3].split()):
            words.append(token)
            starts.append(stamp if k == 0 else NAN)
    timed = [t for t in starts if math.isfinite(t)]
    if any(b < a - 1e-6 for a, b in zip(timed, timed[1:])):
        raise RejectError("non_monotonic_times", f"{where}: word times go back ({', '.join(f'{t:.2f}' for t in timed)})")
    if timed and math.isfinite(line_start) and timed[0] < line_start - 0.5:
        raise RejectError("non_monotonic_times", f"{where}: a word starts at {timed[0]:.2f} s, before its line "
                                                 f"({line_start:.2f} s)")
    if timed and timed[0] < 0:
        raise RejectError("negative_times", f"{where}: a word starts at {timed[0]:.2f} s")
    return words, starts


def parse_lrc(text: str) -> SidecarLyrics:
    """Lines of an LRC file, in time order.

    Tags (`[ar:]`, `[ti:]`, `[al:]`, `[la:]`, `[length:]`, ...) are kept; `[offset:±ms]` is applied
    (a positive offset makes the lyrics earlier, as players do); a line with several time tags is
    sung at each; enhanced `<mm:ss.xx>` word times are kept. A stanza is a block of the file
    between blank lines, once per time tag of its lines, so a chorus written once with two time
    tags becomes two stanzas. Lines without a time tag are not sung lines and are left out.

    Raises
    ------
    RejectError
        `no_valid_times` (no line with a time and words), `negative_times` (a time before 0
        after the offset), `non_monotonic_times` (word times going back within a line).
    """
    tags: dict[str, str] = {}
    raw_lines = text.splitlines()
    for line in raw_lines:
        match = TAG.match(line.strip())
        if match and not LINE_STAMP.match(line.strip()):
            tags[match.group(1).strip().lower()] = match.group(2).strip()
    try:
        offset_s = float(tags.get("offset", "0").replace("+", "") or 0) / 1000.0
    except ValueError:
        offset_s = 0.0
    entries, block = [], 0  # (start, file order, stanza key, words, word starts)
    for number, line in enumerate(raw_lines, 1):
        stripped = line.strip()
        if not stripped:
            block += 1
            continue
        stamps, rest = [], stripped
        while True:
            match = LINE_STAMP.match(rest)
            if not match:
                break
            stamps.append(_seconds(*match.groups()) - offset_s)
            rest = rest[match.end():]
        if not stamps:
            continue
        for k, start in enumerate(stamps):
            if start < 0:
                raise RejectError("negative_times", f"line {number}: starts at {start:.2f} s"
                                  + (f" after the offset of {offset_s * 1000:+.0f} ms" if offset_s else ""))
            # A line sung again later keeps its enhanced times only where they belong to this stamp.
            shift = start - stamps[0]
            words, starts = _line_words(rest, stamps[0], offset_s, f"line {number}")
            starts = [s + shift for s in starts]
            if words:  # a time with no words marks an instrumental stretch: nothing is sung
                entries.append((start, number, (block, k), words, starts))
    if not entries:
        raise RejectError("no_valid_times", "no line with a valid [mm:ss.xx] time tag and words")
    entries.sort(key=lambda e: (e[0], e[1]))
    stanza_of: dict[tuple[int, int], int] = {}
    lines = []
    for start, _, key, words, starts in entries:
        stanza = stanza_of.setdefault(key, len(stanza_of))
        lines.append(LyricLine(start, tuple(words), tuple(starts), stanza))
    return SidecarLyrics("lrc", tuple(lines), {}, tags)


def parse_plain_lyrics(text: str) -> SidecarLyrics:
    """Lines of a plain-text lyrics file: blank lines separate stanzas; a line that is only a
    bracketed label (`[Chorus]`) names the stanza it opens and is not sung."""
    lines, labels, stanza, opened = [], {}, 0, False
    for raw in text.splitlines():
        label = SECTION_LABEL.match(raw)
        if not raw.strip() or label:
            if opened:
                stanza, opened = stanza + 1, False
            if label:
                labels[stanza] = label.group(1).strip()
            continue
        words = tuple(raw.split())
        lines.append(LyricLine(NAN, words, tuple(NAN for _ in words), stanza))
        opened = True
    return SidecarLyrics("text", tuple(lines), labels, {})


def lyric_events(lyrics: SidecarLyrics) -> tuple[list[AnnotationEvent], list[AnnotationEvent], list[AnnotationEvent]]:
    """`(words, lines, paragraphs)` events of a lyrics file.

    LRC gives when a line starts, not when it ends (a player shows it until the next one, which
    may come after a long instrumental): line and paragraph ends are NaN, and so is every time
    of a plain-text file. A timed word ends where the next timed word of its line starts, else NaN.
    The aligned words give the missing times later (`rows.line_times`).
    """
    words: list[AnnotationEvent] = []
    lines: list[AnnotationEvent] = []
    paragraphs: list[AnnotationEvent] = []
    stanza_index: dict[int, int] = {}
    for line in lyrics.lines:
        paragraph = stanza_index.setdefault(line.stanza, len(stanza_index))
        if paragraph == len(paragraphs):
            paragraphs.append(AnnotationEvent(lyrics.stanza_labels.get(line.stanza, ""), line.start, NAN))
        lines.append(AnnotationEvent(" ".join(line.words), line.start, NAN, parent=paragraph))
        for k, (word, start) in enumerate(zip(line.words, line.word_starts)):
            nexts = [t for t in line.word_starts[k + 1:] if math.isfinite(t)]
            word_end = nexts[0] if nexts and math.isfinite(start) else NAN
            words.append(AnnotationEvent(word, start, word_end, parent=len(lines) - 1))
    return words, lines, paragraphs
