"""DALI annotations: a safe reader for the gzipped-pickle and JSON forms.

DALI ships each song as a gzipped pickle of `DALI.Annotations.Annotations`. A pickle can
name any global and call it, so `load_dali_pickle` never lets one: the restricted
unpickler resolves only that class (to an inert stand-in) and plain containers.
"""
from __future__ import annotations

import io
import json
import math
import pickle
import zlib
from typing import Any

from lyricbeam.schemas.records import AnnotationEvent
from lyricbeam.transforms.rejects import RejectError

LEVELS = ("notes", "words", "lines", "paragraphs")
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class DaliAnnotations:
    """Inert stand-in for `DALI.Annotations.Annotations`: it only receives state."""

    def __init__(self) -> None:
        self.info: dict = {}
        self.annotations: dict = {}
        self.errors: Any = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("Annotations state is not a dict")
        self.info = state.get("info", {})
        self.annotations = state.get("annotations", {})
        self.errors = state.get("errors")


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # copyreg._reconstructor as Python 2 pickles use it, limited to our stand-in.
    if cls is not DaliAnnotations or base is not object or state is not None:
        raise pickle.UnpicklingError("refused copyreg._reconstructor call")
    return DaliAnnotations.__new__(DaliAnnotations)


_ALLOWED_GLOBALS = {
    ("DALI.Annotations", "Annotations"): DaliAnnotations,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only DALI's Annotations class; every other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id")


def gunzip_bounded(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress gzip `data`, refusing output larger than `limit` bytes (gzip bombs)."""
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error as err:
        raise RejectError("corrupt_gzip", str(err)) from None
    if len(out) > limit:
        raise RejectError("annotation_too_large", f"decompresses to more than {limit} bytes")
    if not decomp.eof:
        raise RejectError("corrupt_gzip", "truncated gzip stream")
    return out


def load_dali_pickle(raw: bytes) -> tuple[dict, dict]:
    """Return `(info, annotations)` from the bytes of a DALI `.gz` pickle, executing nothing."""
    payload = gunzip_bounded(raw) if raw[:2] == b"\x1f\x8b" else raw
    try:
        obj = RestrictedUnpickler(io.BytesIO(payload)).load()
    except pickle.UnpicklingError as err:
        raise RejectError("unsafe_pickle" if "refused" in str(err) else "corrupt_pickle", str(err)) from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            RecursionError, MemoryError, OverflowError) as err:
        raise RejectError("corrupt_pickle", f"{type(err).__name__}: {err}") from None
    if isinstance(obj, DaliAnnotations):
        return obj.info, obj.annotations
    if isinstance(obj, dict) and "annotations" in obj:
        return obj.get("info", {}), obj["annotations"]
    raise RejectError("bad_annotation", f"pickle holds {type(obj).__name__}, not DALI Annotations")


def load_dali_json(raw: bytes) -> tuple[dict, dict]:
    """Return `(info, annotations)` from DALI's `write_json` export."""
    payload = gunzip_bounded(raw) if raw[:2] == b"\x1f\x8b" else raw
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RejectError("corrupt_json", str(err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), dict):
        raise RejectError("bad_annotation", "JSON has no 'annotations' object")
    return data.get("info") or {}, data["annotations"]


def load_dali_file(raw: bytes) -> tuple[dict, dict]:
    """Sniff the content (gzip/pickle/JSON) and load it; the file name is not trusted."""
    head = raw[:2]
    body = gunzip_bounded(raw) if head == b"\x1f\x8b" else raw
    if not body:
        raise RejectError("empty_annotation", "annotation file is empty")
    if body[:1] == b"\x80" or body[:1] in (b"(", b"c", b"}"):
        return load_dali_pickle(body)
    if body.lstrip()[:1] == b"{":
        return load_dali_json(body)
    raise RejectError("bad_annotation", "neither a DALI pickle nor a DALI JSON export")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectError("bad_annotation", f"{what} is {type(value).__name__}, not a number")
    value = float(value)
    if not math.isfinite(value):
        raise RejectError("bad_times", f"{what} is not finite")
    return value


def _event(item: Any, level: str, position: int, text: str | None = None) -> AnnotationEvent:
    if not isinstance(item, dict):
        raise RejectError("bad_annotation", f"{level}[{position}] is not an object")
    time = item.get("time")
    if not isinstance(time, (list, tuple)) or len(time) != 2:
        raise RejectError("bad_annotation", f"{level}[{position}].time is not [start, end]")
    freq = item.get("freq") or [0.0, 0.0]
    if not isinstance(freq, (list, tuple)) or len(freq) != 2:
        raise RejectError("bad_annotation", f"{level}[{position}].freq is not [lo, hi]")
    raw_text = item.get("text", "") if text is None else text
    if not isinstance(raw_text, str):
        raise RejectError("bad_annotation", f"{level}[{position}].text is not a string")
    index = item.get("index", -1)
    parent = -1 if index is None or isinstance(index, bool) else index
    if not isinstance(parent, int):
        raise RejectError("bad_annotation", f"{level}[{position}].index is not an integer")
    return AnnotationEvent(
        text=raw_text,
        text_original=raw_text,
        start=_number(time[0], f"{level}[{position}].time[0]"),
        end=_number(time[1], f"{level}[{position}].time[1]"),
        freq_lo=_number(freq[0], f"{level}[{position}].freq[0]"),
        freq_hi=_number(freq[1], f"{level}[{position}].freq[1]"),
        parent=parent,
    )


def _vertical_text(item: Any, depth: int) -> str:
    # A vertical element's text is its children: syllables join into a word, words into lines.
    children = item.get("text") if isinstance(item, dict) else None
    if isinstance(children, str):
        return children
    if not isinstance(children, list) or depth == 0:
        return ""
    parts = [_vertical_text(child, depth - 1) for child in children]
    return ("" if depth == 1 else " ").join(p for p in parts if p)


def _unroll_vertical(paragraphs: Any) -> dict[str, list]:
    """Flatten DALI's vertical form (children nested in `text`) into the horizontal one."""
    out: dict[str, list] = {level: [] for level in LEVELS}

    def walk(items: Any, depth: int, parent: int) -> None:
        level = LEVELS[depth]
        if not isinstance(items, list):
            raise RejectError("bad_annotation", f"vertical {level} is not a list")
        for item in items:
            if not isinstance(item, dict):
                raise RejectError("bad_annotation", f"vertical {level} item is not an object")
            position = len(out[level])
            out[level].append({**item, "text": _vertical_text(item, depth), "index": parent})
            if depth > 0 and isinstance(item.get("text"), list):
                walk(item["text"], depth - 1, position)

    walk(paragraphs, 3, -1)
    return out


def parse_annotations(annotations: dict) -> dict[str, list[AnnotationEvent]]:
    """Turn DALI's `annotations` dict (horizontal or vertical) into events per level."""
    if not isinstance(annotations, dict):
        raise RejectError("bad_annotation", "annotations is not an object")
    kind = annotations.get("type")
    annot = annotations.get("annot")
    if kind == "vertical":
        annot = _unroll_vertical(annot)
    elif kind != "horizontal":
        raise RejectError("bad_annotation", f"unknown annotation type {kind!r}")
    if not isinstance(annot, dict):
        raise RejectError("bad_annotation", "annot is not an object")
    events: dict[str, list[AnnotationEvent]] = {}
    for level in LEVELS:
        items = annot.get(level, [])
        if not isinstance(items, list):
            raise RejectError("bad_annotation", f"{level} is not a list")
        events[level] = [_event(item, level, i) for i, item in enumerate(items)]
    if not events["words"] and not events["notes"]:
        raise RejectError("no_lyrics", "annotation has no words and no notes")
    return events


def annot_param(annotations: dict) -> tuple[float, float]:
    """DALI's global alignment parameters `(fr, offset)`; zeros where absent."""
    param = annotations.get("annot_param") or {}
    if not isinstance(param, dict):
        return 0.0, 0.0
    fr, offset = param.get("fr", 0.0), param.get("offset", 0.0)
    fr = float(fr) if isinstance(fr, (int, float)) and math.isfinite(fr) else 0.0
    offset = float(offset) if isinstance(offset, (int, float)) and math.isfinite(offset) else 0.0
    return fr, offset
