"""The portable path (Job API, as Flink and Dataflow v2 use it), with workers that see only the wheel.

An embedded job service runs the pipeline; its SDK workers come from an EXTERNAL worker pool
started from a fresh virtualenv holding nothing but the project's built wheel and its
dependencies, in a directory outside the checkout. A module left out of the package, an
unpicklable DoFn or a worker-side import that only works from the source tree fails here.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from test_resume import shard_digests

pytestmark = pytest.mark.weights  # whole pipeline runs

INSTALL_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict:
    # Nothing from this checkout or this interpreter's environment may leak into the workers.
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("portable")
    dist, venv = base / "dist", base / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(ROOT)], check=True, timeout=300, cwd=str(base))
    wheel = glob.glob(str(dist / "lyricbeam-*.whl"))
    assert len(wheel) == 1, wheel
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    # torch pinned so pip takes the CPU build, as the README's install does.
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "torch==2.13.0", wheel[0]],
                   check=True, timeout=INSTALL_TIMEOUT_S, cwd=str(base), env=_clean_env())
    return base, python


def test_the_venv_sees_the_wheel_not_the_checkout(wheel_venv):
    base, python = wheel_venv
    where = subprocess.run([python, "-c", "import lyricbeam.transforms.audio.clean, lyricbeam.schemas.arrow; "
                            "print(lyricbeam.transforms.audio.clean.__file__)"],
                           check=True, capture_output=True, text=True, cwd=str(base), env=_clean_env()).stdout
    assert "site-packages" in where and str(ROOT) not in where
    # Everything installs under the `lyricbeam` namespace: no generic top-level module names.
    generic = subprocess.run([python, "-c", "import importlib.util as u; "
                              "print([n for n in ('pipeline', 'transforms', 'schemas', 'training') if u.find_spec(n)])"],
                             check=True, capture_output=True, text=True, cwd=str(base), env=_clean_env()).stdout
    assert generic.strip() == "[]"


def test_portable_runner_with_an_external_worker_pool(wheel_venv, sample_run, tmp_path):
    base, python = wheel_venv
    port = _free_port()
    pool = subprocess.Popen([python, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
                            cwd=str(base), env=_clean_env(), stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "pool.log", "w"), start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            assert pool.poll() is None, (tmp_path / "pool.log").read_text()[-3000:]
            with socket.socket() as sock:
                if sock.connect_ex(("localhost", port)) == 0:
                    break
            time.sleep(0.2)
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "lyricbeam.pipeline.cli", "run", "--config", str(ROOT / "configs/sample.yaml"),
             "--output", str(out), "--runner", "PortableRunner", "--job_endpoint", "embed",
             "--environment_type", "EXTERNAL", "--environment_config", f"localhost:{port}"],
            cwd=str(ROOT), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert done.returncode == 0, done.stderr[-4000:] + (tmp_path / "pool.log").read_text()[-4000:]
    finally:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait()
    # The same rows as the local runner wrote, byte for byte.
    assert shard_digests(out) == shard_digests(sample_run)
    stats, local = (json.loads((d / "stats.json").read_text()) for d in (out, sample_run))
    assert stats["accounted"] and stats["songs_out"] == local["songs_out"] and stats["songs_in"] == local["songs_in"]
