"""The reject path shared by every stage: a typed error, a tagged output, counters.

Pure functions raise `RejectError(reason, detail)`; `RejectingDoFn` turns that (and any
other exception, so one bad song never kills a job) into a `Reject` on the `rejects`
output and counts it per stage and reason in Beam metrics.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any, Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from lyricbeam.schemas.records import Reject, Song

REJECTS = "rejects"
LOG = logging.getLogger("lyricbeam")


class RejectError(Exception):
    """An input that cannot become a row. `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "", value: float | None = None, threshold: float | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        # A filter's measured value and the threshold it failed, where there is one.
        self.value = value
        self.threshold = threshold


def reject_counter_name(reason: str) -> str:
    return f"rejected:{reason.split('=')[0]}"


class RejectingDoFn(beam.DoFn):
    """Base for per-song stages: `transform(song)` returns the new song or raises.

    Counts `in`, `out` and `rejected:<reason>` under the stage's metric namespace and logs
    progress every `progress_every` songs so a long local run shows it is alive.
    """

    stage = "stage"
    progress_every = 25
    many = False  # True: `transform` returns a list of outputs

    def __init__(self) -> None:
        self._seen = 0
        self._last_log = 0.0

    def start_bundle(self) -> None:
        self._counters: dict[str, Any] = {}

    def _count(self, name: str) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(self.stage, name)
        counter.inc()

    def transform(self, song: Song) -> Song:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, song: Song) -> Iterable[Any]:
        self._count("in")
        self._seen += 1
        now = time.monotonic()
        if self._seen % self.progress_every == 0 or now - self._last_log > 30:
            self._last_log = now
            LOG.info("[%s] %d songs processed by this worker", self.stage, self._seen)
        started = time.perf_counter()
        try:
            result = self.transform(song)
        except RejectError as err:
            self._count(reject_counter_name(err.reason))
            yield beam.pvalue.TaggedOutput(
                REJECTS, Reject(song.song_id, song.source_path, self.stage, err.reason, err.detail, err.value, err.threshold)
            )
            return
        except Exception as err:  # noqa: BLE001 - one bad song must not kill the job
            self._count("rejected:exception")
            tb = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-3))
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                Reject(song.song_id, song.source_path, self.stage, f"exception:{type(err).__name__}",
                       f"{err}\n{tb[-1500:]}"),
            )
            return
        self._count("out")
        self._add("busy_ms", int((time.perf_counter() - started) * 1000))
        outputs = result if self.many else [result]
        self._add("audio_ms", int(1000 * (song.duration or getattr(result, "duration", 0.0) or 0.0)))
        yield from outputs

    def _add(self, name: str, amount: int) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(self.stage, name)
        counter.inc(amount)


def reject_to_json_line(reject: Reject, input_roots: tuple[str, ...] = ()) -> str:
    """One line of `rejects/`; its source path relative to the input roots (`rows.portable_path`)."""
    from lyricbeam.transforms.storage.rows import portable_path

    record = reject.to_json_dict()
    record["source_path"] = portable_path(record.get("source_path", ""), input_roots)
    return json.dumps(record, ensure_ascii=False, sort_keys=True)
