"""AHBA processing with abagen: probe filtering, sample matching, region x gene matrix.

:func:`process_ahba` runs the same steps as :func:`abagen.get_expression_data`
(and with the same abagen functions, in the same order) but keeps what that
call throws away, so that each step can be inspected and cited: the probes
kept by the intensity-based filter, every tissue sample with the region it was
assigned to and its distance from that region, per-donor matrices, sample
counts, differential stability and abagen's methods text. The final matrix
equals abagen's one-shot call with the same options (tests/test_expression.py).

The pipeline is split where the atlas first matters: :func:`select_probes`
(probe filtering and selection, atlas-independent, saved once with
:func:`write_selection`) and the rest of :func:`process_ahba` (matching,
normalisation, aggregation), which can start from a saved selection.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import partial, reduce

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from . import compat
from .tables import atomic_path

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


def _fast_assign_sample(tree, possible, sample):
    """abagen's ``AtlasTree._assign_sample`` with its label check done in plain Python.

    abagen checks each candidate label's hemisphere and structure with
    pandas ``.loc`` look-ups (``matching._check_label``), ~5 ms per sample:
    16 s of a full-size volumetric run. This is the same decision with a dict
    look-up: same candidates, same order, same tie-breaks (abagen's
    ``closest_centroid``). Bound to one AtlasTree instance by
    :func:`_speed_up_matching`; tests/test_expression.py checks equality.
    """
    compat.patch_abagen()
    from abagen.matching import closest_centroid

    labels, counts = np.unique(possible, return_counts=True)
    if tree.atlas_info is not None:
        lookup = tree._itx_lookup
        if all(lab in lookup for lab in labels.tolist()):
            # abagen leaves the labels unchecked when one is not in atlas_info
            # (its KeyError branch); the same here
            hemi = sample["hemisphere"].iat[0]
            struct = sample["structure"].iat[0]
            keep = np.array([
                (lookup[lab][1] == struct) if lookup[lab][0] == "B"
                else (lookup[lab][0] == hemi and lookup[lab][1] == struct)
                for lab in labels.tolist()
            ], dtype=bool)
            labels = labels.copy()
            labels[~keep] = 0
        labels, counts = np.unique(labels[labels.nonzero()], return_counts=True)
    if labels.size == 0:
        return 0
    if labels.size == 1:
        return labels[0]
    indmax, = np.where(counts == counts.max())
    if indmax.size == 1:
        return labels[indmax[0]]
    coords = sample[["mni_x", "mni_y", "mni_z"]]
    centroids = np.vstack([tree.centroids[lab] for lab in labels])
    # closest_centroid returns one index per row of `coords` (here one row):
    # the label itself, as abagen's caller stores it
    return labels[closest_centroid(coords, centroids)[0]]


def _speed_up_matching(tree):
    """Use :func:`_fast_assign_sample` for this (volumetric) AtlasTree only."""
    if not tree.volumetric:
        return tree
    if tree.atlas_info is not None:
        info = tree.atlas_info
        tree._itx_lookup = {
            int(i): (h, st) for i, h, st in
            zip(info.index, info["hemisphere"], info["structure"])
        }
    tree._assign_sample = lambda possible, sample: _fast_assign_sample(tree, possible, sample)
    return tree


def _groupby_index(microarray, labels, metric):
    """abagen.samples_.groupby_index without its slow append of empty regions.

    abagen appends an all-NaN object frame for regions without samples;
    pandas then checks every cell of it (seconds for 15,000 genes). A
    reindex inserts the same NaN rows; the group values are computed by the
    same ``groupby(...).aggregate`` call, so the result is identical.
    """
    grouped = microarray.groupby("label").aggregate(metric)
    index = np.union1d(grouped.index.to_numpy(), np.asarray(labels))
    out = grouped.reindex(pd.Index(index, name="label"))
    return out.drop([0], axis=0) if 0 in out.index else out


def _cached_files(cache_dir, donors):
    """abagen's ``fetch_microarray`` dict, built from the parsed-CSV cache.

    ``microarray``/``pacall`` are cache files (read with itx.cache.read_rows; probe
    ids); the small tables stay paths that abagen's readers open themselves.
    """
    compat.patch_abagen()
    from abagen import datasets

    from itx import cache

    files = {}
    for donor in datasets.check_donors(donors):
        folder = cache.donor_cache_dir(cache_dir, donor)
        if not cache.is_cache_complete(folder):
            raise FileNotFoundError(
                f"no complete AHBA cache for donor {donor} in {folder}; build it with "
                "itx.cache.build_donor_cache (the workflow's ahba_cache rule does)"
            )
        files[donor] = cache.read_donor_cache(folder)
    return files


def _filter_probes_cached(files, annotation, probes, threshold):
    """abagen.probes_.filter_probes on cached PACall arrays.

    The same integer sums and comparison as abagen, but on the uint8 array
    selected by position instead of a parsed int64 DataFrame.
    """
    from itx import cache

    threshold = np.clip(threshold, 0.0, 1.0)
    signal, n_samp = np.zeros(len(probes), dtype=int), 0
    for donor, data in files.items():
        rows = _probe_rows(data["probe_ids"], probes.index, data["probes"])
        # sample ids are 1-based column positions (abagen's read_pacall)
        cols = np.asarray(annotation[donor].index, dtype=np.int64) - 1
        block = cache.read_rows(data["pacall"], rows)[:, cols]
        n_samp += block.shape[-1]
        signal += block.sum(axis=1, dtype=np.int64)
    keep = (signal / n_samp) >= threshold
    return probes[keep]


def _probe_rows(probe_ids, wanted, where):
    """Row positions of probe ids `wanted` in a cached matrix."""
    rows = pd.Index(probe_ids).get_indexer(np.asarray(wanted))
    if (rows < 0).any():
        missing = np.asarray(wanted)[rows < 0][:5].tolist()
        raise KeyError(
            f"probe id(s) {missing} of {where} are not in the expression matrix of the "
            "same donor; the cache or donor folder is inconsistent, rebuild it"
        )
    return rows


def _cached_microarray(data, probe_ids):
    """(probes, samples) DataFrame of the cached rows abagen will select.

    Only the rows of `probe_ids` (the filtered probes) are read from the
    cache, with the index and column labels abagen's read_microarray
    gives, so abagen's own ``.loc`` selection then behaves as on a parsed CSV.
    """
    from itx import cache

    rows = _probe_rows(data["probe_ids"], probe_ids, data["probes"])
    frame = pd.DataFrame(cache.read_rows(data["microarray"], rows),
                         index=pd.Index(data["probe_ids"][rows], name="probe_id"))
    frame.columns = pd.Series(range(1, frame.shape[1] + 1), name="sample_id")
    return frame


class _abagen_data_dir:
    """Temporarily point ``$ABAGEN_DATA`` at `data_dir`.

    abagen's ``rnaseq`` probe selection fetches the RNA-seq files without
    passing on ``data_dir`` (it uses ``$ABAGEN_DATA`` or ``~/abagen-data``),
    so without this it would download them again elsewhere.
    """

    def __init__(self, data_dir):
        self.data_dir = data_dir

    def __enter__(self):
        self.old = os.environ.get("ABAGEN_DATA")
        if self.data_dir is not None:
            os.environ["ABAGEN_DATA"] = str(self.data_dir)

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("ABAGEN_DATA", None)
        else:
            os.environ["ABAGEN_DATA"] = self.old


#: The options probe selection depends on. None involves the atlas: abagen
#: filters probes, mirrors/drops samples and picks one probe per gene from
#: every sample kept by the hemisphere checks, before any sample is matched
#: to a region. Everything after (matching, normalisation of the matched
#: samples, aggregation) depends on the atlas.
SELECTION_OPTIONS = ("ibf_threshold", "probe_selection", "donor_probes", "lr_mirror",
                     "corrected_mni", "reannotated", "sample_norm")

#: sample_norm methods computed per sample from that sample's values only
#: (medians, quantiles, min/max and elementwise arithmetic, all exact per
#: column): normalising every sample once gives, for each matched sample,
#: the same bits as normalising only the matched ones (norm_matched=True),
#: so this step can move before the atlas. Methods with means (zscore,
#: sigmoids) are left after it: a mean's rounding may depend on the layout.
_PER_SAMPLE_NORMS = ("srs", "rs", "minmax")

#: Bumped whenever the layout of a saved selection changes.
SELECTION_VERSION = 1


@dataclass
class ProbeSelection:
    """The atlas-independent first half of abagen's pipeline.

    Attributes
    ----------
    microarray : dict of pandas.DataFrame
        Donor id -> (samples, genes), one probe per gene, every sample kept
        by the hemisphere checks (abagen's ``collapse_probes`` output).
    annotation : dict of pandas.DataFrame
        Donor id -> sample annotation (coordinates updated, mirrored if
        requested), same index as `microarray`.
    probes : pandas.DataFrame
        Probes retained by reannotation and intensity-based filtering.
    donors : 'all' or list of str
        The donors argument as given (abagen's report quotes it).
    options : dict
        The :data:`SELECTION_OPTIONS` used.
    sample_normed : bool
        Whether `microarray` is already normalised with ``sample_norm``
        (see :data:`_PER_SAMPLE_NORMS`).
    """

    microarray: dict
    annotation: dict
    probes: pd.DataFrame
    donors: object
    options: dict
    sample_normed: bool = False


def _donor_ids(donors):
    compat.patch_abagen()
    from abagen import datasets

    return [str(d) for d in datasets.check_donors(donors)]


def selection_key(options, donors) -> str:
    """Folder name of a probe selection: a digest of its options and donors.

    The selection lives in the AHBA folder that several studies may share
    (``resources_dir``); each study's Snakemake records its own parameters, so
    one study changing an option would otherwise overwrite, or be handed, the
    selection another study made with other options.

    Parameters
    ----------
    options : mapping
        The selection options (``ibf_threshold``, ``probe_selection``, ...).
    donors : sequence of str
        Donor ids, in the order given.
    """
    import hashlib
    import json

    text = json.dumps({"options": {k: options[k] for k in sorted(options)},
                       "donors": [str(d) for d in donors]}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def select_probes(data_dir=None, donors="all", *, cache_dir=None, rnaseq_dir=None, **options):
    """Filter probes and pick one probe per gene: the atlas-independent stage.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        abagen data directory with ``microarray/normalized_microarray_donor*``.
    donors : 'all' or list of str
        AHBA donor ids.
    cache_dir : str or os.PathLike, optional
        Root of the parsed-CSV cache (:mod:`itx.cache`); give this or `data_dir`.
    rnaseq_dir : str or os.PathLike, optional
        abagen data directory holding ``rnaseq/rnaseq_donor{id}`` for
        ``probe_selection='rnaseq'`` (defaults to `data_dir`).
    **options
        abagen options; only :data:`SELECTION_OPTIONS` may be given.
        ``sample_norm`` is applied here when that gives the same result
        (:data:`_PER_SAMPLE_NORMS`, no missing values), else left to
        :func:`process_ahba`.

    Returns
    -------
    ProbeSelection
    """
    other = sorted(set(options) - set(SELECTION_OPTIONS))
    if other:
        raise ValueError(f"option(s) {other} do not affect probe selection; give only "
                         f"some of {list(SELECTION_OPTIONS)}")
    opts = check_options(options)
    if (data_dir is None) == (cache_dir is None):
        raise ValueError("give exactly one of data_dir (AHBA CSVs) and cache_dir (parsed cache)")
    data_dir = None if data_dir is None else str(data_dir)
    if opts["probe_selection"] == "rnaseq":
        rnaseq_dir = rnaseq_dir if rnaseq_dir is not None else data_dir
        if rnaseq_dir is None:
            raise ValueError("probe_selection 'rnaseq' needs rnaseq_dir (the folder holding "
                             "rnaseq/rnaseq_donor9861 and/or rnaseq_donor10021)")
        with _abagen_data_dir(rnaseq_dir):
            return _select(data_dir, donors, cache_dir, opts)
    return _select(data_dir, donors, cache_dir, opts)


def process_ahba(atlas, atlas_info, data_dir=None, donors="all", *, cache_dir=None,
                 selection=None, rnaseq_dir=None, stability_threshold=None,
                 stability_percentile=False, **options):
    """Run abagen's processing pipeline and keep every intermediate.

    Parameters
    ----------
    atlas : str, os.PathLike, niimg-like or tuple
        MNI152 label image, or (left, right) fsaverage5 label GIFTIs.
    atlas_info : str, os.PathLike or pandas.DataFrame
        abagen ``atlas_info`` (``id, label, hemisphere, structure``).
    data_dir : str or os.PathLike, optional
        abagen data directory holding ``microarray/normalized_microarray_donor*``
        (CSVs parsed on every call, as abagen does). abagen downloads missing
        donors; the workflow fetches them beforehand.
    donors : 'all' or list of str
        AHBA donor ids.
    cache_dir : str or os.PathLike, optional
        Root of the parsed-CSV cache (:mod:`itx.cache`, one ``donor{id}/``
        folder per donor). When given, the CSVs are not read at all; the
        result is the same as from `data_dir`.
    selection : ProbeSelection, str or os.PathLike, optional
        The atlas-independent stage, from :func:`select_probes` or saved by
        :func:`write_selection` (a folder). Its options and donors must equal
        `options` and `donors`; the result is the same as without it.
    rnaseq_dir : str or os.PathLike, optional
        abagen data directory holding ``rnaseq/rnaseq_donor{id}`` for
        ``probe_selection='rnaseq'`` (defaults to `data_dir`).
    stability_threshold : float, optional
        Keep only genes whose differential stability is at least this
        (abagen's ``keep_stable_genes``: Spearman correlation of the gene's
        regional profile between every pair of donors, averaged over pairs;
        Hawrylycz et al. 2015). None keeps every gene. Needs two donors.
    stability_percentile : bool
        Read `stability_threshold` as a quantile of the genes' stability
        (0.5 keeps the more stable half) instead of a correlation.
    **options
        abagen options (see :data:`ABAGEN_DEFAULTS`).

    Returns
    -------
    ExpressionResult
        With a stability filter, `expression` and `donor_expression` hold the
        kept genes only; `stability` still lists every gene.

    Raises
    ------
    ValueError
        If not exactly one of `data_dir`, `cache_dir` and `selection` is
        given, or `selection` was made with other options or donors.
    """
    opts = check_options(options)
    if sum(x is not None for x in (data_dir, cache_dir, selection)) != 1:
        raise ValueError("give exactly one of data_dir (AHBA CSVs), cache_dir (parsed cache) "
                         "and selection (probe selection)")
    if selection is None:
        selection = select_probes(data_dir, donors, cache_dir=cache_dir, rnaseq_dir=rnaseq_dir,
                                  **{k: opts[k] for k in SELECTION_OPTIONS})
    elif not isinstance(selection, ProbeSelection):
        selection = read_selection(selection)
    wanted = {k: opts[k] for k in SELECTION_OPTIONS}
    if selection.options != wanted:
        diff = sorted(k for k in wanted if selection.options.get(k) != wanted[k])
        raise ValueError(f"the probe selection was made with other options ({diff}: "
                         f"{[selection.options.get(k) for k in diff]}, not "
                         f"{[wanted[k] for k in diff]}); select the probes again")
    if _donor_ids(selection.donors) != _donor_ids(donors):
        raise ValueError(f"the probe selection holds donors {_donor_ids(selection.donors)}, "
                         f"not {_donor_ids(donors)}; select the probes again")
    if stability_threshold is not None and len(_donor_ids(donors)) < 2:
        raise ValueError("expression.stability_threshold needs at least two donors "
                         "(differential stability compares donors); list more donors in "
                         "ahba.donors or set stability_threshold to null")
    data_dir = None if data_dir is None else str(data_dir)
    result = _process(atlas, atlas_info, data_dir, donors, selection, opts)
    if stability_threshold is not None:
        result = keep_stable(result, stability_threshold, percentile=stability_percentile)
    return result


def keep_stable(result, threshold, *, percentile=False):
    """Keep the genes of a result whose differential stability passes a threshold.

    Parameters
    ----------
    result : ExpressionResult
    threshold : float
        Minimum stability, or with `percentile` a quantile in [0, 1].
    percentile : bool

    Returns
    -------
    ExpressionResult
        `expression` and `donor_expression` restricted to the kept genes (in
        their order); `stability` unchanged (every gene); the methods text
        says how many genes were kept.
    """
    compat.patch_abagen()
    from abagen import correct

    # abagen's own filter, so the kept genes are exactly abagen's for these options
    donors = list(result.donor_expression)
    kept, _ = correct.keep_stable_genes(
        [result.donor_expression[d] for d in donors], threshold=threshold,
        percentile=percentile, rank=True, return_stability=True,
    )
    genes = kept[0].columns
    n_all = result.expression.shape[1]
    if len(genes) == 0:
        raise ValueError(f"expression.stability_threshold {threshold} keeps none of the "
                         f"{n_all} genes; lower it (stability ranges over "
                         f"{result.stability.min():.2f}..{result.stability.max():.2f})")
    rule = (f"in the top {100 * (1 - threshold):g}% of differential stability"
            if percentile else f"with differential stability >= {threshold:g}")
    note = (f" Genes were then filtered by differential stability (the mean Spearman "
            f"correlation of each gene's regional expression profile across all pairs of "
            f"donors; Hawrylycz et al., 2015, Nat Neurosci 18:1832), keeping the "
            f"{len(genes):,} of {n_all:,} genes {rule} (abagen's keep_stable_genes).")
    return ExpressionResult(
        expression=result.expression.loc[:, genes],
        donor_expression={d: result.donor_expression[d].loc[:, genes] for d in donors},
        counts=result.counts, probes=result.probes, samples=result.samples,
        stability=result.stability, report=_insert_before_references(result.report, note),
        options={**result.options, "stability_threshold": threshold,
                 "stability_percentile": percentile},
    )


def _insert_before_references(report, text):
    """abagen's methods text with `text` appended to its body, before its references."""
    # abagen's sanitised text: '<br> ' became a blank line, '<p>' a newline
    cut = report.find("\n\nREFERENCES")
    if cut < 0:
        return report.rstrip() + text + "\n"
    return report[:cut].rstrip() + text + report[cut:]


def _select(data_dir, donors, cache_dir, opts):
    """The body of :func:`select_probes` (options already checked)."""
    compat.patch_abagen()
    from abagen import datasets, io, probes_, samples_
    from abagen.utils import first_entry, flatten_dict

    if cache_dir is not None:
        files = _cached_files(cache_dir, donors)
    else:
        files = datasets.fetch_microarray(data_dir=data_dir, donors=donors, verbose=0)
    if opts["probe_selection"] == "diff_stability" and len(files) == 1:
        raise ValueError(
            "probe_selection 'diff_stability' needs at least two donors; "
            "choose another probe_selection or more donors"
        )

    probe_info = io.read_probes(first_entry(files, "probes"))
    if opts["reannotated"]:
        probe_info = probes_.reannotate_probes(probe_info)
    probe_info = probe_info.dropna(subset=["entrez_id"])

    for data in files.values():
        annot = samples_.update_coords(
            data["annotation"], corrected_mni=opts["corrected_mni"], native_space=None
        )
        if opts["lr_mirror"] is not None:
            annot = samples_.mirror_samples(annot, data["ontology"], swap=opts["lr_mirror"])
        data["annotation"] = samples_.drop_mismatch_samples(annot, data["ontology"])
    annotation = flatten_dict(files, "annotation")

    if cache_dir is not None:
        probe_info = _filter_probes_cached(files, annotation, probe_info, opts["ibf_threshold"])
        # only the surviving probes are read from the cache
        raw = {d: _cached_microarray(data, probe_info.index) for d, data in files.items()}
    else:
        probe_info = probes_.filter_probes(
            flatten_dict(files, "pacall"), annotation, probe_info,
            threshold=opts["ibf_threshold"],
        )
        raw = flatten_dict(files, "microarray")
    microarray = probes_.collapse_probes(
        raw, annotation, probe_info,
        method=opts["probe_selection"], donor_probes=opts["donor_probes"],
    )
    del raw
    if opts["lr_mirror"] is not None:
        # mirrored samples repeat sample ids; abagen numbers them afresh
        # before matching (same place in its pipeline: nothing in between)
        for subj in microarray:
            idx = pd.Series(range(1, len(microarray[subj]) + 1), name="sample_id")
            microarray[subj].index = idx.copy()
            annotation[subj].index = idx.copy()
    normed = _early_sample_norm(microarray, opts["sample_norm"])
    return ProbeSelection(
        microarray=microarray, annotation=annotation, probes=probe_info, donors=donors,
        options={k: opts[k] for k in SELECTION_OPTIONS}, sample_normed=normed,
    )


def _early_sample_norm(microarray, norm):
    """Normalise every sample now if that equals abagen's later step; in place.

    Returns whether it did. A missing value would make abagen's result
    depend on which samples are kept (it skips genes missing in all of
    them), so then nothing is done here.
    """
    compat.patch_abagen()
    from abagen import correct

    if norm is None or norm not in _PER_SAMPLE_NORMS:
        return False
    if any(np.isnan(e.to_numpy()).any() for e in microarray.values()):
        return False
    for subj, frame in microarray.items():
        # the same call abagen makes, on all samples instead of the matched ones
        microarray[subj] = correct.normalize_expression(frame.T, norm=norm, ignore_warn=True).T
    return True


def write_selection(selection, out_dir):
    """Save a :class:`ProbeSelection` into a folder, never half-written.

    Layout: ``expression_{donor}.npy`` (float64, samples x genes, one per
    donor), ``tables.pkl`` (gene and sample labels, annotations, probes)
    and ``selection.json`` (version, options, donors; written last, so a
    folder without it is incomplete).

    Parameters
    ----------
    selection : ProbeSelection
    out_dir : str or os.PathLike
        Created if needed; files of an earlier selection are replaced.

    Returns
    -------
    pathlib.Path
        `out_dir`.
    """
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection.json").unlink(missing_ok=True)  # incomplete until rewritten
    tables = {"probes": selection.probes, "annotation": selection.annotation,
              "index": {}, "columns": {}}
    for donor, frame in selection.microarray.items():
        # labels in the pickle, values as plain float64 (fast, no pickle of 0.5 GB)
        tables["index"][donor] = frame.index
        tables["columns"][donor] = frame.columns
        _atomic(out / f"expression_{donor}.npy",
                partial(np.save, arr=frame.to_numpy(np.float64)))
    _atomic(out / "tables.pkl", lambda fh: pd.to_pickle(tables, fh))
    meta = {"version": SELECTION_VERSION, "options": selection.options,
            "donors": selection.donors, "sample_normed": selection.sample_normed,
            "order": [str(d) for d in selection.microarray]}
    _atomic(out / "selection.json",
            lambda fh: fh.write((json.dumps(meta, indent=1) + "\n").encode()))
    return out


def _atomic(path, write):
    """Write `path` through a hidden temporary file renamed into place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def read_selection(folder):
    """Load a selection saved by :func:`write_selection`.

    Parameters
    ----------
    folder : str or os.PathLike

    Returns
    -------
    ProbeSelection

    Raises
    ------
    ValueError
        If the folder is incomplete or of another version.
    """
    import json
    from pathlib import Path

    folder = Path(folder)
    try:
        meta = json.loads((folder / "selection.json").read_text())
    except (OSError, ValueError):
        meta = {}
    if meta.get("version") != SELECTION_VERSION:
        raise ValueError(f"{folder} holds no complete probe selection of version "
                         f"{SELECTION_VERSION}; delete it and select the probes again")
    # written by this workflow's own select step (trusted, same environment)
    tables = pd.read_pickle(folder / "tables.pkl")
    microarray = {}
    for donor in meta["order"]:
        values = np.load(folder / f"expression_{donor}.npy")
        microarray[donor] = pd.DataFrame(values, index=tables["index"][donor],
                                         columns=tables["columns"][donor], copy=False)
    return ProbeSelection(microarray=microarray, annotation=tables["annotation"],
                          probes=tables["probes"], donors=meta["donors"],
                          options=meta["options"], sample_normed=meta["sample_normed"])


def _process(atlas, atlas_info, data_dir, donors, selection, opts):
    """The atlas-dependent body of :func:`process_ahba` (options already checked)."""
    compat.patch_abagen()
    from abagen import correct, images, reporting, samples_, utils
    from abagen.allen import _get_weights, _interpolate_missing, _match_centroids
    from abagen.utils import first_entry

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
    all_labels = first_entry(atlas).labels
    for tree in {id(t): t for t in atlas.values()}.values():
        _speed_up_matching(tree)
    # new dicts: the frames below are replaced, never changed in place, so a
    # ProbeSelection can serve several atlases
    microarray = dict(selection.microarray)
    annotation = dict(selection.annotation)
    probe_info = selection.probes


    centroids = []
    counts = pd.DataFrame(
        np.zeros((len(all_labels) + 1, len(microarray)), dtype=int),
        index=np.append([0], all_labels), columns=list(microarray.keys()),
    )
    sample_tables = []
    missing = opts["missing"]
    for subj in microarray:
        labels = atlas[subj].label_samples(annotation[subj], opts["tolerance"])
        table = annotation[subj].copy()
        table.insert(0, "donor", subj)
        table["label"] = labels["label"].to_numpy()
        table["distance"] = _sample_distances(atlas[subj], annotation[subj], labels)
        sample_tables.append(table.reset_index())

        nz = np.asarray(labels != 0).squeeze()
        if nz.sum() == 0:
            LGR.warning("No samples matched to atlas for donor %s", subj)
            microarray[subj] = microarray[subj].set_axis(labels["label"], axis=0)
            if missing == "centroids":
                centroids += [(pd.DataFrame(), {})]
            continue
        if opts["norm_matched"]:
            microarray[subj] = microarray[subj].loc[nz]
            annotation[subj] = annotation[subj].loc[nz]
            labels = labels.loc[nz]
        annot = annotation[subj][["structure"]] if opts["norm_structures"] else None
        if opts["sample_norm"] is not None and not selection.sample_normed:
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

    # abagen.samples_.aggregate_samples(region_agg="donors", return_donors=True)
    metric = utils.check_metric(opts["agg_metric"])
    donor_expression = {
        d: _groupby_index(e, all_labels, metric) for d, e in microarray.items()
    }
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


#: Columns that may name the regions of a precomputed table (first match wins).
_REGION_NAME_COLUMNS = ("region", "Region", "label", "Structure", "name")


def _precomputed_header(path):
    """Column names of a CSV/TSV exactly as written (pandas renames duplicates)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
    sep = "\t" if first.count("\t") > first.count(",") else ","
    return next(csv.reader([first], delimiter=sep)), sep


def read_precomputed(path, info):
    """Read a published region x gene expression table for an atlas.

    Tables from abagen or other pipelines name regions by ``region`` /
    ``Region`` / ``label`` strings (``L_bankssts`` ...) and/or by atlas ids
    (a ``label`` or ``id`` column of integers). Names are matched to the
    atlas's ``region`` column case-insensitively, and a name that is a unique
    atlas ``label`` (``brainstem``) is accepted for its region; ids are matched
    to ``id``. When both are present they must agree.

    Parameters
    ----------
    path : str or os.PathLike
        CSV or TSV (a UTF-8 byte-order mark is allowed), one row per region,
        one column per gene.
    info : pandas.DataFrame
        Atlas region table (``id, label, hemisphere, structure, region``).

    Returns
    -------
    table : pandas.DataFrame
        ``region`` + genes, one row per atlas region in atlas order (NaN rows
        for regions the table lacks), as ``results/{atlas}/expression.tsv``.
    notes : list of str
        What was matched and dropped, for the methods text and the log.

    Raises
    ------
    ValueError
        If no region column matches the atlas, a region is not in the atlas,
        ids and names disagree, or a gene column is not numeric.
    """
    path = str(path)
    header, sep = _precomputed_header(path)
    frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", header=None, skiprows=1,
                        low_memory=False)
    if frame.shape[1] != len(header):
        raise ValueError(f"{path}: {frame.shape[1]} columns in the rows but {len(header)} names "
                         "in the header; check the separator")
    frame.columns = range(len(header))
    notes = [f"expression table {path}: {frame.shape[0]} rows x {len(header)} columns"]

    from .regions import name_lookup

    regions = info["region"].astype(str).tolist()
    by_name = name_lookup(info)
    by_id = dict(zip(info["id"].astype(int), regions))

    name_col = id_col = None
    for i, col in enumerate(header):
        values = frame[i]
        if col in ("label", "id") and id_col is None and pd.api.types.is_integer_dtype(values):
            id_col = i
        elif col in _REGION_NAME_COLUMNS and name_col is None and values.dtype == object:
            name_col = i
    if name_col is None and id_col is None:
        raise ValueError(f"{path}: no region column; name the regions in a column called one of "
                         f"{list(_REGION_NAME_COLUMNS)} (e.g. L_bankssts) or give atlas ids in "
                         "'label' / 'id'")
    if name_col is not None:
        names = frame[name_col].astype(str).str.strip()
        matched = names.str.lower().map(by_name)
        unknown = names[matched.isna()].tolist()
        if unknown:
            raise ValueError(f"{path}: region(s) {unknown[:8]} are not regions of this atlas "
                             f"(e.g. {regions[:3]}); the table was made for another atlas: give "
                             "the table of this atlas or fix the region names")
        if id_col is not None:
            from_ids = frame[id_col].map(by_id)
            bad = (from_ids != matched).to_numpy()
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{path}: row {first + 2} names region {names[first]!r} but id "
                                 f"{frame[id_col][first]}, which is {from_ids[first]!r} in this "
                                 "atlas; the ids and names disagree: drop the id column or fix it")
    else:
        matched = frame[id_col].map(by_id)
        unknown = frame[id_col][matched.isna()].tolist()
        if unknown:
            raise ValueError(f"{path}: id(s) {unknown[:8]} are not parcels of this atlas; the "
                             "table was made for another atlas")
    if matched.duplicated().any():
        raise ValueError(f"{path}: region(s) {matched[matched.duplicated()].tolist()[:8]} appear "
                         "more than once; give one row per region")

    gene_cols = [i for i in range(len(header)) if i not in (name_col, id_col)]
    genes = pd.Series([header[i].strip() for i in gene_cols])
    dup = genes.duplicated(keep=False)
    if dup.any():
        # e.g. spreadsheet-mangled symbols (Mar-01 from MARCH1 and MARC1): ambiguous, so dropped
        notes.append(f"dropped {int(dup.sum())} columns with duplicated gene names "
                     f"{sorted(set(genes[dup]))[:10]}")
        LGR.warning("%s: %s", path, notes[-1])
    keep = [i for i, d in zip(gene_cols, dup) if not d]
    values = frame[keep]
    non_numeric = [header[i] for i in keep if not pd.api.types.is_numeric_dtype(values[i])]
    if non_numeric:
        raise ValueError(f"{path}: column(s) {non_numeric[:8]} are not numeric; every column "
                         "after the region column(s) must be a gene's expression")
    values = values.astype(np.float64)
    values.columns = [header[i].strip() for i in keep]
    values.index = pd.Index(matched.to_numpy(), name="region")
    missing = [r for r in regions if r not in set(matched)]
    notes.append(f"{len(matched)} of {len(regions)} atlas regions matched"
                 + (f"; no row for {missing}" if missing else "")
                 + f"; {values.shape[1]} genes")
    table = values.reindex(regions).reset_index()
    return table, notes
