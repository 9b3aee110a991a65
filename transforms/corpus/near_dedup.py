"""Near-duplicates: the same recording re-encoded / trimmed / resampled, and lyric versions.

Audio: each song's fingerprint gives candidate keys; songs sharing a key meet in one
`GroupByKey` group (groups above `MAX_GROUP_SIZE` are skipped: a key that common says
nothing), pairs sharing at least `MIN_SHARED_KEYS` keys are verified by landmark matching,
and verified pairs are joined into groups. One canonical song per group is kept (rule:
`canonical_rank`); the others are rejected as `near_duplicate_of=<id>` with their score.

Lyrics: MinHash signatures (datasketch) of word shingles, banded into LSH keys; pairs
meeting in a band with estimated Jaccard >= `lyrics_threshold` are joined into version
groups. Versions are kept and linked by the `version_group` column.

Only keys, pair ids and fingerprints cross the shuffles, never audio.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import unicodedata
from typing import Iterable

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from lyricbeam.schemas.records import Reject, Song
from lyricbeam.transforms.corpus.dedup import LOSSLESS, song_key
from lyricbeam.transforms.storage.audio_store import song_blocks
from lyricbeam.transforms.corpus.fingerprint import FingerprintConfig, fingerprint_blocks, match_score
from lyricbeam.transforms.rejects import RejectingDoFn


@dataclasses.dataclass(frozen=True)
class NearDedupConfig:
    audio: bool = True  # find re-encoded / trimmed / resampled copies of one recording
    min_match_score: float = 0.10  # share of landmarks agreeing on one offset for two songs to be one recording
    lyrics: bool = True  # group songs whose lyrics are near-identical (versions, covers)
    lyrics_threshold: float = 0.5  # estimated Jaccard of word 3-gram sets for one version group


# Candidate pairs must share this many fingerprint keys: fewer is chance between unrelated songs.
MIN_SHARED_KEYS = 8
# A key shared by more songs than this says nothing (a common chord) and would make pairs grow
# with the square of the group.
MAX_GROUP_SIZE = 64
# Lyrics are compared as sets of word 3-grams, by MinHash with 128 permutations in 32 bands of 4:
# the LSH curve's threshold sits near a Jaccard of 0.42, under `lyrics_threshold`, so no version is missed.
SHINGLE_WORDS = 3
NUM_PERM = 128
BANDS = 32


def near_canonical_rank(song_like: dict) -> tuple:
    """Best first: lossless, then longer, then higher source rate, then better alignment, then id.

    `song_like` holds `format`, `duration`, `rate`, `alignment` and `key`.
    """
    return (LOSSLESS.get(song_like["format"], 2), -round(song_like["duration"], 1), -song_like["rate"],
            -(song_like["alignment"] or 0.0), song_like["key"])


CANONICAL_RULE = ("lossless container first (wav/flac/aiff before ogg/mp3), then the longest audio, "
                  "then the highest source sample rate, then the best alignment score, then the smallest id")


def _summary(song: Song) -> dict:
    return {"key": song_key(song), "id": song.song_id, "path": song.source_path, "format": song.source_format,
            "duration": song.duration, "rate": song.source_sample_rate, "alignment": song.alignment_score}


class ComputeFingerprint(RejectingDoFn):
    """Song -> song with its landmark fingerprint."""

    stage = "fingerprint"

    def __init__(self, config: FingerprintConfig = FingerprintConfig()):
        super().__init__()
        self.config = config

    def transform(self, song: Song) -> Song:
        blocks = (block for _, block in song_blocks(song, 60 * song.sample_rate))
        return song.replace(fingerprint=fingerprint_blocks(blocks, song.sample_rate, self.config))


def candidate_pairs(group: Iterable[str], max_group_size: int) -> list[tuple[str, str]]:
    """All pairs of a key group, or none when the group is larger than `max_group_size`."""
    members = sorted(set(group))
    if len(members) > max_group_size:
        return []
    return list(itertools.combinations(members, 2))


class UnionFind:
    """Disjoint sets over hashable items."""

    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, item):
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list]:
        out: dict = {}
        for item in list(self.parent):
            out.setdefault(self.find(item), []).append(item)
        return [sorted(g) for g in out.values()]


def resolve_groups(edges: list[tuple[dict, dict, float, int]]) -> list[dict]:
    """Verified edges (summary a, summary b, score, offset) -> groups with a canonical member."""
    union, summaries, scores = UnionFind(), {}, {}
    for a, b, score, _ in edges:
        summaries[a["key"]], summaries[b["key"]] = a, b
        union.union(a["key"], b["key"])
        scores[(a["key"], b["key"])] = scores[(b["key"], a["key"])] = score
    groups = []
    for members in union.groups():
        ranked = sorted(members, key=lambda k: near_canonical_rank(summaries[k]))
        canonical = ranked[0]
        groups.append({
            "canonical": canonical,
            "members": [{"key": k, "id": summaries[k]["id"], "source_path": summaries[k]["path"],
                         "score_to_canonical": scores.get((canonical, k))} for k in ranked],
            "rule": CANONICAL_RULE,
        })
    return sorted(groups, key=lambda g: g["canonical"])


class _VerifyPairs(beam.DoFn):
    """(b, {pairs: [(a, fp_a, summary_a)], fp: [(fp_b, summary_b)]}) -> verified edges."""

    def __init__(self, min_score: float):
        self.min_score = min_score
        self._verified = Metrics.counter("near_dedup", "pairs_verified")
        self._checked = Metrics.counter("near_dedup", "pairs_checked")

    def process(self, element):
        _, joined = element
        if not joined["fp"] or not joined["pairs"]:
            return
        fp_b, summary_b = joined["fp"][0]
        for _, fp_a, summary_a in joined["pairs"]:
            self._checked.inc()
            score, offset = match_score(fp_a, fp_b)
            if score >= self.min_score:
                self._verified.inc()
                yield summary_a, summary_b, score, offset


def _attach_first(element):
    # (a, {pairs: [b...], fp: [(fp_a, summary_a)]}) -> (b, (a, fp_a, summary_a)) for each b
    a, joined = element
    if not joined["fp"]:
        return
    fp_a, summary_a = joined["fp"][0]
    for b in joined["pairs"]:
        yield b, (a, fp_a, summary_a)


class _DropNearDuplicates(beam.DoFn):
    def __init__(self):
        self._rejected = Metrics.counter("near_dedup", "rejected:near_duplicate_of")
        self._out = Metrics.counter("near_dedup", "out")

    def process(self, song: Song, membership: dict):
        canonical, score = membership.get(song_key(song), (None, None))
        if canonical is None or canonical == song_key(song):
            self._out.inc()
            yield song.replace(fingerprint=None)
            return
        self._rejected.inc()
        yield beam.pvalue.TaggedOutput("rejects", Reject(
            song.song_id, song.source_path, "near_dedup", f"near_duplicate_of={canonical.split(':', 1)[1]}",
            f"score {score:.3f} against {canonical}" if score is not None
            else f"same group as {canonical} (linked through another member)"))


def membership_of(groups: list[dict]) -> dict[str, tuple[str, float | None]]:
    """song key -> (canonical key, score against it) for every member of every group."""
    return {m["key"]: (g["canonical"], m["score_to_canonical"]) for g in groups for m in g["members"]}


class AudioNearDedup(beam.PTransform):
    """Songs with fingerprints -> canonical songs (main), `rejects`, and `groups` (one list)."""

    def __init__(self, config: NearDedupConfig = NearDedupConfig()):
        super().__init__()
        self.config = config

    def expand(self, songs):
        cfg = self.config
        fps = songs | "KeyedFingerprints" >> beam.Map(lambda s: (song_key(s), (s.fingerprint, _summary(s))))
        pairs = (
            songs
            | "CandidateKeys" >> beam.FlatMap(lambda s: ((int(k) >> 1, song_key(s)) for k in s.fingerprint.keys))
            | "GroupByKey" >> beam.GroupByKey()
            | "PairsInGroup" >> beam.FlatMap(lambda kv: candidate_pairs(kv[1], MAX_GROUP_SIZE))
            | "CountSharedKeys" >> beam.combiners.Count.PerElement()
            | "EnoughShared" >> beam.Filter(lambda kv: kv[1] >= MIN_SHARED_KEYS)
            | "ByFirst" >> beam.Map(lambda kv: kv[0])
        )
        with_first = ({"pairs": pairs, "fp": fps} | "JoinFirst" >> beam.CoGroupByKey()
                      | "AttachFirst" >> beam.FlatMap(_attach_first))
        edges = ({"pairs": with_first, "fp": fps} | "JoinSecond" >> beam.CoGroupByKey()
                 | "Verify" >> beam.ParDo(_VerifyPairs(cfg.min_match_score)))
        groups = (edges | "AllEdges" >> beam.combiners.ToList()
                  | "ResolveGroups" >> beam.Map(resolve_groups))
        membership = groups | "Membership" >> beam.Map(membership_of)
        result = songs | "DropNearDuplicates" >> beam.ParDo(
            _DropNearDuplicates(), beam.pvalue.AsSingleton(membership)).with_outputs("rejects", main="songs")
        return {"songs": result.songs, "rejects": result.rejects, "groups": groups}


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def lyric_shingles(text: str, size: int = 3) -> set[str]:
    """Word `size`-grams of case-folded, accent-kept, punctuation-free lyrics."""
    words = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i: i + size]) for i in range(len(words) - size + 1)}


def minhash_signature(shingles: set[str], num_perm: int = 128) -> np.ndarray:
    """datasketch MinHash values of a shingle set (seeded, so identical across workers)."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, seed=1)
    minhash.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return np.asarray(minhash.hashvalues, dtype=np.uint64)


def band_keys(signature: np.ndarray, bands: int) -> list[str]:
    rows = len(signature) // bands
    return [f"{b}:" + hashlib.sha1(signature[b * rows:(b + 1) * rows].tobytes()).hexdigest()[:16]
            for b in range(bands)]


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


class _LyricsPairs(beam.DoFn):
    def __init__(self, threshold: float, max_group_size: int):
        self.threshold = threshold
        self.max_group_size = max_group_size

    def process(self, element):
        _, members = element
        members = sorted(members, key=lambda m: m[0])
        if len(members) > self.max_group_size:
            return
        for (ka, sa), (kb, sb) in itertools.combinations(members, 2):
            if ka != kb and estimated_jaccard(sa, sb) >= self.threshold:
                yield ka, kb


def version_groups(edges: list[tuple[str, str]]) -> dict[str, str]:
    """song key -> version group id (the smallest member key) for songs in a group of >= 2."""
    union = UnionFind()
    for a, b in edges:
        union.union(a, b)
    return {member: group[0] for group in union.groups() for member in group}


class LyricsVersions(beam.PTransform):
    """Songs -> songs with `version_group` (their own key when no other version is found)."""

    def __init__(self, config: NearDedupConfig = NearDedupConfig()):
        super().__init__()
        self.config = config

    def expand(self, songs):
        cfg = self.config

        def signatures(song: Song):
            if not song.has_lyrics or not song.text:
                return
            shingles = lyric_shingles(song.text, SHINGLE_WORDS)
            if shingles:
                signature = minhash_signature(shingles, NUM_PERM)
                for key in band_keys(signature, BANDS):
                    yield key, (song_key(song), signature)

        groups = (
            songs
            | "BandKeys" >> beam.FlatMap(signatures)
            | "GroupByBand" >> beam.GroupByKey()
            | "SimilarPairs" >> beam.ParDo(_LyricsPairs(cfg.lyrics_threshold, MAX_GROUP_SIZE))
            | "DistinctPairs" >> beam.Distinct()
            | "AllPairs" >> beam.combiners.ToList()
            | "Groups" >> beam.Map(version_groups)
        )
        return songs | "SetVersionGroup" >> beam.Map(
            lambda s, g: s.replace(version_group=g.get(song_key(s), song_key(s))), beam.pvalue.AsSingleton(groups))


def groups_json_lines(groups: list[dict], input_roots: tuple[str, ...] = ()) -> list[str]:
    """One line of `dedup/` per group; member paths relative to the input roots (`rows.portable_path`)."""
    from lyricbeam.transforms.storage.rows import portable_path

    lines = []
    for group in groups:
        members = [{**m, "source_path": portable_path(m["source_path"], input_roots)} for m in group["members"]]
        lines.append(json.dumps({**group, "members": members}, sort_keys=True))
    return lines
