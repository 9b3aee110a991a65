"""Streaming loader for `segments` shards: local paths or any fsspec URL.

The unit of work is one Parquet row group, so shards are never read whole. Units are
dealt round-robin over `world_size x num_workers` readers (rank-major), so across ranks and
DataLoader workers every row is read exactly once per epoch. Each reader shuffles its
units per epoch, streams rows through a shuffle buffer, pads and batches — all from one
seeded RNG, so the stream is a pure function of (seed, epoch, rank, worker). Batches are
made inside the dataset and carry their reader's id, so resuming mid-epoch is "skip the
first k batches of each reader", with k counted by the trainer per reader.
"""
from __future__ import annotations

import dataclasses
import io
import random
from typing import Iterator, Optional

import numpy as np
from torch.utils.data import IterableDataset

COLUMNS = ["segment_id", "song_id", "split", "text", "mel", "word_embeddings", "text_embedding",
           "segment_words", "segment_notes", "mel_hop_seconds", "duration"]


@dataclasses.dataclass(frozen=True)
class LoaderConfig:
    batch_size: int = 16
    shuffle_buffer: int = 256
    max_frames: int = 512  # crop longer mels (random crop when training)
    max_words: int = 48
    use_audio: bool = False  # decode the FLAC with soundfile and recompute the mel instead of the stored one
    drop_last: bool = False


def list_shards(data: str, split: str, config_name: str = "segments") -> list[str]:
    """Sorted shard URLs of one split under a lyricbeam output (`OUT`) or a shard directory."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(data)
    patterns = [f"{root.rstrip('/')}/data/{config_name}/{split}-*.parquet", f"{root.rstrip('/')}/{split}-*.parquet"]
    for pattern in patterns:
        found = sorted(fs.glob(pattern))
        if found:
            protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
            return [p if protocol in ("file", "local") else f"{protocol}://{p}" for p in found]
    raise FileNotFoundError(f"no {config_name}/{split} shards under {data}")


def _open(url: str):
    import fsspec

    return fsspec.open(url, "rb").open()


def row_group_units(shards: list[str]) -> list[tuple[str, int, int]]:
    """(shard, row group, rows) for every row group of every shard (reads only footers)."""
    import pyarrow.parquet as pq

    units = []
    for url in shards:
        with _open(url) as handle:
            meta = pq.ParquetFile(handle).metadata
        units += [(url, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return units


def units_for_reader(units: list, reader: int, readers: int) -> list:
    """The units reader `reader` of `readers` owns: every `readers`-th, starting at `reader`."""
    return units[reader::readers]


def mel_from_flac(data: bytes, n_mels: int = 80) -> np.ndarray:
    import librosa
    import soundfile as sf

    from lyricbeam.transforms.features.acoustic import log_mel

    y, sr = sf.read(io.BytesIO(data), dtype="float32")
    if y.ndim == 2:  # stored at the source's channels: the model hears mono
        y = y.mean(axis=1)
    if sr != 16000:
        y = librosa.resample(y, orig_sr=sr, target_sr=16000)
    return log_mel(y, 16000, n_mels=n_mels)


FLOAT_ARRAY_COLUMNS = ("mel", "word_embeddings", "text_embedding")  # read as numpy, not Python floats


def float_rows(column) -> list[Optional[np.ndarray]]:
    """Each row of a list<float> (1-D) or list<list<float>> (2-D, rows x width) Arrow column as a
    float32 array, None where null.

    `to_pylist` makes one Python float per value (80 000 for a 10 s mel), which held the loader to
    ~200 rows/s per process; this slices the column's flat value buffer instead.
    """
    import pyarrow as pa

    out: list[Optional[np.ndarray]] = []
    for chunk in column.chunks:
        nested = pa.types.is_list(chunk.type.value_type)
        flat = chunk.flatten()  # the rows' items (inner lists when nested)
        values = (flat.flatten() if nested else flat).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        offsets = chunk.offsets.to_numpy()
        inner = flat.offsets.to_numpy() if nested else None
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        for i in range(len(chunk)):
            if not valid[i]:
                out.append(None)
                continue
            a, b = offsets[i] - offsets[0], offsets[i + 1] - offsets[0]
            if not nested:
                out.append(values[a:b])
                continue
            lo, hi = inner[a] - inner[0], inner[b] - inner[0]
            width = (hi - lo) // (b - a) if b > a else 0
            out.append(values[lo:hi].reshape(b - a, width))
    return out


def _rows(unit, use_audio: bool) -> Iterator[dict]:
    import pyarrow.parquet as pq

    url, group, _ = unit
    # From FLAC the mel is computed again, so the stored one is not read at all.
    columns = [c for c in COLUMNS if c != "mel"] + ["audio"] if use_audio else COLUMNS
    with _open(url) as handle:
        table = pq.ParquetFile(handle).read_row_group(group, columns=columns)
    floats = [name for name in FLOAT_ARRAY_COLUMNS if name in columns]
    arrays = {name: float_rows(table.column(name)) for name in floats}
    for i, row in enumerate(table.drop_columns(floats).to_pylist()):
        row.update({name: arrays[name][i] for name in floats})
        if use_audio:
            row["mel"] = mel_from_flac(row.pop("audio")["bytes"])
        yield row


def in_holdout(segment_id: str, fraction: float) -> bool:
    """Deterministic membership of a row in the held-out `fraction` (by a hash of its id)."""
    import hashlib

    digest = hashlib.sha1(segment_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def word_onset_track(words: list[dict], frames: int, hop: float) -> np.ndarray:
    """Per-frame conditioning from word times: 1 at a word's onset frame, 0.5 while it lasts."""
    track = np.zeros(frames, np.float32)
    for word in words:
        a, b = int(word["start"] / hop), int(word["end"] / hop)
        if 0 <= a < frames:
            track[a: min(frames, max(a + 1, b))] = 0.5
            track[a] = 1.0
    return track


def pitch_track(notes: list[dict], frames: int, hop: float) -> np.ndarray:
    """Per-frame log2 pitch (relative to 110 Hz) from annotated notes, 0 where none."""
    track = np.zeros(frames, np.float32)
    for note in notes:
        hz = note.get("freq_lo") or 0.0
        if hz > 0:
            a, b = max(0, int(note["start"] / hop)), min(frames, int(note["end"] / hop) + 1)
            track[a:b] = np.log2(hz / 110.0)
    return track


def collate(rows: list[dict], config: LoaderConfig, rng: Optional[random.Random]) -> dict:
    """Pad (and crop) a list of rows into a batch of numpy arrays with lengths and masks."""
    mels, starts = [], []
    for row in rows:
        mel = np.asarray(row["mel"], np.float32).reshape(-1, 80) if row["mel"] is not None and len(row["mel"]) \
            else np.zeros((1, 80), np.float32)
        start = 0
        if len(mel) > config.max_frames:
            start = rng.randrange(len(mel) - config.max_frames + 1) if rng else 0
            mel = mel[start: start + config.max_frames]
        mels.append(mel)
        starts.append(start)
    frames = max(len(m) for m in mels)
    n_mels = mels[0].shape[1]
    batch_mel = np.full((len(rows), frames, n_mels), -100.0, np.float32)
    mel_mask = np.zeros((len(rows), frames), bool)
    onsets = np.zeros((len(rows), frames), np.float32)
    pitch = np.zeros((len(rows), frames), np.float32)
    words = np.zeros((len(rows), config.max_words, 384), np.float32)
    word_mask = np.zeros((len(rows), config.max_words), bool)
    text = np.zeros((len(rows), 384), np.float32)
    for i, (row, mel, start) in enumerate(zip(rows, mels, starts)):
        batch_mel[i, : len(mel)] = mel
        mel_mask[i, : len(mel)] = True
        hop = row.get("mel_hop_seconds") or 0.01
        shift = start * hop
        shifted_words = [{**w, "start": w["start"] - shift, "end": w["end"] - shift} for w in row.get("segment_words") or []]
        shifted_notes = [{**n, "start": n["start"] - shift, "end": n["end"] - shift} for n in row.get("segment_notes") or []]
        onsets[i, : len(mel)] = word_onset_track(shifted_words, len(mel), hop)
        pitch[i, : len(mel)] = pitch_track(shifted_notes, len(mel), hop)
        emb = row.get("word_embeddings")
        emb = np.asarray(emb if emb is not None else np.zeros((0, 384)), np.float32).reshape(-1, 384)[: config.max_words]
        words[i, : len(emb)] = emb
        word_mask[i, : len(emb)] = True
        if row.get("text_embedding") is not None and len(row["text_embedding"]):
            text[i] = np.asarray(row["text_embedding"], np.float32)
    return {"mel": batch_mel, "mel_mask": mel_mask, "word_emb": words, "word_mask": word_mask, "text_emb": text,
            "onsets": onsets, "pitch": pitch, "segment_id": [r["segment_id"] for r in rows],
            "text": [r["text"] for r in rows]}


class SegmentStream(IterableDataset):
    """Iterable of batches over one split; give it to `torch.utils.data.DataLoader(batch_size=None)`.

    `rank`/`world_size` default to torch.distributed's; the DataLoader worker id is read at
    iteration time. `skip_batches` (from a checkpoint) maps reader id -> batches that reader
    already yielded this epoch.
    """

    def __init__(self, data: str, split: str, config: LoaderConfig = LoaderConfig(), seed: int = 0,
                 shuffle: bool = True, rank: Optional[int] = None, world_size: Optional[int] = None,
                 epoch: int = 0, skip_batches: Optional[dict[int, int]] = None, holdout: float = 0.0,
                 subset: str = "all"):
        self.shards = list_shards(data, split)
        self.units = row_group_units(self.shards)
        self.config, self.seed, self.shuffle = config, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches = epoch, dict(skip_batches or {})
        self.holdout, self.subset = holdout, subset  # subset: all | fit | heldout

    def num_rows(self) -> int:
        return sum(u[2] for u in self.units)

    def _reader(self) -> tuple[int, int, int, int]:
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            try:
                import torch.distributed as dist

                initialised = dist.is_available() and dist.is_initialized()
            except ImportError:
                initialised = False
            rank, world = (dist.get_rank(), dist.get_world_size()) if initialised else (0, 1)
        worker, workers = 0, 1
        try:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
            if info is not None:
                worker, workers = info.id, info.num_workers
        except ImportError:
            pass
        return rank * workers + worker, world * workers, worker, workers

    def rows(self) -> Iterator[dict]:
        """This reader's rows for the current epoch, shuffled if asked."""
        reader, readers, _, _ = self._reader()
        rng = random.Random(f"{self.seed}:{self.epoch}:{reader}")
        mine = units_for_reader(self.units, reader, readers)
        if self.shuffle:
            mine = mine[:]
            rng.shuffle(mine)
        buffer: list[dict] = []
        for unit in mine:
            for row in _rows(unit, self.config.use_audio):
                if self.subset != "all" and (in_holdout(row["segment_id"], self.holdout) != (self.subset == "heldout")):
                    continue
                if not self.shuffle:
                    yield row
                    continue
                buffer.append(row)
                if len(buffer) >= self.config.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        while buffer:
            yield buffer.pop(rng.randrange(len(buffer)))

    def __iter__(self) -> Iterator[dict]:
        reader = self._reader()[0]
        rng = random.Random(f"crop:{self.seed}:{self.epoch}:{reader}") if self.shuffle else None
        skip = self.skip_batches.get(reader, 0)
        batch: list[dict] = []
        emitted = 0

        def emit(rows: list[dict]):
            out = collate(rows, self.config, rng)
            out["reader"] = reader
            return out

        for row in self.rows():
            batch.append(row)
            if len(batch) == self.config.batch_size:
                if emitted >= skip:
                    yield emit(batch)
                elif rng is not None:
                    collate(batch, self.config, rng)  # keep the crop RNG in step with a full run
                emitted += 1
                batch = []
        if batch and not self.config.drop_last and emitted >= skip:
            yield emit(batch)
