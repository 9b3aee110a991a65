"""Beam transforms of the lyricbeam pipeline, one concern per module."""
