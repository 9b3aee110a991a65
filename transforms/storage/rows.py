"""Rows: a finished `Song` becomes one `songs` row and its `segments` rows, in its row files.

DALI songs are cut at their lyric lines (with `pad_s` of context each side); MusicNet
recordings, which have no lyrics, into fixed windows. Times inside a segment row are
relative to the segment's start; audio is stored as FLAC in the Hugging Face Audio struct.
"""
from __future__ import annotations

import dataclasses
import io
import math

import apache_beam as beam
import numpy as np
import soundfile as sf
from apache_beam.metrics import Metrics

from lyricbeam.schemas.records import LYRICS_SOURCES, AnnotationEvent, Song
from lyricbeam.transforms.features.sections import section_at
from lyricbeam.transforms.rejects import RejectingDoFn
from lyricbeam.transforms.storage.audio_store import read_frames, song_length, song_samples
from lyricbeam.transforms.storage.row_files import read_row_refs, row_files_key, write_row_files


@dataclasses.dataclass(frozen=True)
class SegmentConfig:
    pad_s: float = 0.25
    window_s: float = 10.0
    min_segment_s: float = 0.5


def flac_bytes(y: np.ndarray, sr: int, bits: int = 16) -> bytes:
    """Encode float audio (samples, or frames x channels) as 16- or 24-bit FLAC."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), sr, format="FLAC", subtype=f"PCM_{bits}")
    return buffer.getvalue()


def stored_rate(song: Song) -> int:
    """Sample rate of the audio written for `song` (the analysis rate when the two are one signal)."""
    return song.store_sample_rate or song.sample_rate


def stored_length(song: Song) -> int:
    """Frames of the audio written for `song`."""
    if song.stored_audio is not None:
        return len(song.stored_audio)
    return song.store_frames if song.stored_audio_file else song_length(song)


def stored_frames(song: Song, start: int, stop: int) -> np.ndarray:
    """Frames `[start, stop)` (clipped to the audio) of the audio written for `song`, as (frames, channels)."""
    start, stop = max(0, start), min(stored_length(song), stop)
    if stop <= start:
        return np.zeros((0, song.store_channels or 1), np.float32)
    if song.stored_audio is not None:
        return np.asarray(song.stored_audio[start:stop], dtype=np.float32)
    if song.stored_audio_file:
        return read_frames(song.stored_audio_file, start, stop, song.store_channels)
    return song_samples(song, start, stop)[:, None]


def stored_gain(song: Song) -> float:
    """Linear gain of the stored audio (`Song.stored_gain_db`; 1.0 unless normalised)."""
    return 10 ** (song.stored_gain_db / 20) if song.stored_gain_db else 1.0


def song_flac_bytes(song: Song, block_seconds: int = 60) -> bytes:
    """Encode a song's stored audio as FLAC at its rate, channels and bit depth, reading it block
    by block (with its `stored_gain_db`)."""
    buffer = io.BytesIO()
    gain = stored_gain(song)
    rate, total = stored_rate(song), stored_length(song)
    channels = song.store_channels or 1
    with sf.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype=f"PCM_{song.store_bits or 16}") as out:
        for start in range(0, total, block_seconds * rate):
            out.write(np.clip(stored_frames(song, start, start + block_seconds * rate) * gain, -1.0, 1.0))
    return buffer.getvalue()


def _time(value: float):
    # A time the source does not give is NaN in the record and null in the row.
    return value if value is not None and math.isfinite(value) else None


def _events(events: list[AnnotationEvent]) -> list[dict]:
    return [{**dataclasses.asdict(e), "start": _time(e.start), "end": _time(e.end)} for e in events]


def _matrix(x: np.ndarray | None) -> np.ndarray:
    # Arrays stay numpy until the writer builds Arrow columns from them in one go.
    return np.zeros((0, 0), np.float32) if x is None else np.asarray(x, dtype=np.float32)


def _vector(x: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, np.float32) if x is None else np.asarray(x, dtype=np.float32).reshape(-1)


def _flags(x: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, bool) if x is None else np.asarray(x, dtype=bool).reshape(-1)


def portable_path(path: str, input_roots: tuple[str, ...] = ()) -> str:
    """`path` relative to the deepest of `input_roots` holding it, so no row tells where this machine
    keeps its files; a path outside every root keeps only its file name."""
    if not path:
        return path
    for root in sorted((r.rstrip("/") for r in input_roots if r), key=len, reverse=True):
        if path.startswith(root + "/"):
            return path[len(root) + 1:]
    return path.rsplit("/", 1)[-1]


def song_row(song: Song, input_roots: tuple[str, ...] = ()) -> dict:
    """The `songs` row of a finished song; its file paths relative to `input_roots` (`portable_path`)."""
    return {
        "song_id": song.song_id, "source": song.source, "split": song.split, "title": song.title,
        "artist": song.artist, "language": song.language, "licence": song.licence,
        "source_path": portable_path(song.source_path, input_roots),
        "audio_path": portable_path(song.audio_path, input_roots),
        "audio": {"bytes": song_flac_bytes(song), "path": f"{song.song_id}.flac"},
        "sample_rate": stored_rate(song), "duration": song.duration,
        "source_sample_rate": song.source_sample_rate, "source_channels": song.source_channels,
        "source_format": song.source_format, "pcm_sha256": song.pcm_sha256,
        "version_group": song.version_group or f"{song.source}:{song.song_id}",
        "clip_fraction": song.clip_fraction, "bandwidth_hz": song.bandwidth_hz,
        "loudness_lufs": song.loudness_lufs, "loudness_range_lu": song.loudness_range_lu,
        "true_peak_dbtp": song.true_peak_dbtp, "stored_gain_db": song.stored_gain_db,
        "vocal_activity": song.vocal_activity, "lyrics_language": song.lyrics_language, "text": song.text,
        "text_original": song.text_original,
        "lyrics_source": song.lyrics_source or ("annotation" if song.source in LYRICS_SOURCES else ""),
        "notes": _events(song.notes), "words": _events(song.words),
        "lines": _events(song.lines), "paragraphs": _events(song.paragraphs),
        "alignment": dataclasses.asdict(song.alignment) if song.alignment is not None else None,
        "instruments": list(song.instruments), "annot_fr": song.annot_fr,
        "annot_offset": song.annot_offset, "info_json": song.info_json, "mel": _matrix(song.mel),
        "n_mels": int(song.mel.shape[1]) if song.mel is not None else 0,
        "mel_hop_seconds": song.mel_hop_seconds, "f0_hz": _vector(song.f0_hz),
        "voiced": _flags(song.voiced),
        "f0_hop_seconds": song.f0_hop_seconds, "tempo_bpm": song.tempo_bpm,
        "beat_times": _vector(song.beat_times), "key": song.key, "key_confidence": song.key_confidence,
        "sections": [section._asdict() for section in song.sections], "instrumental": song.instrumental,
        "tags": list(song.tags), "prompt": song.prompt, "word_embeddings": _matrix(song.word_embeddings),
        "line_embeddings": _matrix(song.line_embeddings), "text_embedding": _vector(song.text_embedding),
    }


def line_times(song: Song) -> list[tuple[float, float]]:
    """(start, end) of each lyric line: the source's where it gives both, else the span of the
    line's aligned words (a plain-text lyrics file gives no times, an LRC file no line ends, and
    its starts may be offset), else NaN."""
    aligned = song.alignment.words if song.alignment is not None and len(song.alignment.words) == len(song.words) else []
    spans: dict[int, list[float]] = {}
    for word, placed in zip(song.words, aligned):
        span = spans.setdefault(word.parent, [math.inf, -math.inf])
        span[0], span[1] = min(span[0], placed.start), max(span[1], placed.end)
    times = []
    for i, line in enumerate(song.lines):
        start, end = line.start, line.end
        if not (math.isfinite(start) and math.isfinite(end)) and i in spans:
            start, end = spans[i]
        times.append((start, end))
    return times


def segment_spans(song: Song, config: SegmentConfig) -> list[tuple[float, float, int]]:
    """(start, end, line index or -1) of each segment of `song`, in seconds: one per lyric line
    with times (`line_times`), else (no lyrics, or no line with times) windows of `window_s`."""
    if song.has_lyrics and song.lines:
        spans = []
        for i, (line, (line_start, line_end)) in enumerate(zip(song.lines, line_times(song))):
            if not (math.isfinite(line_start) and math.isfinite(line_end)):
                continue
            start = max(0.0, line_start - config.pad_s)
            end = min(song.duration, line_end + config.pad_s)
            if end - start >= config.min_segment_s and line.text:
                spans.append((start, end, i))
        if spans or any(math.isfinite(line.start) for line in song.lines):
            return spans
    spans, start = [], 0.0
    while start < song.duration - 1e-9:
        end = min(song.duration, start + config.window_s)
        if end - start >= config.min_segment_s:
            spans.append((start, end, -1))
        start += config.window_s
    return spans


def _relative(events: list[AnnotationEvent], start: float, end: float) -> list[AnnotationEvent]:
    return [e for e in events if e.end > start and e.start < end]


def segment_rows(song: Song, config: SegmentConfig = SegmentConfig()) -> list[dict]:
    """The `segments` rows of a finished song."""
    rows = []
    sr = stored_rate(song)
    hop = song.mel_hop_seconds or 0.01
    for index, (start, end, line) in enumerate(segment_spans(song, config)):
        clip = stored_frames(song, int(round(start * sr)), int(round(end * sr)))
        if clip.shape[1] == 1:
            clip = clip[:, 0]
        first, last = int(round(start / hop)), int(round(end / hop))
        aligned_words = None
        if line >= 0:
            word_ids = [w for w, word in enumerate(song.words) if word.parent == line]
            if song.alignment is not None and len(song.alignment.words) == len(song.words):
                aligned_words = [{**dataclasses.asdict(song.alignment.words[w]),
                                  "start": song.alignment.words[w].start - start,
                                  "end": song.alignment.words[w].end - start} for w in word_ids]
            words = [song.words[w] for w in word_ids]
            text, text_original = song.lines[line].text, song.lines[line].text_original
            word_embeddings = (song.word_embeddings[word_ids] if song.word_embeddings is not None
                               else np.zeros((0, 0), np.float32))
            text_embedding = song.line_embeddings[line] if song.line_embeddings is not None else None
        else:
            words, text, text_original = [], song.text, song.text_original
            word_embeddings, text_embedding = np.zeros((0, 0), np.float32), song.text_embedding
        notes = _relative(song.notes, start, end)
        rows.append({
            "segment_id": f"{song.song_id}/{index:04d}", "song_id": song.song_id,
            "segment_index": index, "source": song.source, "split": song.split, "title": song.title,
            "artist": song.artist, "language": song.language, "licence": song.licence,
            "version_group": song.version_group or f"{song.source}:{song.song_id}", "start": start, "end": end,
            "audio": {"bytes": flac_bytes(clip * stored_gain(song), sr, song.store_bits or 16),
                      "path": f"{song.song_id}_{index:04d}.flac"},
            "sample_rate": sr, "duration": len(clip) / sr, "text": text, "text_original": text_original,
            "section": section_at(song.sections, (start + end) / 2),
            "segment_words": [{"text": w.text, "start": _time(w.start - start), "end": _time(w.end - start)}
                              for w in words],
            "segment_aligned_words": aligned_words,
            "segment_notes": [{"text": n.text, "start": n.start - start, "end": n.end - start,
                               "freq_lo": n.freq_lo, "freq_hi": n.freq_hi} for n in notes],
            "instruments": list(song.instruments),
            "mel": _matrix(song.mel[first:last] if song.mel is not None else None),
            "n_mels": int(song.mel.shape[1]) if song.mel is not None else 0,
            "mel_hop_seconds": song.mel_hop_seconds,
            "f0_hz": _vector(song.f0_hz[first:last] if song.f0_hz is not None else None),
            "voiced": _flags(song.voiced[first:last] if song.voiced is not None else None),
            "f0_hop_seconds": song.f0_hop_seconds,
            "word_embeddings": _matrix(word_embeddings),
            "text_embedding": _vector(text_embedding),
        })
    return rows


class ToRows(RejectingDoFn):
    """Song -> its rows written to per-song files under `rows_dir`; outputs their `RowRef`s."""

    stage = "rows"
    many = True

    def __init__(self, config: SegmentConfig, rows_dir: str, cache_digest: str, input_roots: tuple[str, ...] = (),
                 audio_feature_rate=None):
        super().__init__()
        self.config = config
        self.audio_feature_rate = audio_feature_rate
        self.rows_dir, self.cache_digest, self.input_roots = rows_dir, cache_digest, tuple(input_roots)

    def transform(self, song: Song) -> list:
        rows = [("songs", song_row(song, self.input_roots))] + [("segments", r) for r in segment_rows(song, self.config)]
        return write_row_files(self.rows_dir, row_files_key(song, self.cache_digest), rows,
                               self.audio_feature_rate or song.sample_rate)


class UseCachedRows(beam.DoFn):
    """Song -> itself (main), or its cached row references on the `cached` output."""

    def __init__(self, cache_dir: str, digest: str):
        self.cache_dir, self.digest = cache_dir, digest
        self._hits = Metrics.counter("cache", "hits")
        self._misses = Metrics.counter("cache", "misses")

    def process(self, song: Song):
        refs = read_row_refs(self.cache_dir, row_files_key(song, self.digest)) if self.cache_dir else None
        if refs is None:
            self._misses.inc()
            yield song
            return
        self._hits.inc()
        for ref in refs:
            yield beam.pvalue.TaggedOutput("cached", ref)
