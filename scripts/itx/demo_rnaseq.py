"""Demo RNA-seq donors (part of :mod:`itx.demo`), for abagen's
``probe_selection='rnaseq'``: the two bilateral donors, consistent with
their microarray."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_seed
from .demo_common import (
    BILATERAL_DONORS,
    DEFAULT_EFFECT_SIZE,
    DEFAULT_SAMPLES_PER_DONOR,
    DONOR_IDS,
    _check_samples_per_donor,
    _check_sign_effect,
    _rng,
)
from .demo_files import _same_mtime, _write_bytes, _write_frame, _write_gene_matrix
from .demo_microarray import _gene_model, _gene_values, _probe_table
from .demo_samples import _ontology, donor_wells

#: The demo donors that get RNA-seq, as in the real atlas.
RNASEQ_DONOR_IDS = BILATERAL_DONORS

_RNASEQ_DIR = "rnaseq_donor{}"
_RNASEQ_UID = {"9861": "H0351.2001", "10021": "H0351.2002"}
_RNASEQ_NOISE_SD = 0.3      # log2 units: RNA-seq vs the true gene level
_RNASEQ_OFFSET_SD = 0.5     # per gene: platform differences (length, GC...)
_RNASEQ_DETECTION = 0.5     # TPM below this is reported as 0 (not seen): ~0.15 %


@functools.lru_cache(maxsize=1)
def _rnaseq_genes() -> pd.DataFrame:
    """Genes.csv: one row per demo gene symbol, the AHBA RNA-seq columns.

    gene_id / entrez_id are those of the demo Probes.csv; the location and
    length fields are placeholders (abagen does not read them).
    """
    probes = _probe_table().drop_duplicates("gene_symbol").set_index("gene_symbol")
    genes = _gene_model(0)["genes"]  # the symbols do not depend on the seed
    rng = _rng(0, "rnaseq_genes")
    n = len(genes)
    start = rng.integers(1_000_000, 200_000_000, n)
    genome_len = rng.integers(1_000, 200_000, n)
    return pd.DataFrame({
        "gene_symbol": genes,
        "gene_id": probes.loc[genes, "gene_id"].to_numpy(),
        "entrez_id": probes.loc[genes, "entrez_id"].to_numpy(),
        "chromosome": rng.integers(1, 23, n).astype(str),
        "strand": np.where(rng.random(n) < 0.5, "+", "-"),
        "number_of_transcripts": rng.integers(1, 12, n),
        "median_transcriptome_length": rng.integers(500, 8_000, n),
        "median_genome_length": genome_len,
        "median_number_of_exons": rng.integers(1, 30, n),
        "median_gene_start": start,
        "median_gene_end": start + genome_len,
    })


def _rnaseq_annotation(wells: pd.DataFrame, donor: str,
                       rng: np.random.Generator) -> pd.DataFrame:
    """RNA-seq SampleAnnot.csv rows: the AHBA RNA-seq columns.

    abagen reads ``ontology_structure_id`` (renamed ``structure_id``) to
    average samples per structure; ``well_id`` links each sample to its
    microarray sample, as in the real files. Quality columns are plausible
    placeholders.
    """
    onto = _ontology().set_index(["acronym", "hemisphere"])
    leaf = onto.loc[list(zip(wells["leaf"], wells["hemisphere"]))]
    n = len(wells)
    main = np.select(
        [wells["leaf"] == "cerebellarcortex",
         np.isin(wells["leaf"], ["mesencephalon", "pons", "myelencephalon"])],
        ["CB", "BS"], "CX")
    names = [f"demo_{donor}_{w}" for w in wells["well_id"]]
    base = rng.dirichlet([30, 20, 22, 28], n) * 100
    return pd.DataFrame({
        "RNAseq_sample_name": names,
        "replicate_sample": "no",
        "sample_name": names,
        "well_id": wells["well_id"].to_numpy(),
        "microarray_run_id": 800000 + wells["well_id"].to_numpy() % 100000,
        "ontology_color": leaf["color_hex_triplet"].to_numpy(),
        "main_structure": main,
        "sub_structure": wells["leaf"].to_numpy(),
        "ontology_structure_id": leaf["id"].to_numpy(),
        "ontology_structure_acronym": wells["leaf"].to_numpy(),
        "hemisphere": wells["hemisphere"].to_numpy(),
        "brain": _RNASEQ_UID[donor],
        "million_clusters": np.round(rng.uniform(15, 45, n), 2),
        "clip_percentage": np.round(rng.uniform(0.5, 5, n), 2),
        "RIN_RNA_quality": np.round(rng.uniform(5, 9, n), 1),
        "rnaseq_run_id": 700000 + np.arange(n),
        "A.Pct": np.round(base[:, 0], 2), "C.Pct": np.round(base[:, 1], 2),
        "G.Pct": np.round(base[:, 2], 2), "T.Pct": np.round(base[:, 3], 2),
        "N.Pct": 0.0,
    })


def write_rnaseq_donor(out_dir, donor, *, seed=0,
                       samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                       n_samples=None, sign=1,
                       effect_size=DEFAULT_EFFECT_SIZE) -> Path:
    """Write one demo RNA-seq donor in AHBA format, consistent with its microarray.

    Writes ``<out_dir>/rnaseq/rnaseq_donor{donor}/`` with ``Genes.csv``,
    ``Ontology.csv``, ``RNAseqCounts.csv``, ``RNAseqTPM.csv`` (both without
    header, gene symbol in column 0, one column per sample) and
    ``SampleAnnot.csv`` (one row per sample, same order), which is what
    abagen 0.1.3 reads for ``probe_selection='rnaseq'``.

    The samples are (a subset of) the wells of the same demo donor written by
    :func:`generate_donors` with the same `seed` and `samples_per_donor`
    (same well ids and structure ids), and the genes are the same symbols.
    Expression follows the same gene-level values the microarray probes were
    drawn from (bit-identical; see :func:`_gene_values`)::

        log2 rna[g, s] = gene[g, s] + rna_offset[g] + noise[g, s]
        TPM[:, s]      = 2 ** log2 rna[:, s] scaled to sum to 1e6
                         (values below 0.5 reported as 0, "not seen")

    so the probe that tracks its gene best (a live, unclipped probe) is the
    one abagen's ``rnaseq`` selection should pick. The planted signal comes
    with `gene`; ``effect_size=0`` leaves it out.

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir`` (the same as for :func:`generate_donors`).
    donor : str or int
        ``9861`` or ``10021`` (the donors with RNA-seq in the real atlas).
    seed : int, optional
        Demo seed; must match :func:`generate_donors` for consistent data.
    samples_per_donor : int or None, optional
        As given to :func:`generate_donors` (defines the donor's wells).
    n_samples : int, optional
        Keep a reproducible random subset of this many of the donor's wells
        (the real RNA-seq covers a subset of the microarray samples); all of
        them by default.
    sign : {1, -1}, optional
        Direction of the planted effect, as for :func:`generate_donors`.
    effect_size : float, optional
        Planted effect, as for :func:`generate_donors`; 0 for none.

    Returns
    -------
    Path
        The RNA-seq donor folder.

    Raises
    ------
    ValueError
        On a donor without RNA-seq, or invalid seed, sizes, sign or effect.
    """
    seed = check_seed(seed)
    n = _check_samples_per_donor(samples_per_donor)
    sign, effect = _check_sign_effect(sign, effect_size)
    donor = str(donor).strip()
    if donor not in RNASEQ_DONOR_IDS:
        raise ValueError(f"demo RNA-seq exists only for donors {', '.join(RNASEQ_DONOR_IDS)} "
                         f"(as in the AHBA), not {donor!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir exists and is not a directory: {out_dir}")

    wells = donor_wells(n, seed)[donor]
    k = DONOR_IDS.index(donor)
    gene, _ = _gene_values(wells[["mni_x", "mni_y", "mni_z"]].to_numpy(), seed, k,
                           sign, effect)
    rng = _rng(seed, "rnaseq", k)
    if n_samples is not None:
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(
                n_samples, (int, np.integer)) or not 2 <= n_samples <= len(wells):
            raise ValueError(f"n_samples must be an integer from 2 to {len(wells)} (the "
                             f"donor's demo wells), got {n_samples!r}")
        keep = np.sort(rng.choice(len(wells), size=int(n_samples), replace=False))
        wells, gene = wells.iloc[keep].reset_index(drop=True), gene[:, keep]

    model = _gene_model(seed)
    n_gene, n_samp = gene.shape
    log_rna = gene.astype(np.float64)
    log_rna += _rng(seed, "rnaseq_offset").normal(0.0, _RNASEQ_OFFSET_SD, n_gene)[:, None]
    log_rna += rng.normal(0.0, _RNASEQ_NOISE_SD, (n_gene, n_samp))
    rna = np.exp2(log_rna)
    tpm = rna / rna.sum(axis=0, keepdims=True) * 1e6
    tpm[tpm < _RNASEQ_DETECTION] = 0.0
    genes = _rnaseq_genes()
    length_kb = genes["median_transcriptome_length"].to_numpy()[:, None] / 1000.0
    annot = _rnaseq_annotation(wells, donor, rng)
    # fragments ~ TPM x length x depth; fractional like RSEM's expected counts
    counts = tpm * length_kb * annot["million_clusters"].to_numpy()[None] / 50.0

    folder = out_dir / "rnaseq" / _RNASEQ_DIR.format(donor)
    folder.mkdir(parents=True, exist_ok=True)
    _write_frame(folder / "Genes.csv", genes)
    _write_bytes(folder / "Ontology.csv",
                 _ontology().to_csv(index=False, lineterminator="\n").encode())
    _write_frame(folder / "SampleAnnot.csv", annot)
    _write_gene_matrix(folder / "RNAseqTPM.csv", model["genes"], tpm, "%.5g")
    _write_gene_matrix(folder / "RNAseqCounts.csv", model["genes"], counts, "%.2f")
    _same_mtime(folder.iterdir())
    return folder


def generate_rnaseq_donors(out_dir, *, seed=0,
                           samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                           donors=RNASEQ_DONOR_IDS, n_samples=None, sign=1,
                           effect_size=DEFAULT_EFFECT_SIZE) -> dict[str, Path]:
    """Write the demo RNA-seq donors (see :func:`write_rnaseq_donor`).

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir``.
    seed, samples_per_donor, n_samples, sign, effect_size
        As for :func:`write_rnaseq_donor` (match :func:`generate_donors`).
    donors : iterable of str, optional
        Donors to write; those without RNA-seq are an error.

    Returns
    -------
    dict of str -> Path
        Donor id -> RNA-seq donor folder.
    """
    return {str(d): write_rnaseq_donor(out_dir, d, seed=seed,
                                       samples_per_donor=samples_per_donor,
                                       n_samples=n_samples, sign=sign,
                                       effect_size=effect_size)
            for d in donors}
