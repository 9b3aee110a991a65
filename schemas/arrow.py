"""The Parquet schemas of the `songs` and `segments` configs: one place defines each column.

`SCHEMA_VERSION` is written into every shard's metadata under `lyricbeam.schema_version`;
bump the major part on any change that breaks readers.
"""
from __future__ import annotations

import json
from functools import lru_cache

import pyarrow as pa

SCHEMA_VERSION = "1.5.0"
SCHEMA_VERSION_KEY = b"lyricbeam.schema_version"
CONFIG_KEY = b"lyricbeam.config"

# Hugging Face's `Audio` feature stores a struct of encoded bytes and a path.
AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
EVENT = pa.struct([
    ("text", pa.string()),
    ("text_original", pa.string()),
    ("start", pa.float64()),
    ("end", pa.float64()),
    ("freq_lo", pa.float32()),
    ("freq_hi", pa.float32()),
    ("parent", pa.int32()),
])
NOTE = pa.struct([
    ("text", pa.string()),
    ("start", pa.float64()),
    ("end", pa.float64()),
    ("freq_lo", pa.float32()),
    ("freq_hi", pa.float32()),
])
WORD = pa.struct([("text", pa.string()), ("start", pa.float64()), ("end", pa.float64())])
ALIGNED_WORD = pa.struct([("text", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                         ("confidence", pa.float32()), ("aligned", pa.bool_())])
ALIGNMENT = pa.struct([
    ("backend", pa.string()),
    ("model", pa.string()),
    ("language", pa.string()),
    ("line_placement", pa.string()),
    ("words", pa.list_(ALIGNED_WORD)),
    ("mean_confidence", pa.float32()),
    ("aligned_fraction", pa.float32()),
    ("lyrics_match_wer", pa.float32()),
    ("lyrics_match_shared", pa.float32()),
    ("transcript_backend", pa.string()),
    ("transcript_model", pa.string()),
    ("source_onset_offset_s", pa.float32()),
    ("placement_score", pa.float32()),
    ("suspect", pa.bool_()),
])
SECTION = pa.struct([("label", pa.string()), ("start", pa.float64()), ("end", pa.float64())])
MATRIX = pa.list_(pa.list_(pa.float32()))
VECTOR = pa.list_(pa.float32())

# name -> (type, description). Shared columns are defined once and reused below.
COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "song_id": (pa.string(), "Source id (DALI id or MusicNet id)"),
    "segment_id": (pa.string(), "`<song_id>/<index>`"),
    "segment_index": (pa.int32(), "Position of the segment in its song"),
    "source": (pa.string(), "`dali`, `musicnet` or `audiofolder`"),
    "split": (pa.string(), "train / validation / test, assigned by artist"),
    "title": (pa.string(), "Song or work title"),
    "artist": (pa.string(), "Artist (DALI) or composer (MusicNet); the split key"),
    "language": (pa.string(), "Lyrics language from the source metadata"),
    "licence": (pa.string(), "Licence of the source annotations/audio"),
    "source_path": (pa.string(), "Annotation or label file the row came from"),
    "audio_path": (pa.string(), "Audio file the row came from"),
    "audio": (AUDIO, "FLAC bytes (Hugging Face Audio struct)"),
    "sample_rate": (pa.int32(), "Sample rate of `audio` and of the features (Hz)"),
    "duration": (pa.float64(), "Seconds of audio in this row"),
    "start": (pa.float64(), "Segment start in the song (s)"),
    "end": (pa.float64(), "Segment end in the song (s)"),
    "source_sample_rate": (pa.int32(), "Sample rate of the input file (Hz)"),
    "source_channels": (pa.int32(), "Channels of the input file"),
    "source_format": (pa.string(), "Container sniffed from the file's content"),
    "pcm_sha256": (pa.string(), "SHA-256 of the decoded 16-bit PCM (exact-duplicate key)"),
    "version_group": (pa.string(), "Songs with near-identical lyrics share it (versions, covers); split on it"),
    "clip_fraction": (pa.float32(), "Share of source samples in clipped runs"),
    "bandwidth_hz": (pa.float32(), "Real bandwidth of the source audio (Hz)"),
    "loudness_lufs": (pa.float32(), "Integrated loudness of the source (LUFS, ITU-R BS.1770-4); null: too quiet to measure"),
    "loudness_range_lu": (pa.float32(), "Loudness range of the source (LU, EBU Tech 3342)"),
    "true_peak_dbtp": (pa.float32(), "True peak of the source (dBTP, 4x oversampled)"),
    "stored_gain_db": (pa.float32(), "Gain applied to the stored audio (dB; audio.normalize_lufs), 0 = as decoded"),
    "vocal_activity": (pa.float32(), "90th percentile of Silero VAD speech probability; -1 = not measured"),
    "lyrics_language": (pa.string(), "Language langid detects in the lyrics (ISO 639-1); empty = not checked"),
    "text": (pa.string(), "Normalised lyrics (DALI) or generated description (MusicNet)"),
    "text_original": (pa.string(), "Text as the source gave it"),
    "lyrics_source": (pa.string(), "Where the lyrics came from: `annotation` (DALI), `lrc`, `text` (a lyrics file "
                      "beside the audio), `transcript` (transcribed); empty = none (instrumental, MusicNet)"),
    "notes": (pa.list_(EVENT), "Notes: syllable text, times (s), frequency range (Hz), parent word"),
    "words": (pa.list_(EVENT), "Words with the source's times (s; null where it gives none) and parent line"),
    "lines": (pa.list_(EVENT), "Lyric lines with the source's times (s; null where it gives none) and parent paragraph"),
    "paragraphs": (pa.list_(EVENT), "Paragraphs with times (s)"),
    "segment_notes": (pa.list_(NOTE), "Notes inside the segment, times relative to its start"),
    "segment_words": (pa.list_(WORD), "Words inside the segment, times relative to its start"),
    "alignment": (ALIGNMENT, "Forced alignment of the lyrics: per word text, start, end (s), confidence; backend, "
                  "model, language, line placement, mean confidence, share of words aligned, lyrics-match WER, "
                  "share of distinctive words (>= 4 letters) the transcript shares with the lyrics, "
                  "median offset of our onsets from the source's (s), placement score, suspect (the evidence does not "
                  "support the line placement: word times may be far off); null = not aligned"),
    "segment_aligned_words": (pa.list_(ALIGNED_WORD), "Aligned words of the segment's line, times relative to "
                              "its start; null = song not aligned"),
    "instruments": (pa.list_(pa.string()), "Instruments present (MusicNet)"),
    "annot_fr": (pa.float64(), "DALI annot_param.fr"),
    "annot_offset": (pa.float64(), "DALI annot_param.offset (s)"),
    "info_json": (pa.string(), "The source's own metadata record, as JSON"),
    "mel": (MATRIX, "Log-mel spectrogram in dB, frames x n_mels"),
    "n_mels": (pa.int32(), "Mel bands"),
    "mel_hop_seconds": (pa.float32(), "Hop between mel frames (s)"),
    "f0_hz": (VECTOR, "Fundamental frequency per frame (Hz), 0 where unvoiced"),
    "voiced": (pa.list_(pa.bool_()), "Voicing decision per f0 frame"),
    "f0_hop_seconds": (pa.float32(), "Hop between f0 frames (s)"),
    "tempo_bpm": (pa.float32(), "Global tempo estimate (BPM)"),
    "beat_times": (VECTOR, "Beat times (s)"),
    "key": (pa.string(), "Key and mode from chroma and the Temperley key profile (`C major` .. `B minor`, sharps as "
            "C#, F#, flats as Eb, Ab, Bb); empty: not estimated"),
    "key_confidence": (pa.float32(), "Best key-profile correlation minus the second best (0-2; near 0: between two keys)"),
    "sections": (pa.list_(SECTION), "Song structure covering 0 to `duration`: `intro`, `verse`, `chorus`, `bridge`, "
                 "`inst`, `outro` with start and end (s); from the lyrics' stanzas, the aligned times and the audio's novelty"),
    "section": (pa.string(), "Label of the song section holding the segment's middle"),
    "instrumental": (pa.bool_(), "No lyrics and vocal activity below the quality threshold"),
    "tags": (pa.list_(pa.string()), "Style tags: the source's genres / decade / composer / ensemble / instruments, "
             "language, tempo (`96 BPM`), key, `vocal` or `instrumental`, loudness class"),
    "prompt": (pa.string(), "The tags as one comma-separated text prompt"),
    "word_embeddings": (MATRIX, "Contextual all-MiniLM-L6-v2 embedding per word (384)"),
    "line_embeddings": (MATRIX, "all-MiniLM-L6-v2 embedding per lyric line (384)"),
    "text_embedding": (VECTOR, "all-MiniLM-L6-v2 embedding of the row's text (384)"),
}

SONGS_COLUMNS = [
    "song_id", "source", "split", "title", "artist", "language", "licence", "source_path",
    "audio_path", "audio", "sample_rate", "duration", "source_sample_rate", "source_channels",
    "source_format", "pcm_sha256", "version_group", "clip_fraction", "bandwidth_hz", "loudness_lufs",
    "loudness_range_lu", "true_peak_dbtp", "stored_gain_db", "vocal_activity",
    "lyrics_language", "text", "text_original", "lyrics_source", "notes", "words", "lines", "alignment",
    "paragraphs", "instruments", "annot_fr", "annot_offset", "info_json", "mel", "n_mels",
    "mel_hop_seconds", "f0_hz", "voiced", "f0_hop_seconds", "tempo_bpm", "beat_times",
    "key", "key_confidence", "sections", "instrumental", "tags", "prompt",
    "word_embeddings", "line_embeddings", "text_embedding",
]
SEGMENTS_COLUMNS = [
    "segment_id", "song_id", "segment_index", "source", "split", "title", "artist", "language",
    "licence", "version_group", "start", "end", "audio", "sample_rate", "duration", "text", "text_original",
    "section", "segment_words", "segment_aligned_words", "segment_notes", "instruments", "mel", "n_mels", "mel_hop_seconds", "f0_hz",
    "voiced", "f0_hop_seconds", "word_embeddings", "text_embedding",
]
CONFIGS = {"songs": SONGS_COLUMNS, "segments": SEGMENTS_COLUMNS}


def _schema(config: str, sample_rate: int | None = None) -> pa.Schema:
    fields = [pa.field(name, COLUMNS[name][0], metadata={b"description": COLUMNS[name][1].encode()})
              for name in CONFIGS[config]]
    metadata = {SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), CONFIG_KEY: config.encode()}
    if sample_rate:
        metadata[b"huggingface"] = json.dumps({"info": {"features": hf_features(config, sample_rate)}}).encode()
    return pa.schema(fields, metadata=metadata)


def songs_schema(sample_rate: int | None = None) -> pa.Schema:
    """Schema of the `songs` config (one row per recording)."""
    return _schema("songs", sample_rate)


def segments_schema(sample_rate: int | None = None) -> pa.Schema:
    """Schema of the `segments` config (one row per lyric line or fixed window)."""
    return _schema("segments", sample_rate)


def schema_for(config: str, sample_rate: int | None = None) -> pa.Schema:
    return _schema(config, sample_rate)


def _hf_feature(dtype: pa.DataType) -> dict:
    if pa.types.is_struct(dtype):
        return {dtype.field(i).name: _hf_feature(dtype.field(i).type) for i in range(dtype.num_fields)}
    if pa.types.is_list(dtype):
        return {"feature": _hf_feature(dtype.value_type), "_type": "List"}
    names = {pa.string(): "string", pa.binary(): "binary", pa.float64(): "float64",
             pa.float32(): "float32", pa.int32(): "int32", pa.bool_(): "bool"}
    return {"dtype": names[dtype], "_type": "Value"}


@lru_cache(maxsize=None)
def _hf_features_cached(config: str, sample_rate: int) -> str:
    features = {}
    for name in CONFIGS[config]:
        if name == "audio":
            # "source": every file keeps its own rate, and `datasets` decodes each at that rate.
            rate = None if sample_rate == "source" else sample_rate
            features[name] = {"sampling_rate": rate, "decode": True, "_type": "Audio"}
        else:
            features[name] = _hf_feature(COLUMNS[name][0])
    return json.dumps(features)


def hf_features(config: str, sample_rate: int) -> dict:
    """The Hugging Face `datasets` features of a config, as its JSON dict."""
    return json.loads(_hf_features_cached(config, sample_rate))
