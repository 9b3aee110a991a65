"""Audio in: decoding, normalisation and the measurements taken on the source-rate signal."""
