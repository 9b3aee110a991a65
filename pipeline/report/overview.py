"""The report's overview page (counts, hours, plots, the sortable song index) and its rejects page."""
from __future__ import annotations

import collections
import io
import json
from typing import Iterator, Optional

from apache_beam.io.filesystems import FileSystems

from lyricbeam.pipeline.report import plots
from lyricbeam.pipeline.report.html import PAGE_TAIL, esc, number, page, page_head, sort_value
from lyricbeam.pipeline.report.index import SongSummary
from lyricbeam.pipeline.stats import reason_code

SPLITS = ("train", "validation", "test")


def _jsonl_files(output_dir: str, folder: str) -> list[str]:
    try:
        found = FileSystems.match([f"{output_dir.rstrip('/')}/{folder}/*.jsonl"])[0].metadata_list
    except Exception:  # noqa: BLE001 - nothing matched
        return []
    return sorted(m.path for m in found)


def iter_jsonl(output_dir: str, folder: str) -> Iterator[dict]:
    """The records of `OUT/<folder>/*.jsonl`, one line at a time."""
    for path in _jsonl_files(output_dir, folder):
        with FileSystems.open(path) as handle:
            for line in io.TextIOWrapper(handle, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)


def write_rejects_page(output_dir: str, path: str) -> collections.Counter:
    """Write the rejects table to `path`, streaming; returns rejects per (reason, stage)."""
    counts: collections.Counter = collections.Counter()
    with FileSystems.create(path) as out:
        out.write(page_head("Rejects", "", scripts=("sort_table.js",)).encode())
        out.write(b'<nav><a href="index.html">&larr; overview</a></nav><h1>Rejects</h1>'
                  b'<p class="muted">Every input the pipeline did not write, with the stage that refused it and why. '
                  b'Click a header to sort.</p>'
                  b'<input class="filter" data-table="rejects" placeholder="filter (id, reason, detail...)">'
                  b'<table id="rejects" class="sortable" data-sort-column="1"><thead><tr><th>song</th><th>reason</th>'
                  b'<th>stage</th><th>detail</th><th class="n" data-type="number">value</th>'
                  b'<th class="n" data-type="number">threshold</th><th>source</th></tr></thead><tbody>\n')
        for reject in iter_jsonl(output_dir, "rejects"):
            counts[(reason_code(reject.get("reason", "")), reject.get("stage", ""))] += 1
            value, threshold = reject.get("value"), reject.get("threshold")
            out.write((f'<tr><td>{esc(reject.get("song_id"))}</td><td>{esc(reject.get("reason"))}</td>'
                       f'<td>{esc(reject.get("stage"))}</td><td>{esc(reject.get("detail"))}</td>'
                       f'<td class="n" data-sort="{sort_value(value)}">{_plain(value)}</td>'
                       f'<td class="n" data-sort="{sort_value(threshold)}">{_plain(threshold)}</td>'
                       f'<td>{esc(reject.get("source_path"))}</td></tr>\n').encode())
        out.write(("</tbody></table>" + PAGE_TAIL).encode())
    return counts


def _plain(value) -> str:
    if value is None:
        return ""
    return esc(f"{value:.4g}" if isinstance(value, float) else value)


def group_sizes(output_dir: str) -> collections.Counter:
    """Near-duplicate groups (audio fingerprints) by their number of members."""
    return collections.Counter(len(g.get("members", [])) for g in iter_jsonl(output_dir, "dedup"))


def _cards(songs: list[SongSummary], stats: dict, rejected: int, pages: int) -> str:
    hours = sum(s.duration for s in songs) / 3600
    items = [("songs in", stats.get("songs_in", len(songs) + rejected)), ("songs out", len(songs)),
             ("rejected", rejected), ("segments", stats.get("segments_out", "\u2014")),
             ("hours of audio", f"{hours:.2f}"), ("suspect placements", sum(s.suspect for s in songs)),
             ("song pages", pages)]
    return '<div class="cards">' + "".join(f"<div class=\"card\"><b>{esc(v)}</b><span>{esc(k)}</span></div>"
                                           for k, v in items) + "</div>"


def _hours_table(songs: list[SongSummary]) -> str:
    seconds: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for s in songs:
        seconds[s.language or "(none)"][s.split] += s.duration
    splits = [x for x in SPLITS if any(x in c for c in seconds.values())] + sorted(
        {x for c in seconds.values() for x in c} - set(SPLITS))
    head = "".join(f'<th class="n">{esc(x)}</th>' for x in splits)
    rows = []
    for language in sorted(seconds, key=lambda l: -sum(seconds[l].values())):
        cells = "".join(f'<td class="n">{seconds[language][x] / 3600:.2f}</td>' for x in splits)
        rows.append(f'<tr><td>{esc(language)}</td>{cells}<td class="n">{sum(seconds[language].values()) / 3600:.2f}</td></tr>')
    totals = "".join(f'<td class="n">{sum(c[x] for c in seconds.values()) / 3600:.2f}</td>' for x in splits)
    grand = sum(s.duration for s in songs) / 3600
    return (f'<table id="hours"><thead><tr><th>language \\ split (hours)</th>{head}<th class="n">all</th></tr></thead>'
            f'<tbody>{"".join(rows)}<tr><th>all</th>{totals}<th class="n">{grand:.2f}</th></tr></tbody></table>')


def _rejects_table(counts: collections.Counter) -> str:
    if not counts:
        return '<p class="muted">Nothing was rejected.</p>'
    rows = "".join(f'<tr><td>{esc(reason)}</td><td>{esc(stage)}</td><td class="n">{n}</td></tr>'
                   for (reason, stage), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f'<table id="reject-reasons"><thead><tr><th>reason</th><th>stage</th><th class="n">songs</th></tr></thead>'
            f'<tbody>{rows}</tbody></table><p><a href="rejects.html">All rejects, with their details &rarr;</a></p>')


def _plots(songs: list[SongSummary], groups: collections.Counter, counts: collections.Counter) -> str:
    language_hours = collections.Counter()
    for s in songs:
        language_hours[s.language or "(none)"] += s.duration / 3600
    reasons = collections.Counter()
    for (reason, _), n in counts.items():
        reasons[reason] += n
    aligned = [s for s in songs if s.aligned]
    figures = [
        ("plot-durations", plots.histogram("durations", [s.duration / 60 for s in songs], "Song durations", "minutes")),
        ("plot-languages", plots.bars("languages", list(language_hours), list(language_hours.values()),
                                      "Languages", "hours")),
        ("plot-tempo", plots.histogram("tempo", [s.tempo_bpm for s in songs], "Tempo", "BPM")),
        ("plot-confidence", plots.histogram("confidence", [s.mean_confidence for s in aligned],
                                            "Alignment mean confidence", "mean token probability", value_range=(0, 1))),
        ("plot-wer", plots.histogram("wer", [s.lyrics_match_wer for s in aligned],
                                     "Lyrics-match WER (transcript vs lyrics)", "WER")),
        ("plot-vocal-activity", plots.histogram("vocal_activity", [s.vocal_activity for s in songs
                                                                   if s.vocal_activity is not None and s.vocal_activity >= 0],
                                                "Vocal activity", "90th pct. speech probability", value_range=(0, 1))),
        ("plot-near-duplicates", plots.bars("near_duplicates", [f"{k} songs" for k in groups], list(groups.values()),
                                            "Near-duplicate groups by size", "groups")),
        ("plot-rejects", plots.bars("rejects", list(reasons), list(reasons.values()), "Rejects by reason", "songs")),
    ]
    return '<div class="plots">' + "".join(f'<figure id="{fid}">{svg}</figure>' for fid, svg in figures) + "</div>"


def _song_rows(songs: list[SongSummary], pages: dict[str, str]) -> str:
    rows = []
    for s in songs:
        name = pages.get(s.song_id)
        link = f'<a href="songs/{esc(name)}.html">{esc(s.song_id)}</a>' if name else esc(s.song_id)
        numbers = [(s.duration / 60, 2), (s.tempo_bpm, 0), (s.mean_confidence, 2), (s.lyrics_match_wer, 2),
                   (s.placement_score, 3), (s.vocal_activity if (s.vocal_activity or 0) >= 0 else None, 2)]
        cells = "".join(f'<td class="n" data-sort="{sort_value(v)}">{number(v, d)}</td>' for v, d in numbers)
        row_class = ' class="suspect"' if s.suspect else ""
        rows.append(f'<tr{row_class}><td>{link}</td><td>{esc(s.title)}</td>'
                    f'<td>{esc(s.artist)}</td><td>{esc(s.split)}</td><td>{esc(s.language)}</td>{cells}'
                    f'<td>{"yes" if s.suspect else ""}</td></tr>')
    return "\n".join(rows)


def overview_html(title: str, songs: list[SongSummary], stats: dict, counts: collections.Counter,
                  groups: collections.Counter, pages: dict[str, str], max_songs: Optional[int]) -> str:
    """The report's front page."""
    rejected = sum(counts.values())
    lyric_versions = sum(1 for n in collections.Counter(s.version_group for s in songs).values() if n > 1)
    pages_note = (f"Pages for the {len(pages)} songs a reviewer should see first (suspect placements, then the "
                  f"lowest alignment confidence); `--max-songs` sets how many." if len(pages) < len(songs)
                  else "Every song has a page.")
    body = f"""<h1>{esc(title)}</h1>
<p class="muted">schema {esc(stats.get("schema_version", ""))} &middot; built from the shards by <code>lyricbeam report</code></p>
{_cards(songs, stats, rejected, len(pages))}
<h2>Hours by language and split</h2>
{_hours_table(songs)}
<h2>Rejects by reason</h2>
{_rejects_table(counts)}
<h2>At a glance</h2>
{_plots(songs, groups, counts)}
<p class="muted">{sum(groups.values())} near-duplicate audio groups (one song of each kept); {lyric_versions} groups of
songs with near-identical lyrics (versions, covers) kept together in one split.</p>
<h2>Songs</h2>
<p class="muted">{esc(pages_note)} Sorted by alignment confidence, lowest first; click a header to sort by it.</p>
<input class="filter" data-table="songs" placeholder="filter (id, title, artist, language...)">
<table id="songs" class="sortable" data-sort-column="7"><thead><tr><th>song</th><th>title</th><th>artist</th>
<th>split</th><th>language</th><th class="n" data-type="number">minutes</th><th class="n" data-type="number">BPM</th>
<th class="n" data-type="number">mean confidence</th><th class="n" data-type="number">WER</th>
<th class="n" data-type="number">placement score</th><th class="n" data-type="number">vocal activity</th>
<th>suspect</th></tr></thead><tbody>
{_song_rows(songs, pages)}
</tbody></table>"""
    return page(title, body, "", scripts=("sort_table.js",))
