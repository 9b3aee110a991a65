"""Lyrics alignment: the Align stage, line placement from transcripts, transcription, Whisper weights."""
