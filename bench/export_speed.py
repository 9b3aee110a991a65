"""Export speed: `lyricbeam export` in every format over one output folder, rows/s and MB/s.

    python bench/export_speed.py --from /tmp/lyricbeam-bench/out --work /tmp/export_speed \
        --json bench/results/export_speed.json

Each format is exported into an empty folder (one process, one thread of work), then run again
over its own finished export (the resume path: nothing to write but the per-split files). MB/s
counts the audio bytes read from the shards; the shards are read once before, so every format
reads them from the page cache.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from measure import cpu_model  # noqa: E402

from lyricbeam.pipeline.export.run import FORMATS, export  # noqa: E402
from lyricbeam.pipeline.export.source import read_songs  # noqa: E402


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a lyricbeam run's output folder")
    parser.add_argument("--work", default="/tmp/export_speed")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    # The shards read once first: every format then reads from the page cache alike.
    for _ in read_songs(args.source):
        pass
    runs = []
    cases = [(fmt, "songs") for fmt in FORMATS] + [("webdataset", "segments")]
    for fmt, config in cases:
        dest = os.path.join(args.work, f"{fmt}-{config}")
        first = export(args.source, fmt, dest, config=config).as_dict()
        again = export(args.source, fmt, dest, config=config).as_dict()
        runs.append({"format": fmt, "config": config, "rows": first["rows"], "seconds": first["seconds"],
                     "rows_per_second": first["rows_per_second"], "mb_per_second": first["mb_per_second"],
                     "audio_mb_read": first["bytes_read"] / 1e6, "export_mb": folder_bytes(dest) / 1e6,
                     "rerun_seconds": again["seconds"], "rerun_files_written": again["files_written"]})
        print(f"{fmt:<11}{config:<9}{first['rows']:>6} rows {first['seconds']:>7.2f} s {first['rows_per_second']:>8.1f} rows/s "
              f"{first['mb_per_second']:>7.1f} MB/s   re-run {again['seconds']:.2f} s, {again['files_written']} files")
    result = {"cpu": cpu_model(), "source": os.path.abspath(args.source),
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "runs": runs}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
