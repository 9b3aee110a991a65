"""Every command in the README runs as written (sample-sized), so a documented command cannot rot.

The README's indented command blocks are read as a user would copy them. The set-up commands
must be what CI runs (`.ci/run`); every `lyricbeam` / `cat` command without a placeholder runs,
in order, in a scratch directory laid out like a checkout (its `configs/` and `sample/`, and the
shared data at `../shared`); a command with placeholders (`D`, `M`, `OUT`, a bucket) must at
least parse.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED

BLOCK_LINE = re.compile(r"^    (\S.*)$")
PLACEHOLDER = re.compile(r"(?:^|[\s=/])(?:D|M|OUT|N|P|R|B)(?:$|[\s/])|gs://")


def readme_commands() -> list[str]:
    """The README's commands: indented block lines, backslash continuations joined."""
    commands, pending = [], ""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = BLOCK_LINE.match(line)
        if not match and not pending:
            continue
        text = (pending + " " + match.group(1).strip()) if match else pending
        if match and text.endswith("\\"):
            pending = text[:-1].strip()
            continue
        pending = ""
        commands.append(text.strip())
    return [c for c in commands if c.split()[0] in ("lyricbeam", "cat", "pip", "python")]


def test_the_readme_names_its_commands():
    commands = [c.split("&&")[-1].strip() for c in readme_commands()]
    assert any(c.startswith("lyricbeam run --config configs/sample.yaml") for c in commands)
    assert any(c.startswith("lyricbeam train fusion") for c in commands)
    assert any(c.startswith("lyricbeam generate") for c in commands)


def test_the_set_up_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    setup = [c for c in readme_commands() if c.startswith("pip ") or c.startswith("python -m pytest")]
    install = next(c for c in setup if c.startswith("pip "))
    steps = [step.strip() for step in install.split("&&")]
    assert steps[-1].startswith("lyricbeam run"), "the first command installs and runs the sample"
    for step in steps[:-1]:
        assert step in ci, f"CI does not run the README's install step: {step}"
    assert "python -m pytest -q" in setup and "python -m pytest -q" in ci


def test_commands_with_placeholders_parse():
    from lyricbeam.pipeline.cli import build_parser

    parser = build_parser()
    checked = 0
    for command in readme_commands():
        if command.startswith("lyricbeam") and PLACEHOLDER.search(command):
            args, _ = parser.parse_known_args(shlex.split(command)[1:])
            assert args.command, command
            checked += 1
    assert checked


@pytest.mark.weights
def test_every_runnable_readme_command_runs_as_written(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("configs", "sample"):
        (checkout / name).symlink_to(ROOT / name)
    (tmp_path / "shared").symlink_to(SHARED.parent)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    ran = []
    for command in readme_commands():
        # The set-up line installs (CI has done that) and then runs the sample: its last step runs here.
        command = command.split("&&")[-1].strip()
        if command.startswith(("pip ", "python ")) or PLACEHOLDER.search(command):
            continue
        done = subprocess.run(command, shell=True, cwd=str(checkout), env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        ran.append(command.split()[1] if command.startswith("lyricbeam") else command.split()[0])
    assert {"run", "train", "generate", "eval-alignment", "cat"} <= set(ran)
    assert (checkout / "out" / "sample" / "stats.json").is_file()
    assert (checkout / "runs" / "gen" / "checkpoint.pt").is_file()
    assert (checkout / "out" / "generated.wav").stat().st_size > 0
    assert (checkout / "out" / "align.json").is_file()
