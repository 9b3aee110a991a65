"""Exports: a run's shards rewritten in the formats trainers' own loaders read.

    lrc         <split>/<id>.flac + <id>.lrc                      (line LRC; enhanced with --words)
    yue         <split>.jsonl + audio/<split>/<id>.flac            (YuE fine-tuning records)
    webdataset  <split>/<split>-000000.tar: <key>.flac + <key>.json (stable-audio-tools)
    acestep     <split>/<id>.flac + <id>.txt + metadata.csv        (ACE-Step 1.5 training folder)

One step per file; `run.export` drives them, reading the shards one row group at a time.
"""
