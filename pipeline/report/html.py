"""Small HTML helpers shared by the report's pages: escaping, numbers, the page shell."""
from __future__ import annotations

import html
from typing import Optional

ASSETS = ("report.css", "karaoke.js", "sort_table.js")


def esc(value) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def number(value: Optional[float], digits: int = 2) -> str:
    """`value` rounded for display; an em dash where there is none."""
    return "\u2014" if value is None else f"{value:.{digits}f}"


def sort_value(value: Optional[float]) -> str:
    """The `data-sort` of a numeric cell; empty sorts last whichever the direction."""
    return "" if value is None else repr(float(value))


def page_head(title: str, assets_prefix: str, scripts: tuple[str, ...] = ()) -> str:
    """A page's start up to its `<body>`: its title, the report's stylesheet and `scripts`, all by
    relative path (the report opens from `file://`, and from wherever it is published, with nothing fetched)."""
    tags = "".join(f'<script src="{assets_prefix}{s}" defer></script>' for s in scripts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><link rel=\"stylesheet\" href=\"{assets_prefix}report.css\">{tags}"
            "</head><body>\n")


PAGE_TAIL = "\n</body></html>\n"


def page(title: str, body: str, assets_prefix: str, scripts: tuple[str, ...] = ()) -> str:
    """A whole page (`page_head`, `body`, the closing tags)."""
    return page_head(title, assets_prefix, scripts) + body + PAGE_TAIL
