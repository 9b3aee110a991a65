"""Split: train / validation / test assigned from a hash of the artist.

The split depends only on the normalised artist name, so every song of an artist lands
in the same split on every run and every runner, whatever else is in the corpus.
"""
from __future__ import annotations

import hashlib
import unicodedata

import apache_beam as beam

from lyricbeam.schemas.records import Song

SPLITS = ("train", "validation", "test")


def artist_key(song: Song) -> str:
    """Normalised artist name; songs with no artist are keyed by their own id."""
    artist = unicodedata.normalize("NFKC", song.artist or "").casefold()
    artist = " ".join(artist.split())
    return f"artist:{artist}" if artist else f"song:{song.source}:{song.song_id}"


def assign_split(key: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), salt: str = "") -> str:
    """Split for a split key: the key's SHA-1 as a fraction in [0, 1) against `fractions`."""
    digest = hashlib.sha1(f"{salt}{key}".encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(fractions)
    edge = 0.0
    for name, share in zip(SPLITS, fractions):
        edge += share / total
        if position < edge:
            return name
    return SPLITS[-1]


class AssignSplit(beam.DoFn):
    def __init__(self, fractions: tuple[float, float, float], salt: str = ""):
        self.fractions = tuple(fractions)
        self.salt = salt

    def process(self, song: Song):
        yield song.replace(split=assign_split(artist_key(song), self.fractions, self.salt))
