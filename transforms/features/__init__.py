"""Features of a song: log-mel, f0, tempo and beats (`acoustic`), word and line embeddings (`embed`)."""
