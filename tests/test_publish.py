"""`lyricbeam publish`: the offline checks on real outputs, and what an upload sends.

The Hub itself is not reachable offline: `upload` (repository creation and commits through
`huggingface_hub`) is not run here against a server.
"""
import hashlib
import json
import shutil
import types

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lyricbeam.pipeline.publish import already_there, git_blob_id, publish_files, validate

pytestmark = pytest.mark.weights  # checks the output of a whole pipeline run


@pytest.fixture()
def output(sample_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(sample_run, copy)
    (copy / ".work" / "rows").mkdir(parents=True, exist_ok=True)
    (copy / ".work" / "rows" / "left.parquet").write_bytes(b"work file")
    return copy


def test_the_sample_output_is_ready_and_publishes_nothing_of_this_machine(output):
    from lyricbeam.pipeline.cli import main

    assert validate(str(output)) == []
    assert main(["publish", str(output), "--repo-id", "me/sample", "--dry-run"]) == 0
    files = {f.path_in_repo: f for f in publish_files(str(output), include=("rejects",))}
    assert "README.md" in files and "stats.json" in files and any(p.startswith("rejects/") for p in files)
    assert not any(p.startswith(".work") for p in files)
    assert not any(p.startswith("rejects/") for p in (f.path_in_repo for f in publish_files(str(output))))
    stats = json.loads(files["stats.json"].content())
    assert main(["publish", str(output), "--repo-id", "me/sample", "--dry-run", "--include-report"]) == 1  # none yet
    assert main(["report", str(output)]) == 0
    assert validate(str(output), include=("report",)) == []
    assert main(["publish", str(output), "--repo-id", "me/sample", "--dry-run", "--include-report"]) == 0
    reported = {f.path_in_repo for f in publish_files(str(output), include=("report",))}
    assert "report/index.html" in reported and any(p.startswith("report/songs/") for p in reported)
    assert not any(p.startswith("report/") for p in (f.path_in_repo for f in publish_files(str(output))))
    assert str(output) not in json.dumps(stats) and not stats["config"]["inputs"]["dali_dir"].startswith("/")


def test_a_missing_shard_is_named(output):
    shard = sorted((output / "data" / "segments").glob("train-*.parquet"))[1]
    shard.unlink()
    problems = validate(str(output))
    assert any(p == f"data/segments/{shard.name}: missing" for p in problems), problems


def test_a_card_without_licence_is_refused(output):
    card = (output / "README.md").read_text()
    (output / "README.md").write_text("\n".join(l for l in card.splitlines() if not l.startswith("license")) + "\n")
    from lyricbeam.pipeline.cli import main

    assert "README.md: no license" in validate(str(output))
    assert main(["publish", str(output), "--repo-id", "me/sample", "--dry-run"]) == 1


def test_a_leaked_absolute_path_is_named(output):
    shard = sorted((output / "data" / "songs").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    leaked = pa.array(["/home/someone/dali/annotations/x.gz"] * table.num_rows)
    table = table.set_column(table.schema.get_field_index("source_path"), table.schema.field("source_path"), leaked)
    pq.write_table(table, shard)
    problems = validate(str(output))
    assert any(p.startswith(f"data/songs/{shard.name}: column source_path holds paths of this machine")
               for p in problems), problems


def test_an_input_path_in_the_dedup_groups_is_named(output):
    groups = next((output / "dedup").glob("*.jsonl"))
    lines = [json.loads(line) for line in groups.read_text().splitlines()]
    assert lines and all(not m["source_path"].startswith("/") for g in lines for m in g["members"])
    lines[0]["members"][0]["source_path"] = "/srv/music/dali/annotations/x.gz"
    groups.write_text("".join(json.dumps(g) + "\n" for g in lines))
    problems = validate(str(output))
    assert f"dedup/{groups.name}: names '/srv/music/dali/annotations/x.gz', a path of this machine" in problems, problems


def test_files_the_repository_already_holds_are_not_sent_again(output):
    files = publish_files(str(output))
    card = next(f for f in files if f.path_in_repo == "README.md")
    shard = next(f for f in files if f.path_in_repo.endswith(".parquet"))
    data = shard.content()
    lfs = types.SimpleNamespace(lfs=types.SimpleNamespace(sha256=hashlib.sha256(data).hexdigest()), blob_id="x")
    assert already_there(shard, lfs)
    assert not already_there(shard, types.SimpleNamespace(lfs=types.SimpleNamespace(sha256="0" * 64), blob_id="x"))
    assert already_there(card, types.SimpleNamespace(lfs=None, blob_id=git_blob_id(card.content())))
    assert not already_there(card, None)
    # git's own object id of a known blob
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def _upload_in_subprocess(output, endpoint, commit_files):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1", HF_TOKEN="hf_test", HF_HUB_OFFLINE="0",
               HF_HUB_DISABLE_TELEMETRY="1")
    code = ("import sys; from lyricbeam.pipeline.publish import upload; "
            f"print(upload({str(output)!r}, 'me/sample', commit_files={commit_files}))")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_an_upload_killed_midway_finishes_by_running_it_again(output):
    # The real client against a local endpoint serving the Hub's routes (Git LFS; no Xet server
    # here): killed while its second commit is in flight, then run again.
    import signal

    from fake_hub import FakeHub

    expected = {f.path_in_repo: f.content() for f in publish_files(str(output))}
    with FakeHub() as hub:
        hub.stall_commit = 2
        first = _upload_in_subprocess(output, hub.endpoint, commit_files=4)
        assert hub.stalled.wait(120), first.communicate(timeout=5)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        after_kill = dict(hub.files)
        assert 0 < len(after_kill) < len(expected)  # one commit landed, the rest did not
        uploads_before = len(hub.lfs)
        second = _upload_in_subprocess(output, hub.endpoint, commit_files=4)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-3000:]
        sent, kept = eval(out.strip().splitlines()[-1])
        assert kept == len(after_kill) and sent == len(expected) - len(after_kill)
        assert hub.files == expected  # the same file set, byte for byte
        # large files already stored were not sent again
        assert len(hub.lfs) - uploads_before <= sent
        assert hub.unknown == []
