"""`lyricbeam publish`: a finished output folder to a Hugging Face dataset repository.

Everything is checked offline before any network call (`--dry-run` stops there): the card parses
and says what the Hub asks of a dataset card, every shard named by its `-of-NNNNN` count is
there and carries the features the card declares, the Hub's limits hold, and nothing names a
path of this machine. `stats.json` is published with the run's input and output paths made
relative; `.work/` never leaves the machine.

The upload uses `huggingface_hub`: the repository is created if missing, and the files go up in
commits of at most `COMMIT_FILES` files, each file skipped when the repository already holds the
same content (its LFS SHA-256, or its git blob id). An upload cut off — network, kill -9 — is
finished by running the same command again: committed files are not sent again, and the Xet
storage behind `huggingface_hub` does not send chunks it already holds.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import glob
import hashlib
import json
import os
import re
from typing import Optional

import pyarrow.parquet as pq

# The Hub's limits: files per folder, and bytes per file.
MAX_FILES_PER_FOLDER = 10_000
MAX_FILE_BYTES = 50 * 1000**3
# The dataset viewer fails on row groups over ~286 MiB.
MAX_VIEWER_ROW_GROUP_BYTES = 286 * 2**20
# Files per commit: a commit of thousands of files is slow to create and lost whole when cut off.
COMMIT_FILES = 100
SHARD_NAME = re.compile(r"^(?P<split>[\w.]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
PATH_COLUMNS = ("source_path", "audio_path")


@dataclasses.dataclass(frozen=True)
class PublishFile:
    """One file of the dataset repository: where it comes from, and its bytes when rewritten for publishing."""

    path_in_repo: str
    local_path: str
    data: Optional[bytes] = None

    def size(self) -> int:
        return len(self.data) if self.data is not None else os.path.getsize(self.local_path)

    def blocks(self, block: int = 1 << 22):
        """The content in blocks: a shard of gigabytes is hashed without being held whole."""
        if self.data is not None:
            yield self.data
            return
        with open(self.local_path, "rb") as handle:
            while chunk := handle.read(block):
                yield chunk

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        with open(self.local_path, "rb") as handle:
            return handle.read()


def portable_stats(stats: dict, output_dir: str) -> dict:
    """`stats` with every path of this machine (the output, the inputs, the configs) made relative."""
    roots = sorted({os.path.abspath(output_dir)} | {os.path.dirname(os.path.abspath(output_dir))}, key=len,
                   reverse=True)

    def portable(value):
        if isinstance(value, dict):
            return {k: portable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [portable(v) for v in value]
        if isinstance(value, str) and os.path.isabs(value):
            for root in roots:
                if value == root or value.startswith(root + os.sep):
                    return os.path.relpath(value, root)
            return os.path.basename(value.rstrip(os.sep))
        return value

    return portable(stats)


OPTIONAL_FOLDERS = ("rejects", "report")


def publish_files(output_dir: str, include: tuple[str, ...] = ()) -> list[PublishFile]:
    """The files of the dataset repository: the card, `stats.json` (paths made relative), `data/`,
    `dedup/`, and those of `include` (`rejects/`, `report/`) asked for; never `.work/`."""
    files = []
    for name in ("README.md",):
        path = os.path.join(output_dir, name)
        if os.path.exists(path):
            files.append(PublishFile(name, path))
    stats_path = os.path.join(output_dir, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as handle:
            stats = portable_stats(json.load(handle), output_dir)
        files.append(PublishFile("stats.json", stats_path,
                                 (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode()))
    for folder in ("data", "dedup") + tuple(f for f in OPTIONAL_FOLDERS if f in include):
        for path in sorted(glob.glob(os.path.join(output_dir, folder, "**", "*"), recursive=True)):
            if os.path.isfile(path):
                files.append(PublishFile(os.path.relpath(path, output_dir).replace(os.sep, "/"), path))
    return files


def card_problems(output_dir: str, files: list[PublishFile]) -> tuple[list[str], dict]:
    """What the card lacks for the Hub, and its metadata (empty when it does not parse)."""
    from huggingface_hub import DatasetCard

    card_path = os.path.join(output_dir, "README.md")
    if not os.path.exists(card_path):
        return ["README.md: no dataset card"], {}
    try:
        data = DatasetCard.load(card_path).data.to_dict()
    except Exception as err:  # noqa: BLE001 - any parse failure is the problem reported
        return [f"README.md: the card does not parse: {err}"], {}
    problems = []
    if not data.get("license"):
        problems.append("README.md: no license")
    elif data["license"] == "other":
        problems += [f"README.md: license 'other' needs {key}" for key in ("license_name", "license_link")
                     if not data.get(key)]
    problems += [f"README.md: no {key}" for key in ("pretty_name", "task_categories", "size_categories", "configs")
                 if not data.get(key)]
    names = {f.path_in_repo for f in files}
    shards = {n for n in names if n.startswith("data/") and n.endswith(".parquet")}
    covered = set()
    for config in data.get("configs") or []:
        for entry in config.get("data_files") or []:
            pattern = entry.get("path") if isinstance(entry, dict) else entry
            for item in [pattern] if isinstance(pattern, str) else pattern:
                matched = {n for n in shards if fnmatch.fnmatch(n, item)}
                if not matched:
                    problems.append(f"README.md: config {config.get('config_name')!r}: data_files {item!r} "
                                    "matches no file")
                covered |= matched
    problems += [f"{n}: no config of the card lists it" for n in sorted(shards - covered)]
    return problems, data


def shard_problems(output_dir: str, files: list[PublishFile], card: dict) -> list[str]:
    """Missing shards, shards without the card's features, row groups the viewer cannot read, path leaks."""
    import datasets

    from lyricbeam.pipeline.stats import data_languages

    problems = []
    features = {info.get("config_name"): info.get("features") for info in card.get("dataset_info") or []}
    shards = [f for f in files if f.path_in_repo.startswith("data/") and f.path_in_repo.endswith(".parquet")]
    counts: dict[tuple[str, str], tuple[int, set[int]]] = {}
    for shard in shards:
        folder, name = shard.path_in_repo.rsplit("/", 1)
        match = SHARD_NAME.match(name)
        if match is None:
            problems.append(f"{shard.path_in_repo}: not named <split>-NNNNN-of-NNNNN.parquet")
            continue
        count, seen = counts.setdefault((folder, match["split"]), (int(match["count"]), set()))
        seen.add(int(match["index"]))
        try:
            parquet = pq.ParquetFile(shard.local_path)
        except Exception as err:  # noqa: BLE001 - an unreadable shard is the problem reported
            problems.append(f"{shard.path_in_repo}: unreadable Parquet: {err}")
            continue
        meta = parquet.schema_arrow.metadata or {}
        config = folder.split("/", 1)[1] if "/" in folder else folder
        if b"huggingface" not in meta:
            problems.append(f"{shard.path_in_repo}: no 'huggingface' features in its schema metadata")
        elif features.get(config) is not None:
            own = datasets.Features.from_dict(json.loads(meta[b"huggingface"])["info"]["features"])
            if own != datasets.Features._from_yaml_list(features[config]):
                problems.append(f"{shard.path_in_repo}: its features differ from the card's for config {config!r}")
        for g in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(g).total_byte_size
            if size > MAX_VIEWER_ROW_GROUP_BYTES:
                problems.append(f"{shard.path_in_repo}: row group {g} holds {size} bytes (viewer limit "
                                f"{MAX_VIEWER_ROW_GROUP_BYTES})")
        columns = [c for c in PATH_COLUMNS if c in parquet.schema_arrow.names]
        if columns:
            table = parquet.read(columns=columns)
            for column in columns:
                leaked = [v for v in table.column(column).to_pylist() if v and is_local_path(v)]
                if leaked:
                    problems.append(f"{shard.path_in_repo}: column {column} holds paths of this machine "
                                    f"(e.g. {leaked[0]!r})")
    for (folder, split), (count, seen) in sorted(counts.items()):
        missing = sorted(set(range(count)) - seen)
        problems += [f"{folder}/{split}-{i:05d}-of-{count:05d}.parquet: missing" for i in missing]
    languages = data_languages([{"config": "songs", "path": f.local_path} for f in shards
                                if f.path_in_repo.startswith("data/songs/")])
    declared = card.get("language") or []
    declared = [declared] if isinstance(declared, str) else declared
    if card and sorted(declared) != languages:
        problems.append(f"README.md: language {sorted(declared)} but the songs are in {languages}")
    return problems


def is_local_path(value: str) -> bool:
    """Whether `value` names a file of this machine: an absolute path, or one under the home directory."""
    return os.path.isabs(value) or value.startswith("~") or os.path.expanduser("~") in value


def limit_problems(files: list[PublishFile]) -> list[str]:
    """Where the Hub's repository limits (files per folder, bytes per file) would be broken."""
    problems, per_folder = [], {}
    for f in files:
        folder = f.path_in_repo.rsplit("/", 1)[0] if "/" in f.path_in_repo else ""
        per_folder[folder] = per_folder.get(folder, 0) + 1
        size = f.size()
        if size > MAX_FILE_BYTES:
            problems.append(f"{f.path_in_repo}: {size} bytes, over the Hub's {MAX_FILE_BYTES} per file")
    problems += [f"{folder or '.'}: {n} files, over the Hub's {MAX_FILES_PER_FOLDER} per folder"
                 for folder, n in sorted(per_folder.items()) if n > MAX_FILES_PER_FOLDER]
    return problems


def _json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _absolute_path_values(path_in_repo: str, text: str) -> list[str]:
    """String values of a JSON / JSON Lines file that are absolute paths (`/a/b`), e.g. an input's path."""
    documents = []
    try:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()] if path_in_repo.endswith(
            ".jsonl") else [json.loads(text)]
    except ValueError:
        return []
    return [v for doc in documents for v in _json_strings(doc)
            if v.startswith("/") and v.count("/") >= 2 and "\n" not in v]


def leak_problems(output_dir: str, files: list[PublishFile]) -> list[str]:
    """Text files (the card, stats, dedup groups, rejects, the report's pages) that would publish a path of this machine:
    the output folder, the home directory, or any absolute path held as a JSON value."""
    problems = []
    markers = {os.path.abspath(output_dir), os.path.expanduser("~")} - {"/"}
    for f in files:
        if f.path_in_repo.endswith((".md", ".json", ".jsonl", ".html")):
            text = f.content().decode("utf-8", errors="replace")
            found = sorted(m for m in markers if m and m in text)
            if not found and f.path_in_repo.endswith((".json", ".jsonl")):
                found = _absolute_path_values(f.path_in_repo, text)[:1]
            if found:
                problems.append(f"{f.path_in_repo}: names {found[0]!r}, a path of this machine")
    return problems


def validate(output_dir: str, include: tuple[str, ...] = ()) -> list[str]:
    """Every reason the output folder is not ready for the Hub (empty: ready). No network call."""
    if not os.path.isdir(output_dir):
        return [f"{output_dir}: not a directory"]
    files = publish_files(output_dir, include)
    problems, card = card_problems(output_dir, files)
    problems += shard_problems(output_dir, files, card)
    problems += limit_problems(files)
    problems += leak_problems(output_dir, files)
    return problems


def git_blob_id(data: bytes) -> str:
    """The git object id of a small file, as the Hub reports it for files not stored in LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def already_there(f: PublishFile, remote) -> bool:
    """Whether the repository's file `remote` (a `huggingface_hub.RepoFile`, or None) holds `f`'s content."""
    if remote is None or (getattr(remote, "size", None) is not None and remote.size != f.size()):
        return False
    lfs = getattr(remote, "lfs", None)
    digest = hashlib.sha256() if lfs else hashlib.sha1(b"blob %d\0" % f.size())
    for chunk in f.blocks():
        digest.update(chunk)
    return digest.hexdigest() == (lfs.sha256 if lfs else remote.blob_id)


def upload(output_dir: str, repo_id: str, private: bool = False, revision: Optional[str] = None,
           include: tuple[str, ...] = (), token: Optional[str] = None, commit_files: int = COMMIT_FILES) -> tuple[int, int]:
    """Create the repository if missing and send what it lacks; (files sent, files already there)."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(token=token)  # None: HF_TOKEN, else the user's login; never printed
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    remote = {item.path: item for item in api.list_repo_tree(repo_id, repo_type="dataset", revision=revision,
                                                             recursive=True, expand=True)
              if isinstance(item, RepoFile)}
    files = publish_files(output_dir, include)
    todo = [f for f in files if not already_there(f, remote.get(f.path_in_repo))]
    batches = [todo[i: i + commit_files] for i in range(0, len(todo), commit_files)]
    for n, batch in enumerate(batches, 1):
        operations = [CommitOperationAdd(f.path_in_repo, f.data if f.data is not None else f.local_path)
                      for f in batch]
        api.create_commit(repo_id, operations=operations, repo_type="dataset", revision=revision,
                          commit_message=f"lyricbeam publish ({n}/{len(batches)})")
    return len(todo), len(files) - len(todo)


def main(args) -> int:
    """`lyricbeam publish OUT --repo-id ORG/NAME [--private] [--revision B] [--include-rejects]
    [--include-report] [--dry-run]`."""
    output_dir = os.path.abspath(args.output)
    include = tuple(f for f in OPTIONAL_FOLDERS if getattr(args, f"include_{f}", False))
    if "report" in include and not os.path.exists(os.path.join(output_dir, "report", "index.html")):
        print(f"lyricbeam publish: --include-report: no report in {output_dir} (run `lyricbeam report` first)")
        return 1
    problems = validate(output_dir, include)
    if problems:
        print(f"lyricbeam publish: {output_dir} is not ready for the Hub:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    files = publish_files(output_dir, include)
    if args.dry_run:
        size = sum(f.size() for f in files)
        print(f"lyricbeam publish: ready: {len(files)} files, {size / 1e6:.1f} MB for {args.repo_id} (dry run: nothing sent)")
        return 0
    sent, kept = upload(output_dir, args.repo_id, args.private, args.revision, include)
    print(f"lyricbeam publish: {args.repo_id}: {sent} files sent, {kept} already there")
    return 0
