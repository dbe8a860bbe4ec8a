"""AHBA processing with abagen: probe filtering, sample matching, region x gene matrix.

:func:`process_ahba` runs the same steps as :func:`abagen.get_expression_data`
(and with the same abagen functions, in the same order) but keeps what that
call throws away, so that each step can be inspected and cited: the probes
kept by the intensity-based filter, every tissue sample with the region it was
assigned to and its distance from that region, per-donor matrices, sample
counts, differential stability and abagen's methods text. The final matrix
equals abagen's one-shot call with the same options (tests/test_expression.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import reduce

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

LGR = logging.getLogger(__name__)

#: abagen's own defaults for the options the workflow exposes.
ABAGEN_DEFAULTS = {
    "ibf_threshold": 0.5,
    "probe_selection": "diff_stability",
    "donor_probes": "aggregate",
    "lr_mirror": None,
    "missing": None,
    "tolerance": 2,
    "sample_norm": "srs",
    "gene_norm": "srs",
    "norm_matched": True,
    "norm_structures": False,
    "region_agg": "donors",
    "agg_metric": "mean",
    "corrected_mni": True,
    "reannotated": True,
}


@dataclass
class ExpressionResult:
    """Everything :func:`process_ahba` computes.

    Attributes
    ----------
    expression : pandas.DataFrame
        (regions, genes), index = atlas label id (``label``), NaN rows for
        regions without samples.
    donor_expression : dict of pandas.DataFrame
        Donor id -> (regions, genes) before aggregation across donors.
    counts : pandas.DataFrame
        (regions, donors) number of samples assigned to each region.
    probes : pandas.DataFrame
        Probes retained by reannotation and intensity-based filtering.
    samples : pandas.DataFrame
        One row per tissue sample kept after hemisphere checks, with its
        assigned ``label`` (0 = unassigned) and ``distance`` (mm) to the
        nearest voxel/vertex of that label.
    stability : pandas.Series
        Differential stability of each gene (mean Spearman correlation of its
        regional profile across donor pairs).
    report : str
        abagen's methods text for these options.
    """

    expression: pd.DataFrame
    donor_expression: dict
    counts: pd.DataFrame
    probes: pd.DataFrame
    samples: pd.DataFrame
    stability: pd.Series
    report: str
    options: dict = field(default_factory=dict)


def check_options(options):
    """Fill abagen defaults and reject unknown option names.

    Parameters
    ----------
    options : dict
        Subset of :data:`ABAGEN_DEFAULTS`.

    Returns
    -------
    dict
        Complete options.
    """
    unknown = sorted(set(options) - set(ABAGEN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown abagen option(s) {unknown}; expected some of {sorted(ABAGEN_DEFAULTS)}"
        )
    opts = {**ABAGEN_DEFAULTS, **options}
    if opts["region_agg"] not in ("donors", "samples"):
        # region_agg=None returns samples, not a region x gene matrix
        raise ValueError("region_agg must be 'donors' or 'samples'")
    return opts


def _sample_distances(tree, annotation, labels):
    """Distance (mm) from each sample to the nearest atlas point with its label."""
    coords = annotation[["mni_x", "mni_y", "mni_z"]].to_numpy(float)
    lab = np.asarray(labels).ravel()
    dist = np.full(len(lab), np.nan)
    atlas_lab = np.asarray(tree.atlas)
    for value in np.unique(lab[lab != 0]):
        # one small tree per assigned label; a loop over labels, not samples
        sub = cKDTree(tree.coords[atlas_lab == value])
        sel = lab == value
        dist[sel] = sub.query(coords[sel], k=1)[0]
    return dist


def process_ahba(atlas, atlas_info, data_dir, donors="all", **options):
    """Run abagen's processing pipeline and keep every intermediate.

    Parameters
    ----------
    atlas : str, os.PathLike, niimg-like or tuple
        MNI152 label image, or (left, right) fsaverage5 label GIFTIs.
    atlas_info : str, os.PathLike or pandas.DataFrame
        abagen ``atlas_info`` (``id, label, hemisphere, structure``).
    data_dir : str or os.PathLike
        abagen data directory holding ``microarray/normalized_microarray_donor*``.
        abagen downloads missing donors; the workflow fetches them beforehand.
    donors : 'all' or list of str
        AHBA donor ids.
    **options
        abagen options (see :data:`ABAGEN_DEFAULTS`).

    Returns
    -------
    ExpressionResult
    """
    from abagen import correct, datasets, images, io, probes_, reporting, samples_, utils
    from abagen.allen import _interpolate_missing, _match_centroids, _get_weights
    from abagen.utils import first_entry, flatten_dict

    opts = check_options(options)
    data_dir = str(data_dir)
    # abagen tells surfaces from volumes by string suffix
    if isinstance(atlas, (tuple, list)):
        atlas = tuple(str(a) for a in atlas)
    elif isinstance(atlas, os.PathLike):
        atlas = str(atlas)
    if isinstance(atlas_info, pd.DataFrame):
        atlas_info = atlas_info.loc[:, ["id", "label", "hemisphere", "structure"]]
    atlas, group_atlas = images.coerce_atlas_to_dict(atlas, donors, atlas_info)
    if not group_atlas:
        raise ValueError("donor-specific (native-space) atlases are not supported")
    files = datasets.fetch_microarray(data_dir=data_dir, donors=donors, verbose=0)
    if opts["probe_selection"] == "diff_stability" and len(files) == 1:
        raise ValueError(
            "probe_selection 'diff_stability' needs at least two donors; "
            "choose another probe_selection or more donors"
        )
    all_labels = first_entry(atlas).labels

    probe_info = io.read_probes(first_entry(files, "probes"))
    if opts["reannotated"]:
        probe_info = probes_.reannotate_probes(probe_info)
    probe_info = probe_info.dropna(subset=["entrez_id"])

    for donor, data in files.items():
        annot = samples_.update_coords(
            data["annotation"], corrected_mni=opts["corrected_mni"], native_space=None
        )
        if opts["lr_mirror"] is not None:
            annot = samples_.mirror_samples(annot, data["ontology"], swap=opts["lr_mirror"])
        data["annotation"] = samples_.drop_mismatch_samples(annot, data["ontology"])
    annotation = flatten_dict(files, "annotation")

    probe_info = probes_.filter_probes(
        flatten_dict(files, "pacall"), annotation, probe_info, threshold=opts["ibf_threshold"]
    )
    microarray = probes_.collapse_probes(
        flatten_dict(files, "microarray"), annotation, probe_info,
        method=opts["probe_selection"], donor_probes=opts["donor_probes"],
    )

    centroids = []
    counts = pd.DataFrame(
        np.zeros((len(all_labels) + 1, len(microarray)), dtype=int),
        index=np.append([0], all_labels), columns=list(microarray.keys()),
    )
    sample_tables = []
    missing = opts["missing"]
    for subj in microarray:
        if opts["lr_mirror"] is not None:
            idx = pd.Series(range(1, len(microarray[subj]) + 1), name="sample_id")
            microarray[subj].index = idx.copy()
            annotation[subj].index = idx.copy()

        labels = atlas[subj].label_samples(annotation[subj], opts["tolerance"])
        table = annotation[subj].copy()
        table.insert(0, "donor", subj)
        table["label"] = labels["label"].to_numpy()
        table["distance"] = _sample_distances(atlas[subj], annotation[subj], labels)
        sample_tables.append(table.reset_index())

        nz = np.asarray(labels != 0).squeeze()
        if nz.sum() == 0:
            LGR.warning("No samples matched to atlas for donor %s", subj)
            microarray[subj].index = labels["label"]
            if missing == "centroids":
                centroids += [(pd.DataFrame(), {})]
            continue
        if opts["norm_matched"]:
            microarray[subj] = microarray[subj].loc[nz]
            annotation[subj] = annotation[subj].loc[nz]
            labels = labels.loc[nz]
        annot = annotation[subj][["structure"]] if opts["norm_structures"] else None
        if opts["sample_norm"] is not None:
            microarray[subj] = correct.normalize_expression(
                microarray[subj].T, norm=opts["sample_norm"], ignore_warn=True
            ).T
        if opts["gene_norm"] is not None:
            microarray[subj] = correct.normalize_expression(
                microarray[subj], norm=opts["gene_norm"], structures=annot, ignore_warn=True
            )
        labs, num = np.unique(labels, return_counts=True)
        counts.loc[labs, subj] = num

        if missing == "interpolate":
            exp, lab = _interpolate_missing(atlas[subj], labels, microarray[subj], annotation[subj])
            microarray[subj] = pd.concat([microarray[subj], exp])
            labels = pd.concat([labels, lab])
        elif missing == "centroids":
            centroids += [_match_centroids(atlas[subj], labels, microarray[subj], annotation[subj])]

        microarray[subj] = (
            pd.merge(microarray[subj], labels, on="sample_id")
            .set_index("label")
            .rename_axis("gene_symbol", axis=1)
        )

    if missing == "centroids":
        # regions empty in every donor get the distance-weighted average of the
        # samples nearest their centroid, the same value in every donor
        empty = reduce(set.intersection, [set(f.index) for f, d in centroids])
        for roi in sorted(empty):
            exp, dist = zip(*[(micro.loc[[roi]], d.get(roi)) for micro, d in centroids])
            weights = _get_weights(np.asarray(dist)[:, None])
            exp = pd.DataFrame(
                (pd.concat(exp) * weights).sum(axis=0) / weights.sum(),
                columns=pd.Series([roi], name="label"),
            ).T
            for subj in microarray:
                microarray[subj] = pd.concat([microarray[subj], exp])

    donor_expression = samples_.aggregate_samples(
        microarray, labels=all_labels, region_agg="donors",
        agg_metric=opts["agg_metric"], return_donors=True,
    )
    if opts["region_agg"] == "donors":
        # the across-donor step of abagen.samples_.aggregate_samples, reusing
        # the per-donor matrices instead of aggregating every sample twice
        metric = utils.check_metric(opts["agg_metric"])
        expression = pd.concat(donor_expression.values()).groupby("label").aggregate(metric)
        drop = expression.dropna(axis=0, how="all").isna().any(axis=0)
        expression = expression.drop(drop[drop].index, axis=1)
    else:
        expression = samples_.aggregate_samples(
            microarray, labels=all_labels, region_agg="samples",
            agg_metric=opts["agg_metric"], return_donors=False,
        )
    donor_expression = {d: e.loc[:, expression.columns] for d, e in donor_expression.items()}
    counts = counts.drop([0], axis=0)
    counts.index.name = "label"

    if len(donor_expression) > 1:
        _, ds = correct.keep_stable_genes(
            list(donor_expression.values()), threshold=0, return_stability=True
        )
        stability = pd.Series(ds, index=expression.columns, name="stability")
    else:
        stability = pd.Series(np.nan, index=expression.columns, name="stability")

    report = reporting.Report(
        atlas, atlas_info=first_entry(atlas).atlas_info,
        ibf_threshold=opts["ibf_threshold"], probe_selection=opts["probe_selection"],
        donor_probes=opts["donor_probes"], lr_mirror=opts["lr_mirror"],
        missing=opts["missing"], tolerance=opts["tolerance"],
        sample_norm=opts["sample_norm"], gene_norm=opts["gene_norm"],
        norm_matched=opts["norm_matched"], norm_structures=opts["norm_structures"],
        region_agg=opts["region_agg"], agg_metric=opts["agg_metric"],
        corrected_mni=opts["corrected_mni"], reannotated=opts["reannotated"],
        donors=donors, return_donors=False, data_dir=data_dir, counts=counts,
        n_probes=len(probe_info), n_genes=expression.shape[1],
    ).body

    samples = pd.concat(sample_tables, ignore_index=True)
    probes = probe_info.reset_index()
    return ExpressionResult(
        expression=expression, donor_expression=donor_expression, counts=counts,
        probes=probes, samples=samples, stability=stability, report=report,
        options=opts,
    )


def label_to_region(frame, info):
    """Replace an atlas-id index by region names, in atlas order.

    Parameters
    ----------
    frame : pandas.DataFrame
        Indexed by atlas label id.
    info : pandas.DataFrame
        Region table with ``id`` and ``region``.

    Returns
    -------
    pandas.DataFrame
        Rows for every atlas region (NaN where `frame` has none), first
        column ``region``.
    """
    out = frame.reindex(info["id"].to_numpy())
    out.index = pd.Index(info["region"].to_numpy(), name="region")
    return out.reset_index()


def output_tables(result, info):
    """The tidy tables the expression rule writes.

    Parameters
    ----------
    result : ExpressionResult
        From :func:`process_ahba`.
    info : pandas.DataFrame
        Region table of the atlas (``id``, ``region``).

    Returns
    -------
    dict of pandas.DataFrame
        ``expression`` (``region`` + genes, every atlas region), ``donors``
        (donor id -> the same per donor), ``probes``, ``samples`` (with
        ``region``), ``counts`` (``region``, one column per donor, ``total``)
        and ``stability`` (``gene, stability``).
    """
    names = dict(zip(info["id"].astype(int), info["region"]))
    samples = result.samples.copy()
    samples["region"] = samples["label"].map(names).fillna("")
    counts = result.counts.copy()
    counts.columns = [str(c) for c in counts.columns]
    counts["total"] = counts.sum(axis=1)
    stability = result.stability.rename_axis("gene").reset_index()
    return {
        "expression": label_to_region(result.expression, info),
        "donors": {str(d): label_to_region(e, info) for d, e in result.donor_expression.items()},
        "probes": result.probes,
        "samples": samples,
        "counts": label_to_region(counts, info).fillna(0).astype({c: int for c in counts.columns}),
        "stability": stability,
    }
