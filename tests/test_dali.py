import gzip
import io
import json
import os
import pickle

import pytest

from lyricbeam.schemas.records import AnnotationEvent
from lyricbeam.transforms.ingest.dali import (annot_param, gunzip_bounded, load_dali_file, load_dali_json,
                             load_dali_pickle, parse_annotations)
from lyricbeam.transforms.rejects import RejectError

from conftest import DALI_ID, SAMPLE


def real_pickle(shared):
    return (shared / "dali/mirdata_fixture/annotations" / f"{DALI_ID}.gz").read_bytes()


def test_real_dali_pickle_is_read_without_executing(shared):
    info, annotations = load_dali_pickle(real_pickle(shared))
    assert info["artist"] == "System Of A Down" and info["title"] == "B.Y.O.B."
    assert info["metadata"]["language"] == "english"
    assert info["metadata"]["genres"] == ["Pop", "Rock", "Hard Rock", "Metal"]
    assert info["scores"]["NCC"] == pytest.approx(0.9644769596900552)
    levels = parse_annotations(annotations)
    assert [len(levels[k]) for k in ("notes", "words", "lines", "paragraphs")] == [3, 3, 2, 2]
    assert [w.text for w in levels["words"]] == ["why", "do", "they"]
    assert [w.parent for w in levels["words"]] == [0, 0, 1]
    assert levels["notes"][0].start == pytest.approx(24.12471002069169)
    assert levels["notes"][0].freq_lo == pytest.approx(1108.7305239074883)
    fr, offset = annot_param(annotations)
    assert offset == pytest.approx(24.12471002069169) and fr > 0


def test_json_export_matches_pickle(shared, tmp_path):
    info, annotations = load_dali_pickle(real_pickle(shared))
    raw = json.dumps({"info": info, "annotations": annotations}).encode()
    info2, annotations2 = load_dali_file(raw)
    assert info2 == info
    assert parse_annotations(annotations2) == parse_annotations(annotations)


def test_sample_vocadito_pickle_and_json_agree():
    _, from_pickle = load_dali_file((SAMPLE / "dali/annotations/vocadito_1.gz").read_bytes())
    _, from_json = load_dali_file((SAMPLE / "dali/annotations/vocadito_1_reupload.json").read_bytes())
    a, b = parse_annotations(from_pickle), parse_annotations(from_json)
    assert a == b and len(a["notes"]) == 59 and len(a["lines"]) == 10


def test_vertical_annotations_are_unrolled():
    note = lambda t, s: {"text": t, "time": [s, s + 0.2], "freq": [220.0, 220.0]}
    word = lambda t, s: {"text": [note(t, s)], "time": [s, s + 0.2], "freq": [220.0, 220.0]}
    line = {"text": [word("hello", 1.0), word("there", 1.3)], "time": [1.0, 1.5], "freq": [220.0, 220.0]}
    vertical = {"type": "vertical", "annot": [{"text": [line], "time": [1.0, 1.5], "freq": [220.0, 220.0]}]}
    levels = parse_annotations(vertical)
    assert [w.text for w in levels["words"]] == ["hello", "there"]
    assert levels["lines"][0].text == "hello there"
    assert [n.parent for n in levels["notes"]] == [0, 1]
    assert [w.parent for w in levels["words"]] == [0, 0]


class _System:
    def __reduce__(self):
        return (os.system, ("touch /tmp/lyricbeam_test_pwned",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("payload", [_System(), _Eval(), {"annotations": _System()}])
def test_malicious_pickles_are_refused_and_nothing_runs(payload, tmp_path):
    marker = "/tmp/lyricbeam_test_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    raw = gzip.compress(pickle.dumps(payload, protocol=2))
    with pytest.raises(RejectError) as err:
        load_dali_file(raw)
    assert err.value.reason == "unsafe_pickle"
    assert "refused global" in err.value.detail
    assert not os.path.exists(marker)


def test_sample_evil_pickle_is_refused():
    with pytest.raises(RejectError, match="refused global posix.system"):
        load_dali_file((SAMPLE / "dali/annotations/bad_evil_pickle.gz").read_bytes())


def test_truncated_gzip_and_gzip_bomb(shared):
    raw = real_pickle(shared)
    with pytest.raises(RejectError) as err:
        load_dali_file(raw[: len(raw) // 2])
    assert err.value.reason == "corrupt_gzip"
    bomb = gzip.compress(b"\0" * (3 * 1024 * 1024))
    with pytest.raises(RejectError) as err:
        gunzip_bounded(bomb, limit=1024 * 1024)
    assert err.value.reason == "annotation_too_large"


@pytest.mark.parametrize("annotations,reason", [
    ({"type": "horizontal", "annot": {"words": [{"text": "a", "time": "soon"}]}}, "bad_annotation"),
    ({"type": "horizontal", "annot": {"words": [{"text": 3, "time": [0, 1]}]}}, "bad_annotation"),
    ({"type": "horizontal", "annot": {"words": [{"text": "a", "time": [float("nan"), 1]}]}}, "bad_times"),
    ({"type": "diagonal", "annot": {}}, "bad_annotation"),
    ({"type": "horizontal", "annot": {"words": [], "notes": []}}, "no_lyrics"),
])
def test_wrongly_typed_annotations_are_rejected(annotations, reason):
    with pytest.raises(RejectError) as err:
        parse_annotations(annotations)
    assert err.value.reason == reason


def test_json_garbage_is_rejected():
    with pytest.raises(RejectError) as err:
        load_dali_json(b"{not json")
    assert err.value.reason == "corrupt_json"
    with pytest.raises(RejectError) as err:
        load_dali_file(b"\x00\x01binary")
    assert err.value.reason == "bad_annotation"
