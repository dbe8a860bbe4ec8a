"""Small shared pieces of the workflow's own HTML pages (report items)."""

from __future__ import annotations

import html

import numpy as np

__all__ = ["PAGE_CSS", "fmt_number", "page"]

#: Style of every page the workflow writes for the report.
PAGE_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
            "padding:.2em .5em;text-align:left}th{background:#eee}.sig{font-weight:bold}"
            ".depends{color:#a04000}.muted{color:#777}")


def fmt_number(v, digits: int = 3) -> str:
    """A statistic for a table cell: ``digits`` significant digits, small values
    in exponent form, ``n/a`` for missing or non-finite values."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    v = float(v)
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def page(title: str, body: str) -> str:
    """A complete HTML document: escaped `title`, `body` as given (already HTML)."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{PAGE_CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"{body}\n</body></html>\n")
