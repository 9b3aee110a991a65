"""Decoded audio kept in a work file beside the output, not inside the `Song`.

Clean writes each song's mono float32 samples to `OUT/.work/audio/` block by block; the
`Song` carries only the file's path. So audio never crosses a shuffle (only paths and
small fields do), and every later stage reads the stretch it needs — a block, a lyric
line — so a worker's memory holds blocks, not hour-long recordings.

A JSON sidecar written after the samples records what decoding measured; a re-run after a
crash finds it and does not decode the song again. Files go through Beam's filesystems
(local, gs://, ...), which all support seeking reads.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
from apache_beam.io.filesystems import FileSystems

from lyricbeam.schemas.records import Song
from lyricbeam.transforms.storage.workdir import (cache_key, ensure_parent, entry_path, hidden_temp_path, publish,
                                                  read_bytes, result_settings, write_atomically)

SAMPLE_BYTES = 4  # little-endian float32


def audio_file_path(work_dir: str, song: Song, source_size: int, settings: Any) -> str:
    """Work-file path of `song`'s decoded samples: a new name whenever its source or the audio settings change."""
    key = cache_key(song.source, song.song_id, song.audio_path, source_size, result_settings(settings))
    return entry_path(work_dir, key, ".f32")


class AudioFileWriter:
    """Append float32 blocks (samples, or frames x channels, kept interleaved) to a hidden temporary
    file; `commit` renames it into place."""

    def __init__(self, path: str):
        self.path = path
        self._temp = hidden_temp_path(path)
        ensure_parent(path)
        self._handle = FileSystems.create(self._temp, compression_type="uncompressed")
        self.samples = 0

    def write(self, block: np.ndarray) -> None:
        self._handle.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.samples += len(block)

    def commit(self, sidecar: dict) -> None:
        self._handle.close()
        publish(self._temp, self.path)
        write_sidecar(self.path, {**sidecar, "samples": self.samples})

    def abort(self) -> None:
        self._handle.close()
        FileSystems.delete([self._temp])


def write_sidecar(path: str, fields: dict) -> None:
    write_atomically(path + ".json", json.dumps(fields, sort_keys=True).encode())


def read_sidecar(path: str) -> dict | None:
    """What decoding measured for the samples at `path`, or None when they are not complete."""
    data = read_bytes(path + ".json")
    return None if data is None else json.loads(data.decode())


def read_frames(path: str, start: int, stop: int, channels: int) -> np.ndarray:
    """Frames `[start, stop)` of an interleaved work file of `channels` channels, as (frames, channels)."""
    flat = read_samples(path, max(0, start) * channels, max(0, stop) * channels)
    return flat.reshape(-1, channels)


def read_samples(path: str, start: int, stop: int) -> np.ndarray:
    """Samples `[start, stop)` of the work file at `path` (clipped to the file)."""
    start = max(0, start)
    if stop <= start:
        return np.zeros(0, np.float32)
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        handle.seek(start * SAMPLE_BYTES)
        data = handle.read((stop - start) * SAMPLE_BYTES)
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def song_length(song: Song) -> int:
    """Number of samples of `song`'s decoded audio."""
    if song.audio is not None:
        return len(song.audio)
    return song.audio_samples if song.audio_file else 0


def padded_slice(y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """`y[start:stop]` as float32, zero-padded where the range leaves `y` (as centred frames need)."""
    if start >= 0 and stop <= len(y):
        return np.asarray(y[start:stop], dtype=np.float32)
    out = np.zeros(max(0, stop - start), np.float32)
    a, b = max(0, start), min(len(y), stop)
    if b > a:
        out[a - start: b - start] = y[a:b]
    return out


def song_samples(song: Song, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Samples `[start, stop)` of `song`, from memory or its work file; zero-padded where the range leaves the audio."""
    n = song_length(song)
    stop = n if stop is None else stop
    if stop <= start:
        return np.zeros(0, np.float32)
    if song.audio is not None:
        return padded_slice(song.audio, start, stop)
    inside_start, inside_stop = max(0, start), min(n, stop)
    if song.audio_file:
        inside = read_samples(song.audio_file, inside_start, inside_stop)
    else:
        raise ValueError(f"song {song.song_id} has no decoded audio")
    if inside_start == start and inside_stop == stop:
        return np.asarray(inside, dtype=np.float32)
    out = np.zeros(stop - start, np.float32)
    if inside_stop > inside_start:
        out[inside_start - start: inside_stop - start] = inside
    return out


def song_blocks(song: Song, block: int, margin: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """`(start, samples[start - margin : start + block + margin])` for consecutive blocks, zero-padded at the ends."""
    n = song_length(song)
    for start in range(0, n, block):
        yield start, song_samples(song, start - margin, min(start + block, n) + margin)


def delete_work_audio(work_dir: str) -> None:
    """Remove the decoded-audio work files (after a run has written its dataset)."""
    if FileSystems.exists(work_dir):
        FileSystems.delete([work_dir])
