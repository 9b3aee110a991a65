"""Record types that flow between the pipeline's transforms.

A `Song` is created by a source reader, filled in by clean / dedup / features / embed,
and turned into Parquet rows by the writer. A `Reject` is the one way an input leaves
the pipeline without becoming a row.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np


@dataclasses.dataclass
class AnnotationEvent:
    """One timed annotation: a note, word, line or paragraph.

    `parent` is the index of the enclosing event one level up (note -> word -> line ->
    paragraph), -1 where the source gives none.
    """

    text: str
    start: float
    end: float
    freq_lo: float = 0.0
    freq_hi: float = 0.0
    parent: int = -1
    text_original: str = ""


@dataclasses.dataclass
class AlignedWord:
    """A lyric word placed in the audio by forced alignment.

    `aligned` is False where the alignment path skipped the word's tokens and its time was
    taken from its neighbours.
    """

    text: str
    start: float
    end: float
    confidence: float
    aligned: bool = True


@dataclasses.dataclass
class SongAlignment:
    """What the alignment stage found for one song (one `alignment` cell of the `songs` config)."""

    backend: str  # e.g. "ctranslate2-whisper"
    model: str
    language: str
    line_placement: str  # "source_lines" | "source_lines_offset_corrected" | "transcript"
    words: list[AlignedWord]
    mean_confidence: float
    aligned_fraction: float
    lyrics_match_wer: Optional[float] = None
    lyrics_match_shared: Optional[float] = None  # transcribe.shared_word_share; None = too few words to judge
    transcript_backend: str = ""
    transcript_model: str = ""
    source_onset_offset_s: Optional[float] = None  # median(our word onsets - the source's own), DALI
    placement_score: Optional[float] = None  # how well the evidence supports where the lines were put (align.placement_score)
    suspect: bool = False  # the placement score is below align.placement_min_score: word times may be far off


# Sources whose text is always sung lyrics; MusicNet's text is a generated description, and an
# audio folder's song has lyrics when a lyrics file came with it or it was transcribed.
LYRICS_SOURCES = frozenset({"dali"})
# Where a song's lyrics came from (the `lyrics_source` column); "" = the song has none.
LYRIC_ORIGINS = ("annotation", "lrc", "text", "transcript")


@dataclasses.dataclass
class Reject:
    """An input that did not become a row, and why."""

    song_id: str
    source_path: str
    stage: str
    reason: str
    detail: str = ""
    value: Optional[float] = None  # a quality filter's measured value
    threshold: Optional[float] = None  # and the threshold it failed

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Song:
    """One recording with its annotations, as it moves through the pipeline.

    What each stage needs and adds:

    - Read: identity, metadata, `notes` / `words` / `lines` / `paragraphs` (times NaN where the
      source gives none), `text`, `lyrics_source`;
    - Clean (needs the audio file): `audio_file` or `audio`, `sample_rate`, `duration`, the
      source's rate, channels and format, `pcm_sha256`, `clip_fraction`, `bandwidth_hz`;
    - Quality (needs the audio): `vocal_activity`, `lyrics_language*`;
    - TranscribeLyrics (audio folders, `transcribe_lyrics`): lyrics from the song's transcript;
    - Align (needs lyrics with `words`): `alignment`, `lyrics_match_*`, `alignment_score`;
    - Fingerprint, near dedup, versions, split: `fingerprint`, `version_group`, `split`;
    - Features and Embed: `mel`, `f0_hz`, `voiced`, tempo and beats; the embeddings;
    - Describe: `key`, `sections`, `instrumental`, `tags`, `prompt`.
    """

    song_id: str
    source: str  # "dali" | "musicnet" | "audiofolder"
    source_path: str  # the annotation / label file
    audio_path: str = ""
    title: str = ""
    artist: str = ""
    language: str = ""
    licence: str = ""
    info_json: str = "{}"  # the source's own metadata, verbatim as JSON
    annot_fr: float = 0.0
    annot_offset: float = 0.0
    notes: list[AnnotationEvent] = dataclasses.field(default_factory=list)
    words: list[AnnotationEvent] = dataclasses.field(default_factory=list)
    lines: list[AnnotationEvent] = dataclasses.field(default_factory=list)
    paragraphs: list[AnnotationEvent] = dataclasses.field(default_factory=list)
    instruments: list[str] = dataclasses.field(default_factory=list)
    text: str = ""  # normalised lyrics, or the MusicNet description
    text_original: str = ""
    lyrics_source: str = ""  # one of LYRIC_ORIGINS; "" = no lyrics (DALI songs: "annotation")
    transcribe_lyrics: bool = False  # no lyrics file came with it and its transcript is to be its lyrics
    # Filled by clean.
    audio: Optional[np.ndarray] = None  # mono float32 at sample_rate, when held in memory
    audio_file: str = ""  # else: the work file holding it (transforms/storage/audio_store.py)
    audio_samples: int = 0
    sample_rate: int = 0
    duration: float = 0.0
    source_sample_rate: int = 0
    # The audio written to the dataset (audio.store_sample_rate / store_channels): at its own rate,
    # channels and bit depth; `stored_audio` (frames, channels) or the work file `stored_audio_file`,
    # neither when it is the analysis signal itself (mono at sample_rate).
    store_sample_rate: int = 0
    store_channels: int = 0
    store_bits: int = 16
    store_frames: int = 0
    stored_audio: Optional[np.ndarray] = None
    stored_audio_file: str = ""
    source_channels: int = 0
    source_format: str = ""
    pcm_sha256: str = ""
    # Filled by clean (quality metrics) and the quality / near-dedup stages.
    clip_fraction: float = 0.0
    bandwidth_hz: float = 0.0
    loudness_lufs: Optional[float] = None  # integrated loudness of the source (BS.1770-4); None: too quiet
    loudness_range_lu: Optional[float] = None  # EBU Tech 3342 loudness range
    true_peak_dbtp: Optional[float] = None
    stored_gain_db: float = 0.0  # applied to the stored audio (audio.normalize_lufs); 0: as decoded
    vocal_activity: float = -1.0  # p90 of Silero VAD speech probability; -1 = not measured
    lyrics_language: str = ""
    lyrics_language_confidence: float = 0.0
    lyrics_language_share: float = -1.0  # share of lyric words that look the metadata's language; -1 = not measured
    lyrics_match_wer: Optional[float] = None  # from the alignment stage, when it ran
    lyrics_match_shared: Optional[float] = None  # likewise: distinctive words shared with the transcript
    alignment_score: Optional[float] = None  # the alignment's mean confidence, when it ran
    alignment: Optional[SongAlignment] = None
    fingerprint: Any = None  # lyricbeam.transforms.corpus.fingerprint.Fingerprint; not written
    version_group: str = ""
    # Filled by split / features / embed.
    split: str = ""
    mel: Optional[np.ndarray] = None  # (frames, n_mels) float32, log power in dB
    mel_hop_seconds: float = 0.0
    f0_hz: Optional[np.ndarray] = None  # (frames,) 0 where unvoiced
    voiced: Optional[np.ndarray] = None  # (frames,) bool
    f0_hop_seconds: float = 0.0
    tempo_bpm: float = 0.0
    beat_times: Optional[np.ndarray] = None
    word_embeddings: Optional[np.ndarray] = None  # (len(words), dim)
    line_embeddings: Optional[np.ndarray] = None  # (len(lines), dim)
    text_embedding: Optional[np.ndarray] = None  # (dim,)
    # Filled by describe.
    key: str = ""  # "A minor"; "" = not estimated
    key_confidence: float = 0.0
    sections: list = dataclasses.field(default_factory=list)  # transforms.features.sections.Section
    instrumental: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)
    prompt: str = ""

    @property
    def has_lyrics(self) -> bool:
        """Whether the song's text is sung lyrics (DALI form, a lyrics file, a transcript), not a
        description (MusicNet form) or nothing (an instrumental audio-folder song)."""
        return self.source in LYRICS_SOURCES or self.lyrics_source in LYRIC_ORIGINS

    def replace(self, **changes: Any) -> "Song":
        return dataclasses.replace(self, **changes)
