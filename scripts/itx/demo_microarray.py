"""Demo microarray donors (part of :mod:`itx.demo`): the expression model and
the six donor folders in the AHBA format abagen reads."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import check_seed
from .demo_common import (
    _VALUE_RANGE,
    DEFAULT_EFFECT_SIZE,
    DEFAULT_SAMPLES_PER_DONOR,
    DONOR_IDS,
    REAL_N_PROBES,
    _check_samples_per_donor,
    _check_sign_effect,
    _probes,
    _rng,
)
from .demo_field import disease_field
from .demo_files import (
    _format_expression,
    _format_pacall,
    _same_mtime,
    _write_bytes,
    _write_frame,
    _write_matrix,
)
from .demo_genesets import _gene_sets, write_truth
from .demo_samples import _annotation, _ontology, donor_wells

_DONOR_DIR = "normalized_microarray_donor{}"

# expression model parameters (log2-like intensity scale)
_N_BASIS = 6              # smooth background gradients
_BASIS_WAVELENGTH = (140.0, 320.0)  # mm; long so gradients are smooth
_LOADING_SD = 0.2         # per gene per basis function
_BASE_MEAN, _BASE_SD = 7.5, 1.6
_DONOR_OFFSET_SD = 0.3
_DONOR_LOGSCALE_SD = 0.1
_GENE_NOISE_SD = 0.35
_PROBE_AFFINITY_SD = 0.4
_PROBE_NOISE_SD = 0.25
_DEAD_PROBE_FRACTION = 0.3    # probes that are mostly "absent"
_DEAD_PROBE_SHIFT = (3.0, 6.0)
_BACKGROUND = 5.0         # PACall threshold on the intensity scale
_CALL_NOISE_SD = 0.6


def _probe_table() -> pd.DataFrame:
    """Probes.csv: every reannotated probe (45,821), AHBA columns.

    abagen (``reannotated=True``) left-merges its reannotation table onto
    Probes.csv by probe name, so a missing probe becomes a NaN probe id and
    a KeyError later. Probe and gene ids are made-up but stable integers.
    """
    probes = _probes()
    genes = np.unique(probes["gene_symbol"].to_numpy())
    gene_id = 100000 + np.searchsorted(genes, probes["gene_symbol"].to_numpy())
    return pd.DataFrame({
        "probe_id": 1_000_000 + np.arange(len(probes)),
        "probe_name": probes["probe_name"].to_numpy(),
        "gene_id": gene_id,
        "gene_symbol": probes["gene_symbol"].to_numpy(),
        "gene_name": probes["gene_symbol"].to_numpy() + " (demo annotation)",
        "entrez_id": probes["entrez_id"].to_numpy(),
        "chromosome": "",
    })


def _pad_probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Append made-up probes, unknown to abagen, up to :data:`REAL_N_PROBES`."""
    n_pad = REAL_N_PROBES - len(probes)
    ids = probes["probe_id"].max() + 1 + np.arange(n_pad)
    pad = pd.DataFrame({
        "probe_id": ids,
        # not in abagen's reannotation table, so reannotation drops them, as
        # it drops the ~12,900 real probes without a reliable gene
        "probe_name": [f"DEMO_PAD_{i:05d}" for i in range(n_pad)],
        "gene_id": "", "gene_symbol": "", "gene_name": "",
        "entrez_id": "", "chromosome": "",
    })
    return pd.concat([probes.astype({"entrez_id": object}), pad],
                     ignore_index=True)


def _pad_values(expr: np.ndarray, pacall: np.ndarray, n_pad: int, seed: int,
                donor_index: int):
    """Expression and calls of the padding probes (own random stream, so the
    modelled probes are byte-identical with and without padding)."""
    rng = _rng(seed, "pad", donor_index)
    lo, hi = _VALUE_RANGE
    extra = rng.uniform(lo, hi, (n_pad, expr.shape[1])).astype(np.float32)
    np.clip(extra, lo, np.nextafter(np.float32(hi), np.float32(0)), out=extra)
    calls = (extra > _BACKGROUND).astype(np.uint8)
    return np.concatenate([expr, extra]), np.concatenate([pacall, calls])


@functools.lru_cache(maxsize=8)
def _gene_model(seed: int):
    """Donor-independent per-gene and per-probe parameters for `seed`."""
    probes = _probes()
    genes, gene_idx = np.unique(probes["gene_symbol"].to_numpy(),
                                return_inverse=True)
    rng = _rng(seed, "genes")
    n_gene, n_probe = len(genes), len(probes)
    base = rng.normal(_BASE_MEAN, _BASE_SD, n_gene).astype(np.float32)
    loadings = rng.normal(0.0, _LOADING_SD, (n_gene, _N_BASIS)).astype(
        np.float32)
    affinity = rng.normal(0.0, _PROBE_AFFINITY_SD, n_probe).astype(np.float32)
    dead = rng.random(n_probe) < _DEAD_PROBE_FRACTION
    affinity[dead] -= rng.uniform(*_DEAD_PROBE_SHIFT, dead.sum()).astype(
        np.float32)

    # basis functions: cosines of random directions with long wavelengths
    direction = rng.standard_normal((_N_BASIS, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavelength = rng.uniform(*_BASIS_WAVELENGTH, _N_BASIS)
    freq = 2.0 * np.pi * direction / wavelength[:, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, _N_BASIS)

    # demo-set genes are made clearly expressed (marker genes usually are);
    # the planted genes also lose their dead probes so every planted gene
    # survives intensity-based filtering and the truth stays clean
    sets, planted = _gene_sets(seed)
    in_sets = np.isin(genes, [g for v in sets.values() for g in v])
    base[in_sets] = np.maximum(base[in_sets], _BASE_MEAN + 1.0)
    planted_gene = np.isin(genes, sets[planted])
    planted_probe = planted_gene[gene_idx]
    affinity[planted_probe & dead] = rng.normal(
        0.0, _PROBE_AFFINITY_SD, (planted_probe & dead).sum())
    return dict(genes=genes, gene_idx=gene_idx, base=base, loadings=loadings,
                affinity=affinity, freq=freq, phase=phase,
                planted=planted_gene.astype(np.float32))


def _basis(xyz: np.ndarray, model: dict) -> np.ndarray:
    """(S, K) smooth basis functions at sample coordinates."""
    return (np.sqrt(2.0) * np.cos(xyz @ model["freq"].T + model["phase"])
            ).astype(np.float32)


def _gene_values(xyz: np.ndarray, seed: int, donor_index: int, sign: int,
                 effect: float):
    """The gene-level values (G, S) of one donor's samples, float32.

    ``loadings @ basis + planted field``, scaled and offset per donor, plus
    gene noise: the matrix behind the donor's microarray
    (:func:`_simulate_donor` goes on from here) and its RNA-seq
    (:func:`itx.demo_rnaseq.write_rnaseq_donor`). The donor's generator is
    returned positioned where :func:`_simulate_donor` draws the probe noise
    (the tests use that to check the identity).
    """
    model = _gene_model(seed)
    rng = _rng(seed, "donor", donor_index)
    n_gene, n_samp = len(model["genes"]), len(xyz)
    f32 = np.float32
    offset = rng.normal(0.0, _DONOR_OFFSET_SD, n_gene).astype(f32)
    scale = np.exp(rng.normal(0.0, _DONOR_LOGSCALE_SD, n_gene)).astype(f32)
    field = disease_field(xyz, seed).astype(f32)
    gene = model["loadings"] @ _basis(xyz, model).T             # (G, S)
    gene += (f32(sign * effect) * model["planted"])[:, None] * field[None]
    gene *= scale[:, None]
    gene += (model["base"] + offset)[:, None]
    gene += rng.standard_normal((n_gene, n_samp), dtype=f32) * f32(_GENE_NOISE_SD)
    return gene, rng


def _simulate_donor(xyz: np.ndarray, seed: int, donor_index: int,
                    sign: int, effect: float):
    """Expression (P, S) float32 and PACall (P, S) uint8 for one donor."""
    model = _gene_model(seed)
    gene, rng = _gene_values(xyz, seed, donor_index, sign, effect)
    n_probe, n_samp = len(model["gene_idx"]), len(xyz)
    f32 = np.float32

    expr = gene[model["gene_idx"]]                              # (P, S)
    expr += model["affinity"][:, None]
    expr += rng.standard_normal((n_probe, n_samp), dtype=f32) * f32(
        _PROBE_NOISE_SD)
    np.clip(expr, *_VALUE_RANGE, out=expr)
    call = rng.standard_normal((n_probe, n_samp), dtype=f32)
    call *= f32(_CALL_NOISE_SD)
    call += expr
    pacall = (call > f32(_BACKGROUND)).astype(np.uint8)
    return expr, pacall


def generate_donors(out_dir, *, seed=0,
                    samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                    truth_path=None, sign=1,
                    effect_size=DEFAULT_EFFECT_SIZE, pad_probes=False,
                    digits=4) -> dict[str, Path]:
    """Write the six demo donor folders in AHBA format.

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir``; folders go to
        ``<out_dir>/microarray/normalized_microarray_donor{id}/``.
    seed : int, optional
        Seed for wells, expression, gene sets and field. Same seed and
        arguments -> byte-identical files.
    samples_per_donor : int or None, optional
        Wells per donor (reproducible subsample favouring an even spread over
        cortical parcels); ``None`` uses all 3,702 real wells.
    truth_path : str or Path, optional
        If given, also write the truth JSON there (see :func:`write_truth`).
    sign : {1, -1}, optional
        Direction in which the planted genes follow :func:`disease_field`.
    effect_size : float, optional
        Planted effect, log2 units per unit of field.
    pad_probes : bool, optional
        Add probes that abagen's reannotation drops (names it does not know,
        no gene), up to the real 58,692 rows per matrix. They change no
        result but make every CSV as long as the real one, for benchmarks.
    digits : int, optional
        Significant digits printed per expression value (4: small files;
        15: as in the real AHBA, about twice the bytes to parse).

    Returns
    -------
    dict of str -> Path
        Donor id -> donor folder.

    Raises
    ------
    ValueError
        On an invalid seed, samples_per_donor, sign or effect_size, or if
        `out_dir` exists and is not a directory.
    """
    seed = check_seed(seed)
    n = _check_samples_per_donor(samples_per_donor)
    sign, effect = _check_sign_effect(sign, effect_size)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir exists and is not a directory: {out_dir}")

    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) \
            or not 2 <= digits <= 15:
        raise ValueError(f"digits must be an integer from 2 to 15, got {digits!r}")
    wells = donor_wells(n, seed)
    probe_table = _probe_table()
    n_model = len(probe_table)
    if pad_probes:
        probe_table = _pad_probe_table(probe_table)
    probe_csv = probe_table.to_csv(index=False, lineterminator="\n").encode()
    onto_csv = _ontology().to_csv(index=False, lineterminator="\n").encode()
    probe_ids = probe_table["probe_id"].to_numpy()

    folders = {}
    for k, donor in enumerate(DONOR_IDS):
        folder = out_dir / "microarray" / _DONOR_DIR.format(donor)
        folder.mkdir(parents=True, exist_ok=True)
        w = wells[donor]
        expr, pacall = _simulate_donor(
            w[["mni_x", "mni_y", "mni_z"]].to_numpy(), seed, k, sign, effect)
        if len(probe_table) > n_model:
            expr, pacall = _pad_values(expr, pacall, len(probe_table) - n_model,
                                       seed, k)
        _write_bytes(folder / "Probes.csv", probe_csv)
        _write_bytes(folder / "Ontology.csv", onto_csv)
        _write_frame(folder / "SampleAnnot.csv", _annotation(w),
                     float_format="%.10g")
        _write_matrix(folder / "PACall.csv", probe_ids, pacall, _format_pacall)
        # 15-digit cells take ~4x the scratch memory per row: smaller chunks
        _write_matrix(folder / "MicroarrayExpression.csv", probe_ids, expr,
                      functools.partial(_format_expression, digits=int(digits)),
                      chunk=4096 if digits <= 4 else 1024)
        folders[donor] = folder
    _same_mtime(f for folder in folders.values() for f in folder.iterdir())

    if truth_path is not None:
        write_truth(truth_path, seed=seed, sign=sign, effect_size=effect,
                    extra={"samples_per_donor": n,
                           "donor_samples": {d: len(w) for d, w in
                                             wells.items()}})
    return folders
