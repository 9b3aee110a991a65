"""`lrc`: one `.lrc` file per song beside its audio (FLAC at the stored quality).

Tags `[ar:]`, `[ti:]`, `[length:]`, `[la:]`; a `[mm:ss.xx]` stamp at each aligned line start
(the plain line LRC DiffRhythm trains on); with `words`, enhanced LRC: `<mm:ss.xx>` before every
word. Lines without a time (a song whose alignment failed and whose source gave none) are left out.
"""
from __future__ import annotations

import math

from lyricbeam.pipeline.export.source import SongRecord


def lrc_stamp(seconds: float) -> str:
    """`mm:ss.xx` (minutes may pass 99) of a time in seconds, to the nearest hundredth."""
    hundredths = int(round(max(0.0, seconds) * 100))
    minutes, rest = divmod(hundredths, 6000)
    return f"{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def _tag_value(text: str) -> str:
    # A tag ends at its first "]", and a tag is one line.
    return " ".join(text.replace("]", ")").replace("[", "(").split())


def song_lrc(song: SongRecord, words: bool = False) -> str:
    """The song's lyrics as LRC text (UTF-8, `\\n` line ends)."""
    minutes, seconds = divmod(int(round(song.duration)), 60)
    out = [f"[ar:{_tag_value(song.artist)}]", f"[ti:{_tag_value(song.title)}]", f"[length:{minutes:02d}:{seconds:02d}]"]
    if song.language:
        out.append(f"[la:{_tag_value(song.language)}]")
    for line in song.lines:
        if not math.isfinite(line.start):
            continue
        if words and line.words and all(math.isfinite(t) for _, t in line.words):
            text = " ".join(f"<{lrc_stamp(t)}>{word}" for word, t in line.words)
        else:
            text = line.text
        out.append(f"[{lrc_stamp(line.start)}]{text}")
    return "\n".join(out) + "\n"


def export_song(song: SongRecord, destination, stem: str, words: bool = False) -> int:
    """Write `<split>/<stem>.flac` and `<split>/<stem>.lrc`; the number of files written (0: both were there)."""
    folder = song.split or "all"
    wrote = destination.write_once(f"{folder}/{stem}.flac", lambda: song.flac)
    wrote += destination.write_once(f"{folder}/{stem}.lrc", lambda: song_lrc(song, words).encode("utf-8"))
    return wrote
