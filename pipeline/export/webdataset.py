"""`webdataset`: tar shards for stable-audio-tools' WebDataset loader (and the `webdataset` package).

Each sample is two members with one key: `KEY.flac` (the stored audio, as in the shard) and
`KEY.json` — `prompt`, `lyrics`, `seconds_start` (where the audio starts in its song),
`seconds_total` (the song's length), `tags`, `key`, `bpm`, and the ids. Keys have no dots (the
loader splits a member name at its first dot). Shards fill to `shard_bytes` (1 GB by default) in
the order the songs are read; tar headers carry no time or owner, so a re-run writes the same bytes.
"""
from __future__ import annotations

import io
import json
import tarfile

DEFAULT_SHARD_BYTES = 1_000_000_000
BLOCK = 512  # tar's record unit


def sample_json(song, lyrics: str, seconds_start: float) -> bytes:
    """The `.json` member of a sample of `song` (a `SongRecord`) whose audio starts at `seconds_start`."""
    record = {"prompt": song.prompt, "lyrics": lyrics, "seconds_start": round(seconds_start, 3),
              "seconds_total": round(song.duration, 3), "tags": list(song.tags), "key": song.key,
              "bpm": round(song.bpm, 1) if song.bpm else None, "song_id": song.song_id, "title": song.title,
              "artist": song.artist, "language": song.language, "instrumental": song.instrumental}
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


def member_size(data: bytes) -> int:
    """Bytes a member takes in the tar: its header and its data padded to whole blocks."""
    return BLOCK + -(-len(data) // BLOCK) * BLOCK


class TarShards:
    """Samples written to numbered tar shards (`<folder>/<prefix>-000000.tar`, ...) as they come.

    A shard is written under a hidden name and renamed when full, so memory holds one sample and
    a shard that exists is complete. Where to cut depends on the samples' sizes only: a resumed
    run cuts at the same places, and skips the shards that exist.
    """

    def __init__(self, destination, folder: str, prefix: str, shard_bytes: int = DEFAULT_SHARD_BYTES):
        self.destination, self.folder, self.prefix, self.shard_bytes = destination, folder, prefix, shard_bytes
        self.index, self.size, self.samples = -1, 0, 0
        self.written: list[str] = []
        self._handle = self._tar = None
        self._temp = self._final = ""

    def add(self, key: str, flac: bytes, meta: bytes) -> None:
        members = [(f"{key}.flac", flac), (f"{key}.json", meta)]
        grows = sum(member_size(data) for _, data in members)
        if self.index < 0 or (self.samples and self.size + grows > self.shard_bytes):
            self._next_shard()
        self.size += grows
        self.samples += 1
        if self._tar is not None:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                self._tar.addfile(info, io.BytesIO(data))

    def _next_shard(self) -> None:
        self._finish()
        self.index += 1
        self.size, self.samples = 0, 0
        relative = f"{self.folder}/{self.prefix}-{self.index:06d}.tar"
        if self.destination.exists(relative):
            return
        self._final = self.destination.path(relative)
        parent, name = self._final.rsplit("/", 1)
        self._temp = f"{parent}/.{name}.partial"
        self.destination.fs.makedirs(parent, exist_ok=True)
        self._handle = self.destination.fs.open(self._temp, "wb")
        self._tar = tarfile.open(fileobj=self._handle, mode="w|", format=tarfile.USTAR_FORMAT)
        self.written.append(relative)

    def _finish(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._handle.close()
            self.destination.fs.mv(self._temp, self._final)
        self._tar = self._handle = None

    def close(self) -> int:
        """Finish the last shard; the number of shards."""
        self._finish()
        return self.index + 1
