"""Reading the inputs: song discovery and the DALI and MusicNet annotation readers."""
