"""Pipeline assembly, configuration and the `lyricbeam` command line."""
