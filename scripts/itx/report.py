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
        ``package, version``, Python first.
    """
    rows = [("python", platform.python_version())]
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
