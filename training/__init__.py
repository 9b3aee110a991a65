"""Downstream training on lyricbeam `segments` shards: streaming loader, fusion and generator models."""
