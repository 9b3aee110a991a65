"""TranscribeLyrics: an audio-folder song that came without a lyrics file gets its transcript as
lyrics (`--transcribe-missing-lyrics`), marked `lyrics_source = "transcript"`.

The transcript's words keep their times; lines are cut at pauses, stanzas at long ones, so
the alignment stage places them like LRC lines (at the transcript's line onsets).
"""
from __future__ import annotations

import numpy as np

from lyricbeam.schemas.records import AnnotationEvent, Song
from lyricbeam.transforms.alignment.config import AlignConfig
from lyricbeam.transforms.rejects import RejectError, RejectingDoFn

# A pause this long between heard words starts a new line; sung lines are 2-5 s with breaths
# of 0.3-0.8 s inside them.
LINE_PAUSE_S = 1.0
STANZA_PAUSE_S = 4.0  # a pause this long (an instrumental break) starts a new stanza
MAX_LINE_WORDS = 14  # a line running on without a pause is cut here, as lyrics sites print them


def transcript_events(heard) -> tuple[list[AnnotationEvent], list[AnnotationEvent], list[AnnotationEvent]]:
    """`(words, lines, paragraphs)` from transcribed words (`HeardWord`: text, start, end, confidence)."""
    words, lines, paragraphs = [], [], []
    line_words: list = []

    def close_line() -> None:
        if line_words:
            lines.append(AnnotationEvent(" ".join(w.text for w in line_words), line_words[0].start,
                                         line_words[-1].end, parent=len(paragraphs) - 1))
            line_words.clear()

    previous_end = None
    for word in heard:
        text = word.text.strip()
        if not text:
            continue
        pause = None if previous_end is None else word.start - previous_end
        if pause is None or pause >= STANZA_PAUSE_S:
            close_line()
            paragraphs.append(AnnotationEvent("", word.start, word.end))
        elif pause >= LINE_PAUSE_S or len(line_words) >= MAX_LINE_WORDS:
            close_line()
        words.append(AnnotationEvent(text, word.start, word.end, parent=len(lines)))
        line_words.append(word)
        previous_end = word.end
        last = paragraphs[-1]
        paragraphs[-1] = AnnotationEvent(last.text, last.start, word.end)
    close_line()
    return words, lines, paragraphs


class TranscribeLyrics(RejectingDoFn):
    """Song -> song with its transcript as lyrics where it is to be transcribed; others pass.

    A song marked for transcription whose vocal activity is below `min_vocal_activity` is kept
    as an instrumental (nobody sings: a transcript would be hallucinated words); one whose
    transcript holds no word is rejected `no_lyrics`.
    """

    stage = "transcribe"

    def __init__(self, config: AlignConfig, min_vocal_activity: float):
        super().__init__()
        self.config, self.min_vocal_activity = config, min_vocal_activity

    def transform(self, song: Song) -> Song:
        if not song.transcribe_lyrics:
            return song
        if 0 <= song.vocal_activity < self.min_vocal_activity:
            self._count("instrumental")
            return song.replace(transcribe_lyrics=False)
        from lyricbeam.transforms.alignment.transcribe import transcribe
        from lyricbeam.transforms.audio.clean import lyrics_text, normalize_events
        from lyricbeam.transforms.ingest.audiofolder import language_name
        from lyricbeam.transforms.quality import LANGUAGE_CODES, detect_language
        from lyricbeam.transforms.storage.audio_store import song_length, song_samples

        audio = np.asarray(song_samples(song, 0, song_length(song)), np.float32)
        if song.sample_rate != 16000:
            import soxr

            audio = soxr.resample(audio, song.sample_rate, 16000).astype(np.float32)
        language = LANGUAGE_CODES.get(song.language.strip().lower(), "")
        heard, _ = transcribe(self.config.transcriber, audio, language, model_dir=self.config.transcribe_model_dir,
                              checkpoint=self.config.whisper_timestamped_checkpoint, threads=self.config.threads,
                              seed=self.config.transcribe_seed)
        words, lines, paragraphs = transcript_events(heard)
        if not words:
            raise RejectError("no_lyrics", "no lyrics file, and the transcript heard no words")
        text_original = lyrics_text(lines, words, paragraphs)
        words, lines, paragraphs = normalize_events(words), normalize_events(lines), normalize_events(paragraphs)
        text = lyrics_text(lines, words, paragraphs)
        if not song.language:
            song = song.replace(language=language_name(detect_language(text)[0]))
        self._count("transcribed")
        return song.replace(words=words, lines=lines, paragraphs=paragraphs, text=text, text_original=text_original,
                            lyrics_source="transcript", transcribe_lyrics=False)
