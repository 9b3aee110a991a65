"""`acestep`: ACE-Step 1.5's training folder (its dataset builder's layout), one folder per split.

Each song's audio (`<stem>.flac`), a same-name `<stem>.txt` with the lyrics under section tags
(`[Intro]`, `[Verse]`, `[Chorus]`, `[Bridge]`, `[Instrumental]`, `[Outro]`; a song without lyrics
is `[Instrumental]`), and in the folder's top a `metadata.csv` the builder reads by file name:
`file`, `bpm`, `key` (its keyscale: `A minor`, `F# major`, `Eb major`), `caption` (the prompt),
`language`, `duration`.
"""
from __future__ import annotations

import csv
import io

from lyricbeam.pipeline.export.sections_text import lines_by_section
from lyricbeam.pipeline.export.source import SongRecord
from lyricbeam.transforms.quality import LANGUAGE_CODES

TAGS = {"intro": "Intro", "verse": "Verse", "chorus": "Chorus", "bridge": "Bridge", "inst": "Instrumental",
        "outro": "Outro"}
CSV_COLUMNS = ["file", "bpm", "key", "caption", "language", "duration"]


def tagged_lyrics(song: SongRecord) -> str:
    """The lyrics with a section tag before each section's lines; `[Instrumental]` for a song without any."""
    grouped = lines_by_section(song)
    if not any(lines for _, lines in grouped):
        return "[Instrumental]\n"
    parts = []
    for section, lines in grouped:
        tag = f"[{TAGS.get(section['label'], section['label'].capitalize())}]"
        parts.append(tag + "".join(f"\n{line.text}" for line in lines))
    return "\n\n".join(parts) + "\n"


def language_code(language: str) -> str:
    """ISO 639-1 code of a language given by name ("spanish") or code ("es"); "unknown" when none (ACE-Step's word)."""
    language = language.strip().lower()
    return LANGUAGE_CODES.get(language, language) or "unknown"


def csv_row(song: SongRecord, file_name: str) -> dict:
    return {"file": file_name, "bpm": int(round(song.bpm)) if song.bpm else "", "key": song.key,
            "caption": song.prompt, "language": language_code(song.language) if not song.instrumental else "unknown",
            "duration": f"{song.duration:.3f}"}


def metadata_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["file"]))
    return buffer.getvalue().encode("utf-8")


def export_song(song: SongRecord, destination, stem: str) -> tuple[int, dict]:
    """Write `<split>/<stem>.flac` and `.txt`; (files written, the song's metadata.csv row)."""
    folder = song.split or "all"
    wrote = destination.write_once(f"{folder}/{stem}.flac", lambda: song.flac)
    wrote += destination.write_once(f"{folder}/{stem}.txt", lambda: tagged_lyrics(song).encode("utf-8"))
    return wrote, csv_row(song, f"{stem}.flac")
