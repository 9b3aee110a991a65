"""`yue`: YuE's fine-tuning JSONL (multimodal-art-projection/YuE, `finetune/`), one file per split,
with the songs' audio beside it.

Per song: `id`, `audio_path` (the FLAC, relative to the export folder: YuE's records hold codec
arrays instead, which its xcodec tokenizer makes from this audio), `audio_length_in_sec`, `msa`
(the sections: `start`, `end`, `label`), `genres` (the style tags, comma-separated, as YuE's
example writes them) and `splitted_lyrics.segmented_lyrics`: per section its `offset`,
`duration` and `line_content` — `[label]`, then its lines, then a blank line. The codec fields
(`codec`, `vocals_codec`, `instrumental_codec`, `codec_frame_start`, `codec_frame_end`) are the
user's tokeniser's to fill; they are not written.
"""
from __future__ import annotations

import json

from lyricbeam.pipeline.export.sections_text import lines_by_section
from lyricbeam.pipeline.export.source import SongRecord


def yue_record(song: SongRecord, audio_path: str) -> dict:
    """The song's YuE JSONL record."""
    segmented = []
    msa = []
    for section, lines in lines_by_section(song):
        start, end = round(float(section["start"]), 3), round(float(section["end"]), 3)
        msa.append({"start": start, "end": end, "label": section["label"]})
        content = f"[{section['label']}]\n" + "".join(f"{line.text}\n" for line in lines) + "\n"
        segmented.append({"offset": start, "duration": round(end - start, 3), "line_content": content})
    return {"id": song.song_id, "audio_path": audio_path, "audio_length_in_sec": round(song.duration, 3),
            "msa": msa, "genres": ", ".join(song.tags), "splitted_lyrics": {"segmented_lyrics": segmented}}


def export_song(song: SongRecord, destination, stem: str) -> tuple[int, str]:
    """Write the song's audio (`audio/<split>/<stem>.flac`); (files written, its JSONL line)."""
    folder = song.split or "all"
    audio = f"audio/{folder}/{stem}.flac"
    wrote = destination.write_once(audio, lambda: song.flac)
    return wrote, json.dumps(yue_record(song, audio), ensure_ascii=False, sort_keys=True)
