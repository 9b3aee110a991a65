"""What lands on disk: work-directory audio, per-song row files, the sharded Parquet writer."""
