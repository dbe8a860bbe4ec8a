"""Provenance for the report: package versions and the methods text."""

from __future__ import annotations

import html
import platform
from importlib import metadata

import pandas as pd

#: Distributions whose versions a methods section should cite.
PACKAGES = ("snakemake", "abagen", "neuromaps", "nilearn", "nibabel", "numpy", "scipy",
            "pandas", "scikit-learn", "matplotlib", "brainsmash", "requests")


def package_versions(packages=PACKAGES):
    """Installed versions of `packages` (``not installed`` where absent).

    Returns
    -------
    pandas.DataFrame
        ``package, version``: Python, this library (``itx``), then `packages`.
    """
    from . import __version__

    # the library itself: the copy this job imported (the checkout's scripts/itx,
    # first on PYTHONPATH), whether or not a distribution of it is installed
    rows = [("python", platform.python_version()), ("itx", __version__)]
    for name in packages:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


def methods_html(text, title="Methods"):
    """Wrap abagen's plain methods text (with its references) as a small HTML page."""
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
