"""`lyricbeam report`: the pages built from real shards, checked in a real browser (headless
Chromium driven by Playwright), and the pure parts (names, order, images) on their own."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lyricbeam.pipeline.report import ReportError, build_report
from lyricbeam.pipeline.report.build import prepare_dest
from lyricbeam.pipeline.report.index import SongSummary, page_name, songs_with_pages
from lyricbeam.pipeline.report.song_page import IMAGE_COLUMNS_PER_SECOND, lyric_words, mel_image, pitch_position


def _summary(song_id: str, confidence=None, suspect=False) -> SongSummary:
    return SongSummary(song_id=song_id, source="dali", split="train", title="", artist="", language="", duration=1.0,
                       tempo_bpm=None, vocal_activity=None, version_group="", mean_confidence=confidence,
                       aligned_fraction=None, lyrics_match_wer=None, placement_score=None, suspect=suspect,
                       line_placement=None, shard="", row_group=0)


def test_page_names_are_safe_and_distinct_for_any_id():
    ids = ["Song", "song", "a/b", "a_b", "../../etc/passwd", "日本語の歌", "Ελληνικά", "", "x" * 300]
    names = [page_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert "/" not in name and not name.startswith(".") and len(name) <= 70
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name), name


def test_pages_go_to_the_songs_a_reviewer_should_see_first():
    songs = [_summary("instrumental"), _summary("good", 0.6), _summary("poor", 0.1),
             _summary("slid", 0.5, suspect=True), _summary("fair", 0.3)]
    assert [s.song_id for s in songs_with_pages(songs, -1)] == ["slid", "poor", "fair", "good", "instrumental"]
    assert [s.song_id for s in songs_with_pages(songs, 2)] == ["slid", "poor"]
    assert songs_with_pages(songs, 0) == []


def test_mel_image_keeps_time_and_bands():
    from PIL import Image
    import io

    mel = np.random.default_rng(0).normal(-40, 10, size=(1000, 80)).astype(np.float32)  # 10 s at 10 ms
    image = Image.open(io.BytesIO(mel_image(mel, 0.01)))
    assert image.size == (10 * IMAGE_COLUMNS_PER_SECOND, 80)
    low_band_loud = np.full((500, 80), -90.0, dtype=np.float32)
    low_band_loud[:, 0] = 0.0
    pixels = np.asarray(Image.open(io.BytesIO(mel_image(low_band_loud, 0.01))).convert("L"), dtype=float)
    assert pixels[-1].mean() > pixels[0].mean() + 100  # the lowest band is drawn at the bottom


def test_pitch_lane_is_log_frequency():
    assert pitch_position(np.array([50.0, 1600.0, 400.0, 10.0, 5000.0])) == pytest.approx([0, 1, 0.6, 0, 1])


def test_words_come_from_the_alignment_else_from_the_source():
    source = [{"text": "a", "start": 1.0, "end": 1.5, "parent": 0}, {"text": "b", "start": 2.0, "end": 2.5, "parent": 1}]
    aligned = [{"text": "a", "start": 1.1, "end": 1.4, "confidence": 0.5, "aligned": True},
               {"text": "b", "start": 2.1, "end": 2.4, "confidence": 0.05, "aligned": False}]
    words, origin = lyric_words({"words": source, "alignment": {"words": aligned}})
    assert origin == "alignment" and [w["start"] for w in words] == [1.1, 2.1] and [w["line"] for w in words] == [0, 1]
    words, origin = lyric_words({"words": source, "alignment": None})
    assert origin == "source annotation" and [w["start"] for w in words] == [1.0, 2.0]


def test_a_folder_that_is_not_a_report_is_never_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="not a lyricbeam report"):
        prepare_dest(str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_without_shards_is_refused(tmp_path):
    with pytest.raises(ReportError, match="no shards"):
        build_report(str(tmp_path))


# --- the report of a real pipeline output, in a real browser ------------------------------------------

def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is needed for the report's browser tests: apt-get install -y chromium (.ci/run does)"
    return path


@pytest.fixture(scope="module")
def report(sample_run, tmp_path_factory):
    from lyricbeam.pipeline.cli import main

    dest = tmp_path_factory.mktemp("report") / "report"
    assert main(["report", str(sample_run), "--dest", str(dest)]) == 0
    return sample_run, dest


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, errors


@pytest.mark.weights
def test_overview_shows_counts_plots_and_a_sortable_index(report, browser):
    output, dest = report
    stats = json.loads((output / "stats.json").read_text())
    page, errors = _open(browser, (dest / "index.html").as_uri())
    for plot in ("durations", "languages", "tempo", "confidence", "wer", "vocal-activity", "near-duplicates", "rejects"):
        assert page.locator(f"figure#plot-{plot} svg").count() == 1, plot
    cards = dict(zip(page.locator(".card span").all_inner_texts(), page.locator(".card b").all_inner_texts()))
    assert cards["songs out"] == str(stats["songs_out"]) and cards["rejected"] == str(stats["rejected"])
    assert cards["songs in"] == str(stats["songs_in"])
    ids = page.locator("#songs tbody tr td:first-child").all_inner_texts()
    assert sorted(ids) == sorted(stats_ids(output))
    confidences = [float(v) for v in page.locator("#songs tbody tr td:nth-child(8)").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)") if v]
    assert confidences == sorted(confidences) and len(confidences) == 2  # the two aligned songs, lowest first
    page.click("#songs th:nth-child(6)")  # minutes, ascending
    minutes = [float(v) for v in page.locator("#songs tbody tr td:nth-child(6)").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert minutes == sorted(minutes)
    page.click("#songs th:nth-child(6)")
    minutes = [float(v) for v in page.locator("#songs tbody tr td:nth-child(6)").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert minutes == sorted(minutes, reverse=True)
    assert page.locator("#songs tbody a").count() == stats["songs_out"]  # each has a page (4 <= 200)
    assert errors == []


def stats_ids(output) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(output / "data" / "songs", columns=["song_id"]).column("song_id").to_pylist()


@pytest.mark.weights
def test_rejects_page_lists_every_reject(report, browser):
    output, dest = report
    lines = (next((output / "rejects").glob("*.jsonl"))).read_text().splitlines()
    page, errors = _open(browser, (dest / "rejects.html").as_uri())
    assert page.locator("#rejects tbody tr").count() == len(lines) > 0
    assert set(page.locator("#rejects tbody td:nth-child(2)").all_inner_texts()) == {
        json.loads(line)["reason"] for line in lines}
    assert errors == []


def _seek(page, seconds: float):
    return page.evaluate("""t => new Promise(resolve => {
        const audio = document.getElementById('player');
        audio.addEventListener('seeked', () => {
            const word = document.querySelector('#lyrics .w.current');
            const label = document.querySelector('.lane .lw.current');
            resolve([word ? word.dataset.i : null, label ? label.dataset.i : null, audio.currentTime]);
        }, {once: true});
        audio.currentTime = t;
    })""", seconds)


@pytest.mark.weights
def test_song_page_highlights_the_word_being_sung_and_seeks_on_click(report, browser):
    _, dest = report
    page_file = next(p for p in sorted((dest / "songs").glob("vocadito_1-*.html")))
    page, errors = _open(browser, page_file.as_uri())
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15000)
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(33.2, abs=0.1)
    words = page.locator("#lyrics .w[data-start]").evaluate_all(
        "ws => ws.map(w => [w.dataset.i, parseFloat(w.dataset.start), parseFloat(w.dataset.end)])")
    assert len(words) == 33
    for i, start, end in (words[0], words[len(words) // 2], words[-1]):
        assert end > start
        highlighted, label, _ = _seek(page, (start + end) / 2)
        assert highlighted == i and label == i
    gap = next(((a[2] + b[1]) / 2 for a, b in zip(words, words[1:]) if b[1] - a[2] > 0.2), None)
    if gap is not None:
        assert _seek(page, gap)[0] is None  # between words nothing is highlighted
    for i, start, _ in (words[3], words[20]):
        page.evaluate("() => { window.__seeked = new Promise(r => document.getElementById('player')"
                      ".addEventListener('seeked', r, {once: true})); }")
        page.click(f'#lyrics .w[data-i="{i}"]')
        page.evaluate("() => window.__seeked")
        assert page.evaluate("document.getElementById('player').currentTime") == pytest.approx(start, abs=0.05)
        assert page.locator("#lyrics .w.current").get_attribute("data-i") == i
    assert page.locator("svg.overlay line.lb").count() == 10  # one per lyric line
    assert page.locator("svg.pitch polyline.f0").count() > 0 and page.locator("svg.pitch rect.note").count() > 0
    assert page.evaluate("document.querySelector('img.mel').naturalWidth") > 0
    assert errors == []


@pytest.mark.weights
def test_max_songs_bounds_the_pages_and_a_rerun_replaces_the_report(sample_run, tmp_path):
    dest = tmp_path / "r"
    first = build_report(str(sample_run), str(dest), max_songs=1)
    assert first.pages == 1 and len(list((dest / "songs").glob("*.html"))) == 1
    second = build_report(str(sample_run), str(dest), max_songs=-1)
    assert second.pages == second.songs == 4 and len(list((dest / "songs").glob("*.html"))) == 4
    again = tmp_path / "r2"
    build_report(str(sample_run), str(again), max_songs=-1)
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        assert path.read_bytes() == (again / path.relative_to(dest)).read_bytes(), path  # same bytes every build
