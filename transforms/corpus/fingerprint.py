"""Audio fingerprint for near-duplicate detection: spectral-peak landmarks.

A recording is reduced to the strongest local maxima of its 8 kHz spectrogram. Pairs of
peaks (anchor, target) give 24-bit landmark hashes `(f1, f2, dt)` with the anchor's time;
triples give 64-bit candidate keys for locality-sensitive grouping. Peaks survive
re-encoding, resampling, gain and downmixing; trimming or padding only shifts the times,
which the match score absorbs by voting on a single time offset.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class FingerprintConfig:
    sample_rate: int = 8000
    n_fft: int = 512
    hop: int = 256  # 32 ms frames
    peaks_per_second: float = 12.0
    neighborhood_bins: int = 15  # peak must be the maximum of (2n+1) bins x (2m+1) frames
    neighborhood_frames: int = 7
    fan_out: int = 4
    max_dt_frames: int = 48
    max_df_bins: int = 96
    key_sample_mod: int = 4  # keep ~1/4 of the triple keys (content-defined, so copies keep the same ones)


@dataclasses.dataclass
class Fingerprint:
    hashes: np.ndarray  # uint32 landmark hashes, sorted by time
    times: np.ndarray  # int32 anchor frame of each hash
    keys: np.ndarray  # uint64 candidate keys (distinct)
    frames: int


PEAK_BLOCK_FRAMES = 4096  # ~131 s at 8 kHz: spectrogram memory is one block, not the song


def resample_blocks(blocks, sr: int, target: int):
    """Resample consecutive blocks with soxr's streaming resampler (same samples as one-shot HQ)."""
    import soxr

    if sr == target:
        yield from blocks
        return
    stream = soxr.ResampleStream(sr, target, 1, dtype="float32", quality="HQ")
    pending = None
    for block in blocks:
        if pending is not None:
            yield stream.resample_chunk(pending, last=False)
        pending = np.asarray(block, dtype=np.float32)
    if pending is not None:
        yield stream.resample_chunk(pending, last=True)


def framed_stretch(y: np.ndarray, first: int, stop: int, n_fft: int, hop: int) -> np.ndarray:
    """Samples under frames `[first, stop)` of a centred, zero-padded STFT of `y` (for `center=False`)."""
    from lyricbeam.transforms.storage.audio_store import padded_slice

    return padded_slice(y, first * hop - n_fft // 2, (stop - 1) * hop - n_fft // 2 + n_fft)


def spectral_peaks(y: np.ndarray, sr: int, config: FingerprintConfig = FingerprintConfig()) -> np.ndarray:
    """(frame, bin) of the strongest local spectrogram maxima, at most `peaks_per_second`."""
    if sr != config.sample_rate:
        y = np.concatenate(list(resample_blocks([y], sr, config.sample_rate)))
    return _peaks_of(np.asarray(y, dtype=np.float32), config)


def _peaks_of(y: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    # Block by block over frames; each block is computed with the filter's reach of extra
    # frames on both sides, so the peaks are exactly those of the whole spectrogram.
    import librosa
    from scipy.ndimage import maximum_filter

    n_frames = 1 + len(y) // config.hop
    reach = config.neighborhood_frames
    size = (2 * config.neighborhood_bins + 1, 2 * reach + 1)
    found, loudest = [], -np.inf
    for first in range(0, n_frames, PEAK_BLOCK_FRAMES):
        stop = min(n_frames, first + PEAK_BLOCK_FRAMES)
        lo, hi = max(0, first - reach), min(n_frames, stop + reach)
        stretch = framed_stretch(y, lo, hi, config.n_fft, config.hop)
        db = 20 * np.log10(np.abs(librosa.stft(stretch, n_fft=config.n_fft, hop_length=config.hop,
                                                center=False)) + 1e-6)
        inner = slice(first - lo, stop - lo)
        is_peak = (db == maximum_filter(db, size=size, mode="constant", cval=-np.inf))[:, inner]
        db = db[:, inner]
        loudest = max(loudest, float(db.max()))
        is_peak &= db > -100.0
        is_peak[:2] = False  # DC
        bins, frames = np.nonzero(is_peak)
        found.append((frames + first, bins, db[bins, frames]))
    frames, bins, strength = (np.concatenate(parts) for parts in zip(*found))
    keep = strength > loudest - 70.0  # ignore digital silence and the noise floor
    frames, bins, strength = frames[keep], bins[keep], strength[keep]
    budget = int(np.ceil(config.peaks_per_second * n_frames * config.hop / config.sample_rate))
    if len(strength) > budget:
        keep = np.argpartition(-strength, budget)[:budget]
        bins, frames = bins[keep], frames[keep]
    order = np.lexsort((bins, frames))
    return np.stack([frames[order], bins[order]], axis=1).astype(np.int32)


def _mix64(values: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: spreads packed integers uniformly over 64 bits.
    x = values.astype(np.uint64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _targets(peaks: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    """For each peak, the indices of its first `fan_out` targets (-1 where fewer)."""
    n = len(peaks)
    window = 4 * config.fan_out
    if n < 2:
        return np.full((n, config.fan_out), -1, dtype=np.int64)
    idx = np.arange(n)[:, None] + np.arange(1, window + 1)[None, :]
    inside = idx < n
    idx = np.where(inside, idx, n - 1)
    dt = peaks[idx, 0] - peaks[:, None, 0]
    df = np.abs(peaks[idx, 1] - peaks[:, None, 1])
    valid = inside & (dt >= 1) & (dt <= config.max_dt_frames) & (df <= config.max_df_bins)
    rank = np.cumsum(valid, axis=1)
    keep = valid & (rank <= config.fan_out)
    out = np.full((n, config.fan_out), -1, dtype=np.int64)
    rows, cols = np.nonzero(keep)
    out[rows, rank[rows, cols] - 1] = idx[rows, cols]
    return out


def fingerprint(y: np.ndarray, sr: int, config: FingerprintConfig = FingerprintConfig()) -> Fingerprint:
    """Landmark hashes, their anchor times and the candidate keys of mono audio `y`."""
    return fingerprint_blocks([y], sr, config)


def fingerprint_blocks(blocks, sr: int, config: FingerprintConfig = FingerprintConfig()) -> Fingerprint:
    """`fingerprint` of audio given as consecutive blocks (only the 8 kHz signal is held whole)."""
    y8 = [b for b in resample_blocks(blocks, sr, config.sample_rate)]
    y8 = np.concatenate(y8) if y8 else np.zeros(0, np.float32)
    peaks = _peaks_of(y8, config).astype(np.int64)
    targets = _targets(peaks, config)
    anchors = np.repeat(np.arange(len(peaks)), config.fan_out)
    flat = targets.reshape(-1)
    ok = flat >= 0
    a, t = anchors[ok], flat[ok]
    hashes = (peaks[a, 1] << 15) | (peaks[t, 1] << 6) | (peaks[t, 0] - peaks[a, 0])
    times = peaks[a, 0]
    # Triples (anchor + two targets) with dt quantised to 4 frames: 64-bit-spread keys, of
    # which a content-defined 1/key_sample_mod is kept, so copies keep the same ones.
    keys = []
    for u in range(config.fan_out):
        for v in range(u + 1, config.fan_out):
            both = (targets[:, u] >= 0) & (targets[:, v] >= 0)
            i, ju, jv = np.nonzero(both)[0], targets[both, u], targets[both, v]
            packed = (peaks[i, 1] << 40) | (peaks[ju, 1] << 31) | \
                     (((peaks[ju, 0] - peaks[i, 0]) >> 1) << 24) | (peaks[jv, 1] << 15) | \
                     (((peaks[jv, 0] - peaks[i, 0]) >> 1) << 8)
            keys.append(packed)
    mixed = _mix64(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)
    sampled = np.unique(mixed[mixed % np.uint64(config.key_sample_mod) == 0])
    frames = int(np.ceil(len(y8) / config.hop))
    order = np.argsort(times, kind="stable")
    return Fingerprint(hashes[order].astype(np.uint32), times[order].astype(np.int32), sampled, frames)


def match_score(a: Fingerprint, b: Fingerprint, tolerance: int = 1) -> tuple[float, int]:
    """Share of landmarks that agree on one time offset, and that offset (frames, b - a).

    1.0 for identical audio, near 0 for unrelated recordings. The share is of the shorter
    fingerprint's landmarks, so a trimmed copy still scores high against its original.
    """
    if len(a.hashes) == 0 or len(b.hashes) == 0:
        return 0.0, 0
    # A sub-frame shift between copies moves a peak to the next frame now and then: let
    # b's landmarks also match with their dt off by one (dt is the hash's low bits).
    hb = np.concatenate([b.hashes, b.hashes - 1, b.hashes + 1])
    tb = np.concatenate([b.times, b.times, b.times])
    common = np.intersect1d(a.hashes, hb)
    if len(common) == 0:
        return 0.0, 0
    ia = np.isin(a.hashes, common)
    ib = np.isin(hb, common)
    ha, ta = a.hashes[ia], a.times[ia]
    hb, tb = hb[ib], tb[ib]
    order_b = np.argsort(hb, kind="stable")
    hb, tb = hb[order_b], tb[order_b]
    left = np.searchsorted(hb, ha, side="left")
    right = np.searchsorted(hb, ha, side="right")
    counts = right - left
    # Every (a, b) landmark pair with the same hash votes for its offset.
    reps = np.repeat(np.arange(len(ha)), counts)
    starts = np.repeat(left, counts)
    within = np.arange(len(reps)) - np.repeat(np.cumsum(counts) - counts, counts)
    offsets = tb[starts + within] - ta[reps]
    if len(offsets) == 0:
        return 0.0, 0
    low = offsets.min()
    histogram = np.bincount(offsets - low)
    if tolerance:
        histogram = np.convolve(histogram, np.ones(2 * tolerance + 1, dtype=np.int64), mode="same")
    best = int(np.argmax(histogram))
    votes = int(histogram[best])
    return min(1.0, votes / min(len(a.hashes), len(b.hashes))), int(best + low)


def key_digest(keys: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(keys).tobytes()).hexdigest()[:16]
