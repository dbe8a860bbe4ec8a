"""Per-sample cell-type marker scores (part of :mod:`itx.dense`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import compat
from .checks import check_positive_int

_COORDS = ["mni_x", "mni_y", "mni_z"]


@dataclass
class SampleScores:
    """Per-sample cell-type marker scores.

    Attributes
    ----------
    samples : pandas.DataFrame
        One row per sample: ``donor, sample_id, well_id, structure,
        hemisphere, x, y, z`` (MNI mm), in donor order.
    scores : pandas.DataFrame
        Same rows, one column per kept cell type: mean within-donor z-score
        of the type's marker genes.
    report : pandas.DataFrame
        One row per input set: ``set, n_genes_in_set, n_genes_found, kept,
        reason`` (from :func:`itx.genesets.match_gene_sets`).
    """

    samples: pd.DataFrame
    scores: pd.DataFrame
    report: pd.DataFrame

    @property
    def coords(self) -> np.ndarray:
        return self.samples[["x", "y", "z"]].to_numpy(np.float64)

    @property
    def donors(self) -> np.ndarray:
        return self.samples["donor"].to_numpy()

    @property
    def celltypes(self) -> list:
        return list(self.scores.columns)

    def table(self) -> pd.DataFrame:
        """Samples and scores side by side (the ``scores.tsv`` layout)."""
        return pd.concat([self.samples, self.scores], axis=1)


def _microarray_and_annotation(selection):
    """Donor -> (samples x genes) frame and donor -> annotation, normalised
    per sample as abagen would (see :func:`sample_scores`)."""
    from . import expression

    if isinstance(selection, (str, Path)):
        selection = expression.read_selection(selection)
    if isinstance(selection, expression.ProbeSelection):
        micro, annot = dict(selection.microarray), dict(selection.annotation)
        norm = selection.options.get("sample_norm")
        if norm is not None and not selection.sample_normed:
            compat.patch_abagen()
            from abagen import correct

            # abagen's get_interpolated_map normalises every sample of the
            # donor (norm_matched=False): the same call on all samples here
            micro = {d: correct.normalize_expression(m.T, norm=norm, ignore_warn=True).T
                     for d, m in micro.items()}
        return micro, annot
    if isinstance(selection, tuple) and len(selection) == 2:
        micro, annot = (dict(x) for x in selection)
        if set(micro) != set(annot):
            raise ValueError("the microarray and annotation dicts must have the same donors")
        return micro, annot
    raise TypeError("selection must be a ProbeSelection, a saved selection folder or a "
                    f"(microarray, annotation) pair of dicts, got {type(selection).__name__}")


def sample_scores(selection, sets: Mapping[str, Sequence[str]], min_genes: int = 5) -> SampleScores:
    """Marker score of every cell type at every AHBA tissue sample.

    Parameters
    ----------
    selection : ProbeSelection, str, os.PathLike or (dict, dict)
        The atlas-independent probe selection (:func:`itx.expression.select_probes`),
        a folder saved by :func:`itx.expression.write_selection`, or a pair
        ``(microarray, annotation)`` of donor -> DataFrame (samples x genes;
        annotation with ``mni_x, mni_y, mni_z``, same index). A selection whose
        ``sample_norm`` was not yet applied is normalised here per sample.
    sets : mapping of str -> sequence of str
        Cell type -> marker gene symbols (:func:`itx.genesets.read_gene_sets`).
    min_genes : int, optional
        Minimum number of a set's genes found in the expression data; smaller
        sets are reported and skipped.

    Returns
    -------
    SampleScores

    Raises
    ------
    ValueError
        If the donors do not share the same genes, an annotation lacks MNI
        coordinates, or no set has `min_genes` genes.

    Notes
    -----
    Each gene is z-scored across the samples of one donor (mean 0, SD 1,
    ``ddof=0``), then a sample's score is the mean z over the set's genes
    that are measured there. Within-donor standardisation removes each
    donor's per-gene offset and scale (array batch, age, post-mortem
    interval: in AHBA the donor explains more variance than anatomy for
    many genes), so a donor whose samples sit higher overall cannot bend the
    map towards the regions only it sampled. It also keeps a donor's scores
    independent of the other donors, which makes the leave-one-donor-out
    test honest. It assumes donors sampled broadly similar regions (four of
    the six AHBA donors have left hemispheres only; their scores are
    centred on the left hemisphere). A gene constant within a donor carries
    no spatial information there and is skipped for that donor.
    """
    from .genesets import match_gene_sets

    min_genes = check_positive_int(min_genes, "min_genes")
    micro, annot = _microarray_and_annotation(selection)
    if not micro:
        raise ValueError("the selection holds no donors")
    donors = list(micro)
    genes = list(micro[donors[0]].columns)
    for d in donors[1:]:
        if list(micro[d].columns) != genes:
            raise ValueError(f"donor {d} has other genes than donor {donors[0]}; select the "
                             "probes of all donors together (donor_probes 'aggregate' or 'common')")
    membership, report = match_gene_sets(dict(sets), genes, min_genes)
    if membership.shape[1] == 0:
        raise ValueError(f"no gene set has at least min_genes={min_genes} genes in the expression "
                         f"data:\n{report.to_string(index=False)}")
    # only marker genes are read: a few hundred of ~15,000 columns
    used = np.flatnonzero(membership.to_numpy().any(axis=1))
    weights = membership.to_numpy()[used]                       # (G_used, K)

    sample_rows, score_rows = [], []
    for d in donors:
        a = annot[d]
        missing = [c for c in _COORDS if c not in a.columns]
        if missing:
            raise ValueError(f"annotation of donor {d} lacks MNI coordinate column(s) {missing}")
        if not a.index.equals(micro[d].index):
            raise ValueError(f"annotation and microarray of donor {d} have different samples")
        x = micro[d].to_numpy(np.float64)[:, used]
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN genes
            z = (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0)
        measured = np.isfinite(z)
        score = np.where(measured, z, 0.0) @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            score /= measured.astype(np.float64) @ weights       # NaN if none measured
        score_rows.append(score)
        sample_rows.append(pd.DataFrame({
            "donor": str(d),
            "sample_id": np.asarray(a.index),
            "well_id": a["well_id"].to_numpy() if "well_id" in a.columns else np.asarray(a.index),
            "structure": a["structure"].to_numpy() if "structure" in a.columns else "",
            "hemisphere": a["hemisphere"].to_numpy() if "hemisphere" in a.columns else "",
            "x": a["mni_x"].to_numpy(np.float64),
            "y": a["mni_y"].to_numpy(np.float64),
            "z": a["mni_z"].to_numpy(np.float64),
        }))
    samples = pd.concat(sample_rows, ignore_index=True)
    scores = pd.DataFrame(np.vstack(score_rows), columns=list(membership.columns))
    return SampleScores(samples=samples, scores=scores, report=report)
