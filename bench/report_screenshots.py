"""Screenshots of a report, taken in headless Chromium: the overview and one song page with a word
highlighted mid-song.

    python bench/report_screenshots.py OUT [--song ID] [--at SECONDS] [--only overview|song] [--dest bench/results]

Builds `OUT/report` first when it is missing. Writes `report_overview.png` and `report_song.png`.
"""
from __future__ import annotations

import argparse
import os
import shutil

from lyricbeam.pipeline.report import build_report
from lyricbeam.pipeline.report.index import page_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("--song", default="", help="song id for the song page (default: the first page's)")
    parser.add_argument("--at", type=float, default=None, help="playback position shown (default: mid-song word)")
    parser.add_argument("--dest", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--only", choices=("overview", "song"), default=None, help="take one of the two")
    args = parser.parse_args()
    report = os.path.join(args.output, "report")
    if not os.path.exists(os.path.join(report, "index.html")):
        build_report(args.output)
    song_page = (os.path.join(report, "songs", page_name(args.song) + ".html") if args.song else
                 sorted(p.path for p in os.scandir(os.path.join(report, "songs")) if p.name.endswith(".html"))[0])

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        at = None
        if args.only != "song":
            page.goto("file://" + os.path.abspath(os.path.join(report, "index.html")))
            page.wait_for_load_state("load")
            page.screenshot(path=os.path.join(args.dest, "report_overview.png"), full_page=True)
        if args.only == "overview":
            browser.close()
            print(f"wrote {args.dest}/report_overview.png")
            return
        page.goto("file://" + os.path.abspath(song_page))
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        at = args.at
        if at is None:
            at = page.evaluate("""() => { const ws = window.karaoke.timed; const w = ws[Math.floor(ws.length / 2)];
                                 return w ? (parseFloat(w.dataset.start) + parseFloat(w.dataset.end)) / 2 : 0; }""")
        page.evaluate("""t => new Promise(r => { const a = document.getElementById('player');
                         a.addEventListener('seeked', r, {once: true}); a.currentTime = t; })""", at)
        page.screenshot(path=os.path.join(args.dest, "report_song.png"), full_page=False)
        browser.close()
    print(f"wrote {args.dest}/report_overview.png, {args.dest}/report_song.png ({song_page}, at {at:.2f} s)")


if __name__ == "__main__":
    main()
