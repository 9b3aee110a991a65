import pytest

from lyricbeam.transforms.ingest.musicnet import LABEL_SAMPLE_RATE, describe, parse_labels, parse_metadata
from lyricbeam.transforms.rejects import RejectError


def test_variant_header_full_real_file(shared):
    text = (shared / "musicnet/labels_variant_header/2382_Beethoven_OP130_StringQuartet.csv").read_text()
    notes, instruments = parse_labels(text)
    assert len(notes) == 1956
    assert sorted(instruments) == ["cello", "viola", "violin"]
    assert notes[0].start == pytest.approx(10206 / LABEL_SAMPLE_RATE)
    assert max(n.end for n in notes) == pytest.approx(117.70, abs=0.01)
    first_cello = next(n for n in notes if instruments[n.parent] == "cello")
    assert first_cello.text == "A#2" and first_cello.freq_lo == pytest.approx(116.54, abs=0.01)
    assert first_cello.text_original == "Dotted Eighth"


def test_official_header_real_rows(shared):
    text = (shared / "musicnet/labels_official_header/2382_first10rows_altered_instruments.csv").read_text()
    notes, instruments = parse_labels(text)
    assert len(notes) == 10
    # end_time is a sample index: 42462 samples is 0.963 s; end_beat (a duration in beats) is not a time.
    viola = next(n for n in notes if n.start == pytest.approx(10206 / 44100) and instruments[n.parent] == "viola")
    assert viola.end == pytest.approx(42462 / 44100)
    assert "acoustic grand piano" in instruments  # program 1, 1-based General MIDI


def test_metadata_crlf_quotes_non_ascii(shared):
    raw = (shared / "musicnet/musicnet_metadata.csv").read_bytes()
    assert b"\r\n" in raw
    rows = parse_metadata(raw.decode("utf-8"))
    assert len(rows) == 330
    assert rows["2382"]["composer"] == "Beethoven" and rows["2382"]["seconds"] == "117"
    assert all(len(r) == 9 for r in rows.values())
    assert any(any(ord(c) > 127 for c in "".join(r.values())) for r in rows.values())
    assert all(not v.endswith("\r") for r in rows.values() for v in r.values())


def test_description_names_work_and_instruments(shared):
    rows = parse_metadata((shared / "musicnet/musicnet_metadata.csv").read_text(encoding="utf-8"))
    text = describe(rows["2382"], ["cello", "violin", "viola"])
    assert text.startswith("Beethoven: String Quartet No 13 in B-flat major, 2. Presto")
    assert "string quartet" in text and "cello, viola and violin" in text
    assert describe(None, []) == "Instrumental recording."


@pytest.mark.parametrize("text", [
    "",
    "start_time,end_time,instrument,note,start_beat\n10206,22494,43,46,0.0\n",
    "start_time,end_time,instrument,note,start_beat,end_beat,note_value\n10206,x,43,46,0,1,Quarter\n",
    "start_time,end_time,instrument,note,start_beat,end_beat,note_value\n10206,22494,43,46,0,1\n",
    "start_time,end_time,instrument,note,start_beat,end_beat,note_value\n10206,22494,43,200,0,1,Quarter\n",
    "start_time,end_time,instrument,note,start_beat,end_beat,note_value\n",
])
def test_bad_label_files_are_rejected(text):
    with pytest.raises(RejectError) as err:
        parse_labels(text)
    assert err.value.reason == "bad_labels"
