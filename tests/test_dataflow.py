"""Dataflow submission, offline: `--dry_run` builds, pickles and packages the job without sending it.

A dummy project, region and gs:// locations are enough, as nothing is uploaded in a dry run;
what is exercised is everything before the upload: option parsing, the transforms' pickling
into the job proto and the project's packaging through `--setup_file` (an sdist built by
`python -m build`, installed on every Dataflow worker).
"""
import pathlib
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT

pytestmark = pytest.mark.weights  # whole pipeline runs

PACKAGES = ("pipeline", "transforms", "schemas", "training")


def test_dataflow_dry_run_builds_and_stages_the_job(tmp_path):
    done = subprocess.run(
        # The shipped Dataflow config as a user runs it from the checkout; its placeholder
        # project and bucket are never contacted in a dry run.
        [sys.executable, "-m", "lyricbeam.pipeline.cli", "run", "--config", "configs/dataflow.yaml",
         "--dali-dir", "sample/dali", "--dali-metadata", "sample/dali/dali_metadata.json",
         "--musicnet-dir", "sample/musicnet", "--output", "gs://lyricbeam-dry-run/out", "--dry_run", "True"],
        cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    line = [l for l in done.stdout.splitlines() if l.startswith("dry run:")]
    assert line and "DataflowRunner job built for 22 songs" in line[0], done.stdout[-2000:]
    assert "workflow.tar.gz" in line[0]  # the project's sdist, as --setup_file stages it


def test_the_staged_sdist_holds_every_module(tmp_path):
    # Built the way Beam's stager builds it for --setup_file pyproject.toml.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (sdist,) = tmp_path.glob("lyricbeam-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {pathlib.PurePosixPath(*pathlib.PurePosixPath(n).parts[1:]).as_posix() for n in archive.getnames()}
    expected = {p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert expected and expected <= members, sorted(expected - members)
    assert "pyproject.toml" in members
