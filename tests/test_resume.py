"""kill -9 mid-run, run again: only unfinished songs are computed, and the dataset is identical."""
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from conftest import ROOT

pytestmark = pytest.mark.weights  # whole pipeline runs


def shard_digests(out) -> dict:
    return {os.path.relpath(p, out): hashlib.sha256(open(p, "rb").read()).hexdigest()
            for p in sorted(glob.glob(f"{out}/data/*/*.parquet"))}


def test_resume_after_kill_minus_9(sample_run, tmp_path):
    from lyricbeam.pipeline.cli import main

    out = tmp_path / "out"
    command = [sys.executable, "-m", "lyricbeam.pipeline.cli", "run", "--config", str(ROOT / "configs/sample.yaml"),
               "--output", str(out), "--direct_running_mode", "in_memory"]
    proc = subprocess.Popen(command, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not glob.glob(f"{out}/.work/rows/*/*.refs.json"):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for path in glob.glob(f"{out}/data/*/*.parquet"):  # no partial shard is visible
        pq.read_metadata(path)

    assert main(["run", "--config", str(ROOT / "configs/sample.yaml"), "--output", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    hits = stats["stages"]["cache"].get("hits", 0)
    computed = stats["stages"]["features"].get("in", 0)
    assert 1 <= hits < 4 and hits + computed == 4  # finished songs were not recomputed
    # Songs decoded before the kill are not decoded again; the work audio is gone after success.
    assert stats["stages"]["clean"].get("decode_reused", 0) >= hits
    assert not (out / ".work" / "audio").exists()
    assert shard_digests(out) == shard_digests(sample_run)
    assert sorted(json.loads(l)["song_id"] for l in open(glob.glob(f"{out}/rejects/*.jsonl")[0])) == \
        sorted(json.loads(l)["song_id"] for l in open(glob.glob(f"{sample_run}/rejects/*.jsonl")[0]))
