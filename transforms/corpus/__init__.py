"""Steps over the whole corpus: exact and near dedup (audio fingerprints, lyric versions), the split."""
