"""MusicNet labels and metadata: parsing and the text description of a recording.

Label times are integer sample indices at 44.1 kHz; `end_beat` is a duration in beats.
Two header variants exist in the wild (official and a renamed one); both are accepted.
"""
from __future__ import annotations

import csv
import io
import math

from lyricbeam.schemas.records import AnnotationEvent
from lyricbeam.transforms.rejects import RejectError

LABEL_SAMPLE_RATE = 44100
OFFICIAL_HEADER = ["start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value"]
VARIANT_HEADER = ["start_sample", "end_sample", "instrument_id", "midi_note", "measure", "beat", "note_value"]

# General MIDI program names, 1-based as MusicNet numbers them.
GM_PROGRAMS = (
    "acoustic grand piano,bright acoustic piano,electric grand piano,honky-tonk piano,electric piano 1,"
    "electric piano 2,harpsichord,clavinet,celesta,glockenspiel,music box,vibraphone,marimba,xylophone,"
    "tubular bells,dulcimer,drawbar organ,percussive organ,rock organ,church organ,reed organ,accordion,"
    "harmonica,tango accordion,nylon guitar,steel guitar,jazz guitar,clean electric guitar,muted guitar,"
    "overdriven guitar,distortion guitar,guitar harmonics,acoustic bass,fingered bass,picked bass,"
    "fretless bass,slap bass 1,slap bass 2,synth bass 1,synth bass 2,violin,viola,cello,contrabass,"
    "tremolo strings,pizzicato strings,orchestral harp,timpani,string ensemble 1,string ensemble 2,"
    "synth strings 1,synth strings 2,choir aahs,voice oohs,synth voice,orchestra hit,trumpet,trombone,"
    "tuba,muted trumpet,french horn,brass section,synth brass 1,synth brass 2,soprano sax,alto sax,"
    "tenor sax,baritone sax,oboe,english horn,bassoon,clarinet,piccolo,flute,recorder,pan flute,"
    "blown bottle,shakuhachi,whistle,ocarina,square lead,sawtooth lead,calliope lead,chiff lead,"
    "charang lead,voice lead,fifths lead,bass and lead,new age pad,warm pad,polysynth pad,choir pad,"
    "bowed pad,metallic pad,halo pad,sweep pad,rain,soundtrack,crystal,atmosphere,brightness,goblins,"
    "echoes,sci-fi,sitar,banjo,shamisen,koto,kalimba,bagpipe,fiddle,shanai,tinkle bell,agogo,"
    "steel drums,woodblock,taiko drum,melodic tom,synth drum,reverse cymbal,guitar fret noise,"
    "breath noise,seashore,bird tweet,telephone ring,helicopter,applause,gunshot"
).split(",")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def instrument_name(program: int) -> str:
    """Name of a 1-based General MIDI program number."""
    if 1 <= program <= len(GM_PROGRAMS):
        return GM_PROGRAMS[program - 1]
    return f"program {program}"


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def midi_note_name(note: int) -> str:
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def parse_metadata(text: str) -> dict[str, dict[str, str]]:
    """Rows of `musicnet_metadata.csv` keyed by id (CRLF, quoted commas, UTF-8)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    required = {"id", "composer", "composition", "movement", "ensemble"}
    if reader.fieldnames is None or not required <= {f.strip() for f in reader.fieldnames}:
        raise RejectError("bad_metadata", f"metadata header lacks {sorted(required)}")
    rows = {}
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if row.get("id"):
            rows[row["id"]] = row
    return rows


def _int_field(value: str, column: str, line: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RejectError("bad_labels", f"line {line}: {column}={value!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise RejectError("bad_labels", f"line {line}: {column}={value!r} is not an integer")
    return int(number)


def parse_labels(text: str) -> tuple[list[AnnotationEvent], list[str]]:
    """Notes of a MusicNet label CSV, as events in seconds, and the instruments present.

    Each note's `parent` indexes the returned instrument list; its text is the pitch name
    and `text_original` the label's note value (e.g. "Dotted Eighth").
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RejectError("bad_labels", "label file is empty") from None
    if header == OFFICIAL_HEADER:
        start_col, end_col, inst_col, note_col = 0, 1, 2, 3
    elif header == VARIANT_HEADER:
        start_col, end_col, inst_col, note_col = 0, 1, 2, 3
    else:
        raise RejectError("bad_labels", f"unknown label header {header}")
    value_col = 6
    programs: list[int] = []
    notes: list[AnnotationEvent] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise RejectError("bad_labels", f"line {line}: {len(row)} columns, expected {len(header)}")
        start = _int_field(row[start_col], header[start_col], line)
        end = _int_field(row[end_col], header[end_col], line)
        program = _int_field(row[inst_col], header[inst_col], line)
        pitch = _int_field(row[note_col], header[note_col], line)
        if not 0 <= pitch <= 127:
            raise RejectError("bad_labels", f"line {line}: MIDI note {pitch} out of range")
        if program not in programs:
            programs.append(program)
        freq = midi_to_hz(pitch)
        notes.append(AnnotationEvent(
            text=midi_note_name(pitch), text_original=row[value_col].strip(),
            start=start / LABEL_SAMPLE_RATE, end=end / LABEL_SAMPLE_RATE,
            freq_lo=freq, freq_hi=freq, parent=programs.index(program)))
    if not notes:
        raise RejectError("bad_labels", "label file has no notes")
    notes.sort(key=lambda n: (n.start, n.end, n.freq_lo))
    return notes, [instrument_name(p) for p in programs]


def describe(metadata: dict[str, str] | None, instruments: list[str]) -> str:
    """A one-sentence text for a recording that has no lyrics."""
    parts = []
    if metadata:
        composer, work = metadata.get("composer", ""), metadata.get("composition", "")
        movement, ensemble = metadata.get("movement", ""), metadata.get("ensemble", "")
        head = ": ".join(p for p in (composer, work) if p)
        if movement:
            head = f"{head}, {movement}" if head else movement
        parts.append(head)
        if ensemble:
            parts.append(f"performed by a {ensemble.lower()}")
    if instruments:
        names = sorted(set(instruments))
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"instruments: {listed}")
    text = "; ".join(p for p in parts if p)
    return (text + ".") if text else "Instrumental recording."
