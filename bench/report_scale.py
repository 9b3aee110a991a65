"""How long `lyricbeam report` takes, and how much memory it holds, on a large output.

    python bench/report_scale.py --from OUT --songs 10000 --work /tmp/report_scale [--max-songs 200]

Makes an output of `--songs` songs from the song rows of a real output `OUT` (each row repeated
under new ids, every column kept, so the shards weigh what real ones do), then times `lyricbeam
report` on it in a child process and reads that child's own peak resident memory (`wait4`). The
output is made in another child, so the parent forks the report from a small process: a forked
child's peak counts what it inherited before `exec`.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

from lyricbeam.transforms.storage.row_files import write_table

from measure import cpu_model  # noqa: E402  (bench/ is the script's own folder)

SONGS_PER_SHARD = 500


def make_output(source: str, work: str, songs: int) -> int:
    """Write `songs` song rows as shards under `work/data/songs/`; returns the bytes written."""
    rows = pq.read_table(os.path.join(source, "data", "songs"))
    rows = rows.cast(pq.read_schema(sorted(
        os.path.join(source, "data", "songs", f) for f in os.listdir(os.path.join(source, "data", "songs")))[0]))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "data", "songs"))
    for name in ("stats.json", "README.md"):
        shutil.copy(os.path.join(source, name), os.path.join(work, name))
    shutil.copytree(os.path.join(source, "rejects"), os.path.join(work, "rejects"))
    shards = (songs + SONGS_PER_SHARD - 1) // SONGS_PER_SHARD
    written = 0
    for shard in range(shards):
        count = min(SONGS_PER_SHARD, songs - shard * SONGS_PER_SHARD)
        take = pa.array([i % rows.num_rows for i in range(count)])
        table = rows.take(take)
        ids = [f"{table['song_id'][i].as_py()}-{shard * SONGS_PER_SHARD + i:06d}" for i in range(count)]
        table = table.set_column(table.schema.get_field_index("song_id"), table.schema.field("song_id"),
                                 pa.array(ids))
        written += write_table(table, os.path.join(work, "data", "songs", f"train-{shard:05d}-of-{shards:05d}.parquet"))
    return written


def browser_seconds(index_html: str) -> dict:
    """Seconds headless Chromium takes to load the overview and to sort its song index once."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page()
        started = time.perf_counter()
        page.goto("file://" + os.path.abspath(index_html))
        page.wait_for_load_state("load")
        loaded = time.perf_counter() - started
        sort_ms = page.evaluate("""() => { const t0 = performance.now();
            window.sortTable(document.getElementById('songs'), 5, 1); return performance.now() - t0; }""")
        browser.close()
    return {"overview_load_seconds": round(loaded, 2), "index_sort_seconds": round(sort_ms / 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="a real output folder (e.g. the sample's)")
    parser.add_argument("--songs", type=int, default=10000)
    parser.add_argument("--max-songs", type=int, default=200)
    parser.add_argument("--work", default="/tmp/report_scale")
    parser.add_argument("--keep", action="store_true", help="reuse an output made by an earlier run")
    args = parser.parse_args()
    if not args.keep or not os.path.isdir(os.path.join(args.work, "data")):
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            written = pool.apply(make_output, (args.source, args.work, args.songs))
        print(f"made {args.songs} songs, {written / 1e9:.2f} GB of shards in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    data_bytes = sum(e.stat().st_size for e in os.scandir(os.path.join(args.work, "data", "songs")))
    command = [sys.executable, "-m", "lyricbeam.pipeline.cli", "report", args.work, "--max-songs", str(args.max_songs)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"lyricbeam report failed ({os.waitstatus_to_exitcode(status)})")
    peak_mib = usage.ru_maxrss / 1024
    report_dir = os.path.join(args.work, "report")
    report_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(report_dir) for f in fs)
    result = {"songs": args.songs, "pages": min(args.max_songs, args.songs) if args.max_songs >= 0 else args.songs,
              "shard_gb": round(data_bytes / 1e9, 2), "report_seconds": round(wall, 1),
              "peak_rss_mib": round(peak_mib), "report_mb": round(report_bytes / 1e6, 1),
              "index_html_mb": round(os.path.getsize(os.path.join(report_dir, "index.html")) / 1e6, 2),
              "cpu": cpu_model(), "command": " ".join(["lyricbeam"] + command[3:])}
    if shutil.which("chromium"):
        result.update(browser_seconds(os.path.join(report_dir, "index.html")))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
