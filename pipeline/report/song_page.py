"""A song's page: its audio, its mel spectrogram with line and word boundaries, f0 and notes,
and the lyrics highlighted word by word as the audio plays (karaoke view).

Media sit beside the page (`<name>.flac`, `<name>.mel.jpg`) so the page itself stays small.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional

import matplotlib
import numpy as np
from PIL import Image

from lyricbeam.pipeline.report.html import esc, number, page

PIXELS_PER_SECOND = 80  # display scale of the spectrogram strip: words of 0.2 s stay 16 px wide
IMAGE_COLUMNS_PER_SECOND = 50  # two 10 ms frames per column, stretched to 80 px/s: half the bytes, no visible loss
MAX_IMAGE_COLUMNS = 60000  # under the 65 535 px a JPEG can hold
MEL_DYNAMIC_RANGE_DB = 80.0
# Per-word confidence (mean token probability) below which a word is marked for review; well
# placed songs have means of 0.3-0.6, and their words rarely fall under 0.1.
LOW_CONFIDENCE = 0.1
F0_POINTS_PER_SECOND = 25
PITCH_LANE_HZ = (50.0, 1600.0)  # five octaves: bass voices to soprano, most instrument melodies


def mel_image(mel: np.ndarray, hop_seconds: float, quality: int = 85) -> bytes:
    """A log-mel spectrogram (frames x bands, dB) as a JPEG, low bands at the bottom.

    Frames are averaged down to `IMAGE_COLUMNS_PER_SECOND` columns per second; colours span the
    loudest `MEL_DYNAMIC_RANGE_DB` below the 99.5th percentile.
    """
    if mel.size == 0:
        mel = np.full((1, 1), -100.0, dtype=np.float32)
    frames_per_column = max(1, int(round(1.0 / (hop_seconds * IMAGE_COLUMNS_PER_SECOND))),
                            int(np.ceil(len(mel) / MAX_IMAGE_COLUMNS)))
    starts = np.arange(0, len(mel), frames_per_column)
    counts = np.diff(np.append(starts, len(mel)))
    columns = np.add.reduceat(mel.astype(np.float64), starts, axis=0) / counts[:, None]
    top = float(np.percentile(columns, 99.5))
    scaled = np.clip((columns - (top - MEL_DYNAMIC_RANGE_DB)) / MEL_DYNAMIC_RANGE_DB, 0.0, 1.0)
    rgb = (matplotlib.colormaps["magma"](scaled.T[::-1])[..., :3] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def pitch_position(freq_hz: np.ndarray) -> np.ndarray:
    """Height of frequencies in the pitch lane, 0 (bottom) to 1 (top): log frequency from
    `PITCH_LANE_HZ[0]` to `PITCH_LANE_HZ[1]`, clamped. Singing sits in the bottom few mel bands of a
    0-8 kHz spectrogram, so pitch gets a lane of its own where a semitone is visible."""
    low, high = PITCH_LANE_HZ
    ratio = np.log2(np.clip(np.asarray(freq_hz, dtype=float), low, high) / low) / np.log2(high / low)
    return ratio


def lyric_words(row: dict) -> tuple[list[dict], str]:
    """The words to show with their times: the alignment's where the song was aligned, else the
    source's own timed words; each with `line` (its lyric line, where known) and `confidence`."""
    source_words = row.get("words") or []
    alignment = row.get("alignment") or {}
    if alignment.get("words"):
        aligned = alignment["words"]
        same_words = len(aligned) == len(source_words)
        words = [{"text": w["text"], "start": w["start"], "end": w["end"], "confidence": w["confidence"],
                  "aligned": bool(w["aligned"]), "line": source_words[i]["parent"] if same_words else 0}
                 for i, w in enumerate(aligned)]
        return words, "alignment"
    words = [{"text": w["text"], "start": w["start"], "end": w["end"], "confidence": None, "aligned": True,
              "line": w["parent"] if w["parent"] is not None else 0} for w in source_words]
    return words, "source annotation"


def _word_span(index: int, word: dict) -> str:
    classes = ["w"]
    if not word["aligned"]:
        classes.append("unaligned")
    elif word["confidence"] is not None and word["confidence"] < LOW_CONFIDENCE:
        classes.append("low")
    times = (f' data-start="{word["start"]:.3f}" data-end="{word["end"]:.3f}"'
             if word["start"] is not None and word["end"] is not None else "")
    tip = f'{number(word["start"])}\u2013{number(word["end"])} s'
    if word["confidence"] is not None:
        tip += f', confidence {word["confidence"]:.2f}'
    if not word["aligned"]:
        tip += ", not aligned (time interpolated)"
    return f'<span class="{" ".join(classes)}" data-i="{index}"{times} title="{esc(tip)}">{esc(word["text"])}</span>'


def lyrics_html(words: list[dict], line_stanzas: list = ()) -> str:
    """Words grouped into their lines (a gap before each new stanza, where `line_stanzas` gives
    each line's), each word a clickable span carrying its times."""
    if not words:
        return '<p class="muted">No lyrics: nothing to highlight.</p>'
    lines, current = [], None
    for index, word in enumerate(words):
        if current is None or word["line"] != current:
            lines.append((word["line"], []))
            current = word["line"]
        lines[-1][1].append(_word_span(index, word))
    out, stanza = [], None
    for line, spans in lines:
        this = line_stanzas[line] if 0 <= line < len(line_stanzas) else None
        opens = stanza is not None and this != stanza
        stanza = this
        out.append(f'<p class="line{" stanza" if opens else ""}">{" ".join(spans)}</p>')
    return "\n".join(out)


def boundaries_svg(duration: float, words: list[dict]) -> str:
    """Line starts (full height) and word starts (lower part) over the spectrogram and the pitch lane;
    x in seconds, y in percent of the height from the top."""
    line_starts = [w["start"] for i, w in enumerate(words)
                   if w["start"] is not None and (i == 0 or w["line"] != words[i - 1]["line"])]
    parts = [f'<line class="lb" x1="{t:.3f}" x2="{t:.3f}" y1="0" y2="100"/>' for t in line_starts]
    parts += [f'<line class="wb" x1="{w["start"]:.3f}" x2="{w["start"]:.3f}" y1="55" y2="100"/>'
              for w in words if w["start"] is not None]
    return (f'<svg class="overlay" viewBox="0 0 {max(duration, 0.01):.3f} 100" preserveAspectRatio="none">'
            + "".join(parts) + "</svg>")


def pitch_svg(duration: float, notes: list[dict], f0: Optional[np.ndarray], f0_hop: Optional[float]) -> str:
    """The pitch lane: annotated notes as boxes over their frequency range, f0 as a line where voiced."""
    parts = []
    for note in notes:
        if note.get("freq_lo") and note.get("freq_hi") and note["end"] > note["start"]:
            lo, hi = pitch_position(np.array([note["freq_lo"], note["freq_hi"]]))
            top, height = 100 * (1 - hi), max(100 * (hi - lo), 3.0)
            parts.append(f'<rect class="note" x="{note["start"]:.3f}" y="{top:.2f}" '
                         f'width="{note["end"] - note["start"]:.3f}" height="{height:.2f}"/>')
    if f0 is not None and f0_hop and len(f0):
        step = max(1, int(round(1.0 / (f0_hop * F0_POINTS_PER_SECOND))))
        times = np.arange(0, len(f0), step) * f0_hop
        values = f0[::step]
        heights = 100 * (1 - pitch_position(values))
        run: list[str] = []
        for t, hz, y in zip(times, values, heights):
            if hz > 0:
                run.append(f"{t:.2f},{y:.1f}")
            elif run:
                parts.append(f'<polyline class="f0" points="{" ".join(run)}"/>')
                run = []
        if run:
            parts.append(f'<polyline class="f0" points="{" ".join(run)}"/>')
    return (f'<svg class="pitch" viewBox="0 0 {max(duration, 0.01):.3f} 100" preserveAspectRatio="none">'
            + "".join(parts) + "</svg>")


def word_lane(words: list[dict]) -> str:
    """Word labels under the spectrogram, each at its start (clicking one seeks there)."""
    return "".join(
        f'<span class="lw" data-i="{i}" style="left:{w["start"] * PIXELS_PER_SECOND:.1f}px;'
        f'width:{max(w["end"] - w["start"], 0.05) * PIXELS_PER_SECOND:.1f}px">{esc(w["text"])}</span>'
        for i, w in enumerate(words) if w["start"] is not None and w["end"] is not None)


def _facts(row: dict, words_from: str) -> str:
    alignment = row.get("alignment") or {}
    facts = [("id", row["song_id"]), ("source", row["source"]), ("split", row["split"]),
             ("language", row["language"]), ("duration", f'{number(row["duration"], 1)} s'),
             ("tempo", f'{number(row.get("tempo_bpm"), 1)} BPM'), ("vocal activity", number(row.get("vocal_activity"))),
             ("loudness", f'{number(row.get("loudness_lufs"), 1)} LUFS'),
             ("lyrics from", row.get("lyrics_source") or "none"), ("word times from", words_from)]
    if alignment:
        facts += [("line placement", alignment.get("line_placement")),
                  ("mean confidence", number(alignment.get("mean_confidence"))),
                  ("aligned words", f'{100 * (alignment.get("aligned_fraction") or 0):.0f} %'),
                  ("lyrics-match WER", number(alignment.get("lyrics_match_wer"))),
                  ("placement score", number(alignment.get("placement_score"), 3))]
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    badge = ('<p class="badge suspect">Suspect placement: the evidence does not support where the lines were put; '
             'word times may be far off.</p>' if alignment.get("suspect") else "")
    return f"<dl class=\"facts\">{cells}</dl>{badge}"


def render_song_page(row: dict, name: str, f0: Optional[np.ndarray]) -> str:
    """The HTML of one song's page; `name` is the file stem its media are written under."""
    words, words_from = lyric_words(row)
    duration = float(row["duration"] or 0.0)
    width = max(1, int(round(duration * PIXELS_PER_SECOND)))
    title = f'{row.get("title") or row["song_id"]} \u2014 {row.get("artist") or "unknown artist"}'
    low = sum(1 for w in words if w["aligned"] and w["confidence"] is not None and w["confidence"] < LOW_CONFIDENCE)
    unaligned = sum(1 for w in words if not w["aligned"])
    body = f"""<nav><a href="../index.html">&larr; overview</a></nav>
<h1>{esc(title)}</h1>
{_facts(row, words_from)}
<audio id="player" controls preload="auto" src="{esc(name)}.flac"></audio>
<div id="strip" class="strip" data-px-per-second="{PIXELS_PER_SECOND}" title="click to play from here">
<div class="strip-inner" style="width:{width}px">
<img class="mel" src="{esc(name)}.mel.jpg" alt="mel spectrogram" style="width:{width}px">
{pitch_svg(duration, row.get("notes") or [], f0, row.get("f0_hop_seconds"))}
{boundaries_svg(duration, words)}
<div class="playhead" id="playhead"></div>
<div class="lane">{word_lane(words)}</div>
</div></div>
<p class="legend"><span class="key lb"></span> line start <span class="key wb"></span> word start
<span class="key f0"></span> f0 <span class="key note"></span> annotated note
(pitch lane: {PITCH_LANE_HZ[0]:.0f}\u2013{PITCH_LANE_HZ[1]:.0f} Hz, log scale)
<span class="w low">low confidence (&lt; {LOW_CONFIDENCE})</span> {low}
<span class="w unaligned">not aligned</span> {unaligned}</p>
<div id="lyrics" class="lyrics">
{lyrics_html(words, [line.get("parent") for line in row.get("lines") or []])}
</div>"""
    return page(title, body, "../", scripts=("karaoke.js",))
