"""Loudness of a recording, measured block by block: integrated loudness (ITU-R BS.1770-4, LUFS),
loudness range (EBU Tech 3342, LU) and true peak (BS.1770-4 Annex 2, dBTP).

`LoudnessMeter` takes the audio in blocks of any length and keeps one number per 100 ms (the
K-weighted energy of each step) plus its filter and oversampler state, so an hour-long file is
measured in the memory of one block; the result equals a whole-file measurement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, lfilter_zi

STEP_S = 0.1  # gating blocks overlap by 75 %: a 400 ms block is four 100 ms steps
MOMENTARY_STEPS = 4
SHORT_TERM_STEPS = 30  # EBU Tech 3342: 3 s short-term loudness, here every 100 ms
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0  # BS.1770-4 integrated loudness
LRA_RELATIVE_GATE_LU = -20.0  # EBU Tech 3342 loudness range
TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_CONTEXT = 64  # samples of the previous block kept so the oversampling filter has no edge
TRUE_PEAK_CHUNK = 4096  # samples oversampled at a time, where they could hold a new peak
TRUE_PEAK_TAPS = 12  # per phase, as BS.1770-4 Annex 2's 48-tap, 4-phase interpolator


def interpolation_phases(up: int = TRUE_PEAK_OVERSAMPLING, taps: int = TRUE_PEAK_TAPS, beta: float = 5.0) -> np.ndarray:
    """Taps (up - 1, taps) that interpolate a signal at the fractions 1/up .. (up-1)/up between samples.

    Row p, applied to samples n - taps/2 + 1 .. n + taps/2, gives the value at n + (p + 1)/up: a
    Kaiser-windowed sinc, each row normalised to unit DC gain. The phase at 0 is the sample itself.
    """
    offsets = np.arange(taps) - taps // 2 + 1  # sample positions relative to n
    rows = []
    for p in range(1, up):
        t = offsets - p / up  # distance of each sample from the interpolated point
        window = np.i0(beta * np.sqrt(np.clip(1 - (t / (taps / 2 + 0.5)) ** 2, 0, None))) / np.i0(beta)
        row = np.sinc(t) * window
        rows.append(row / row.sum())
    return np.array(rows)


PHASES = interpolation_phases()
# The most an interpolated value can exceed the largest sample it is made of.
INTERPOLATION_GAIN = float(np.abs(PHASES).sum(axis=1).max())


@dataclass(frozen=True)
class Loudness:
    """A recording's loudness; None where it is too short or too quiet to measure."""

    integrated_lufs: float | None
    range_lu: float | None
    true_peak_dbtp: float | None


def k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """BS.1770's two K-weighting stages as `(b, a)` pairs at `rate`: a high shelf (+4 dB, modelling
    the head) and the RLB high-pass (unity-gain numerator 1, -2, 1, as the standard writes it).

    Both are the standard's analog prototypes (shelf gain 4.0 dB at 1682 Hz, Q 0.7072, its low
    plateau at Vh^0.4997; high-pass at 38.1 Hz, Q 0.5003) through the bilinear transform with
    K = tan(pi f0 / rate): at 48 kHz they give the standard's published coefficients, and the
    same response at any other rate.
    """
    shelf_gain = 10 ** (3.999843853973347 / 20)
    low_plateau = shelf_gain ** 0.4996667741545416
    k, q = math.tan(math.pi * 1681.974450955533 / rate), 0.7071752369554196
    a0 = 1 + k / q + k * k
    shelf = (np.array([shelf_gain + low_plateau * k / q + k * k, 2 * (k * k - shelf_gain),
                       shelf_gain - low_plateau * k / q + k * k]) / a0,
             np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    k, q = math.tan(math.pi * 38.13547087602444 / rate), 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return [shelf, high_pass]


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights: 1 for left, right and centre, 1.41 for the surround channels."""
    return np.array([1.0 if c < 3 else 1.41 for c in range(channels)])


def _gated_mean(energies: np.ndarray, relative_gate_lu: float) -> float | None:
    """Loudness of the mean energy of the blocks passing the absolute gate, then the relative one."""
    above = energies[_lufs(energies) > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return None
    threshold = _lufs(np.array([above.mean()]))[0] + relative_gate_lu
    kept = above[_lufs(above) > threshold]
    return float(_lufs(np.array([kept.mean()]))[0]) if kept.size else None


def _lufs(energy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(energy)


class LoudnessMeter:
    """Feed blocks of `(frames, channels)` float samples in order; `result()` gives the loudness.

    Parameters
    ----------
    rate : int
        Sample rate of the blocks (Hz).
    channels : int
        Channels of the blocks.
    """

    def __init__(self, rate: int, channels: int):
        self.rate, self.channels = rate, channels
        self.step = int(round(STEP_S * rate))
        self.filters = k_weighting(rate)
        self.states = [np.outer(lfilter_zi(b, a), np.zeros(channels)) for b, a in self.filters]
        self.weights = channel_weights(channels)
        self.steps: list[float] = []  # weighted K-filtered energy (sum of squares) per 100 ms step
        self.partial = 0.0  # weighted energy of the step under way
        self.partial_frames = 0
        self.peak = 0.0
        self.context = np.zeros((0, channels))

    def add(self, block: np.ndarray) -> None:
        """Take the next `(frames, channels)` (or `(frames,)` for mono) samples."""
        block = np.asarray(block, dtype=np.float64).reshape(len(block), -1)
        if block.shape[1] != self.channels:
            raise ValueError(f"block has {block.shape[1]} channels, the meter {self.channels}")
        self._true_peak(block)
        filtered = block
        for i, (b, a) in enumerate(self.filters):
            filtered, self.states[i] = lfilter(b, a, filtered, axis=0, zi=self.states[i])
        energy = (filtered ** 2) @ self.weights  # channel-weighted, per frame
        # The frames that complete the pending step, then whole steps at once, then a new pending part.
        take = min(self.step - self.partial_frames, len(energy))
        self.partial += float(energy[:take].sum())
        self.partial_frames += take
        if self.partial_frames < self.step:
            return
        self.steps.append(self.partial)
        rest = energy[take:]
        whole = len(rest) // self.step * self.step
        if whole:
            self.steps.extend(rest[:whole].reshape(-1, self.step).sum(axis=1).tolist())
        self.partial, self.partial_frames = float(rest[whole:].sum()), len(rest) - whole

    def _true_peak(self, block: np.ndarray) -> None:
        # Interpolated with the previous block's tail as context, so values between the blocks'
        # samples count too. Interpolation is most of the meter's cost; a stretch whose samples,
        # times the filter's largest gain, stay under the peak found so far cannot hold a higher
        # one, so only the stretches near the peak are interpolated (the result is the same).
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))
        joined = np.concatenate([self.context, block])
        magnitude = np.abs(joined).max(axis=1) if joined.size else np.zeros(0)
        reach = TRUE_PEAK_TAPS
        for first in range(len(self.context), len(joined), TRUE_PEAK_CHUNK):
            last = min(len(joined), first + TRUE_PEAK_CHUNK)
            lo, hi = max(0, first - reach), min(len(joined), last + reach)
            if hi - lo < TRUE_PEAK_TAPS or magnitude[lo:hi].max() * INTERPOLATION_GAIN <= self.peak:
                continue
            for channel in range(joined.shape[1]):
                for row in PHASES:
                    values = np.correlate(joined[lo:hi, channel], row, mode="valid")
                    self.peak = max(self.peak, float(values.max()), float(-values.min()))
        self.context = joined[-TRUE_PEAK_CONTEXT:]

    def result(self) -> Loudness:
        """Integrated loudness, loudness range and true peak of everything added so far."""
        steps = np.array(self.steps)
        step_frames = self.step

        def windows(n: int) -> np.ndarray:
            if len(steps) < n:
                return np.zeros(0)
            sums = np.convolve(steps, np.ones(n), mode="valid")
            return sums / (n * step_frames)

        integrated = _gated_mean(windows(MOMENTARY_STEPS), RELATIVE_GATE_LU)
        short_term = windows(SHORT_TERM_STEPS)
        lra = None
        above = short_term[_lufs(short_term) > ABSOLUTE_GATE_LUFS] if short_term.size else short_term
        if above.size:
            threshold = _lufs(np.array([above.mean()]))[0] + LRA_RELATIVE_GATE_LU
            kept = _lufs(above[_lufs(above) > threshold])
            if kept.size:
                lra = float(np.percentile(kept, 95) - np.percentile(kept, 10))
        peak = 20 * math.log10(self.peak) if self.peak > 0 else None
        return Loudness(integrated, lra, peak)


def measure_loudness(samples: np.ndarray, rate: int, block_frames: int = 0) -> Loudness:
    """Loudness of a whole `(frames, channels)` or `(frames,)` signal (fed in blocks of
    `block_frames`, or at once)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    meter = LoudnessMeter(rate, samples.shape[1])
    step = block_frames or len(samples) or 1
    for start in range(0, len(samples), step):
        meter.add(samples[start:start + step])
    return meter.result()


def normalization_gain_db(loudness: Loudness, target_lufs: float, max_true_peak_dbtp: float = -1.0) -> float:
    """Gain (dB) that brings a song to `target_lufs`, lowered where it would lift the true peak
    above `max_true_peak_dbtp` (normalising never clips); 0 for a song with no measured loudness."""
    if loudness.integrated_lufs is None:
        return 0.0
    gain = target_lufs - loudness.integrated_lufs
    if loudness.true_peak_dbtp is not None:
        gain = min(gain, max_true_peak_dbtp - loudness.true_peak_dbtp)
    return gain
