"""A song's lyric lines grouped by section, for the formats that tag lyrics with their section."""
from __future__ import annotations

import math

from lyricbeam.pipeline.export.source import SongRecord, TimedLine


def lines_by_section(song: SongRecord) -> list[tuple[dict, list[TimedLine]]]:
    """Each section with the lyric lines that start inside it (the last section keeps lines at its end).

    A song without sections is one section spanning it, labelled `verse` when it has timed lines,
    else `inst`.
    """
    timed = [line for line in song.lines if math.isfinite(line.start)]
    sections = song.sections or [{"label": "verse" if timed else "inst", "start": 0.0, "end": song.duration}]
    out = []
    for index, section in enumerate(sections):
        last = index == len(sections) - 1
        inside = [line for line in timed
                  if section["start"] <= line.start < section["end"] or (last and line.start >= section["end"])
                  or (index == 0 and line.start < section["start"])]
        out.append((section, inside))
    return out
