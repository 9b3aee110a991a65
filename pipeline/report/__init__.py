"""`lyricbeam report`: a static HTML report of an output folder, built from its shards alone.

    OUT/report/index.html     overview: counts, hours, plots, the sortable song index
    OUT/report/rejects.html   every reject with its stage, reason and detail
    OUT/report/songs/<name>.html (+ .flac, .mel.jpg)   karaoke view of one song
    OUT/report/report.css, karaoke.js, sort_table.js   (nothing is fetched from the network)
"""
from lyricbeam.pipeline.report.build import ReportError, ReportSummary, build_report

__all__ = ["ReportError", "ReportSummary", "build_report"]
