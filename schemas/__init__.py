"""Versioned record types and pyarrow schemas of the lyricbeam datasets."""
from lyricbeam.schemas.records import AnnotationEvent, Reject, Song
from lyricbeam.schemas.arrow import SCHEMA_VERSION, segments_schema, songs_schema

__all__ = ["AnnotationEvent", "Reject", "Song", "SCHEMA_VERSION", "segments_schema", "songs_schema"]
