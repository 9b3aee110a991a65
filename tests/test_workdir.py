"""The work directory: one atomic writer, entry keys from the settings that change results only."""
import dataclasses

import pytest

from lyricbeam.transforms.storage.workdir import (atomic_create, cache_key, entry_path, read_bytes, result_settings,
                                                  store_dir, write_atomically)


def test_an_entry_appears_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "a" / "b" / "entry.json")
    with pytest.raises(RuntimeError):
        with atomic_create(path) as handle:
            handle.write(b"half")
            raise RuntimeError("killed mid-write")
    assert read_bytes(path) is None
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == []  # no temporary left behind
    write_atomically(path, b"first")
    write_atomically(path, b"second")
    assert read_bytes(path) == b"second"
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["entry.json"]


def test_keys_ignore_settings_that_change_speed_only():
    from lyricbeam.transforms.alignment.config import AlignConfig, AlignTuning
    from lyricbeam.transforms.features.embed import EmbedConfig

    one, two = AlignConfig(threads=1), AlignConfig(threads=2)
    assert cache_key(result_settings(one)) == cache_key(result_settings(two))
    assert "threads" not in result_settings(one)
    # a setting that changes the result changes the key, nested tuning included
    assert cache_key(result_settings(one)) != cache_key(result_settings(AlignConfig(placement_min_score=0.2)))
    assert cache_key(result_settings(one)) != cache_key(result_settings(AlignConfig(tuning=AlignTuning(slack_s=2.0))))
    embed = EmbedConfig()
    assert result_settings(embed) == result_settings(dataclasses.replace(embed, torch_threads=4))


def test_work_paths_are_named_in_one_place(tmp_path):
    out = str(tmp_path / "out")
    assert store_dir(out + "/", "rows") == f"{out}/.work/rows"
    assert entry_path(store_dir(out, "align"), "abcdef", ".json") == f"{out}/.work/align/ab/abcdef.json"
    with pytest.raises(ValueError):
        store_dir(out, "elsewhere")


def test_an_alignment_cached_with_one_thread_count_is_found_with_another(tmp_path):
    from lyricbeam.schemas.records import AnnotationEvent, Song
    from lyricbeam.transforms.alignment.align import AlignLyrics
    from lyricbeam.transforms.alignment.config import AlignConfig

    song = Song(song_id="s", source="dali", source_path="s.json", pcm_sha256="0" * 64,
                words=[AnnotationEvent(text="la", start=1.0, end=1.2, parent=0)])
    paths = {AlignLyrics(AlignConfig(threads=n), str(tmp_path))._cache_path(song, "en") for n in (1, 2)}
    assert len(paths) == 1
