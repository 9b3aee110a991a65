"""Shared fixtures. The real data in ../shared/data is required: tests fail, never skip, without it."""
from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("LYRICBEAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAMPLE = ROOT / "sample"
FIXTURES = ROOT / "tests" / "fixtures"
DALI_ID = "4b196e6c99574dd49ad00d56e132712b"


@pytest.fixture(scope="session")
def shared() -> pathlib.Path:
    assert SHARED.is_dir(), f"the shared real data is missing at {SHARED} (set LYRICBEAM_SHARED_DATA)"
    return SHARED


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> pathlib.Path:
    """One full `lyricbeam run` of configs/sample.yaml, shared by the end-to-end tests."""
    from lyricbeam.pipeline.cli import main

    out = tmp_path_factory.mktemp("sample_run") / "out"
    code = main(["run", "--config", str(ROOT / "configs" / "sample.yaml"), "--output", str(out)])
    assert code == 0
    return out
