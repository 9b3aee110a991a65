"""Run a command in its own process tree and measure it: wall time, CPU time, peak RSS."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time

# A fresh wrapper per command, so its RUSAGE_CHILDREN (the largest process of the command's
# tree, and their CPU time) belongs to this command alone.
_WRAPPER = ("import json, resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(json.dumps({'maxrss_kib': u.ru_maxrss, 'cpu_s': u.ru_utime + u.ru_stime}))")


def lyricbeam_command(*args: str) -> list[str]:
    """`lyricbeam ARGS` as a command for the current interpreter (no console script needed)."""
    return [sys.executable, "-c", "import sys; from lyricbeam.pipeline.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def run_measured(command: list[str], cwd: str) -> dict:
    """Run `command`; return wall_s, cpu_s and peak_rss_mib (largest process of its tree)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *command], check=True, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    usage = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": usage["cpu_s"], "peak_rss_mib": usage["maxrss_kib"] / 1024}


def cpu_model() -> str:
    """The CPU's model name (every figure says which CPU it came from)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(l.split(":", 1)[1].strip() for l in handle if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
