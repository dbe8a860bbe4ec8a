"""Rule dense_maps: whole-brain cell-type maps of one gene-set collection
interpolated from AHBA sample-level expression (itx.dense)."""
import json
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from itx import dense, genesets
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
# BLAS gets the job's threads, no more: the GP does many small Cholesky
# factorisations, and oversubscribed BLAS threads that spin-wait made them
# ~10x slower on a busy 2-core machine (threadpoolctl ships with scikit-learn)
threadpool_limits(snakemake.threads)
opts = snakemake.params.options
fit = {"max_fit_samples": opts["max_fit_samples"], "n_restarts": opts["n_restarts"],
       "n_neighbors": opts["n_neighbors"]}
out = snakemake.output

# the probe-selection cache (all samples, one probe per gene), not parcel means
selection = Path(snakemake.input.selection[0]).parent
scores = dense.sample_scores(selection, genesets.read_gene_sets(snakemake.input.genesets),
                             min_genes=opts["min_genes"])
write_tsv(scores.table(), out.scores)
write_tsv(scores.report, out.sets)

maps = dense.dense_maps(scores.coords, scores.scores, resolution_mm=opts["resolution_mm"],
                        method=opts["method"], seed=opts["seed"],
                        uncertainty=opts["uncertainty"] and opts["method"] == "gp", **fit)
dense.write_dense_maps(maps, Path(out.maps).parent)
dense.plot_dense_maps(maps, out.figure)

lodo = dense.leave_one_donor_out(scores.coords, scores.scores, scores.donors,
                                 methods=opts["lodo_methods"], seed=opts["seed"], **fit)
write_tsv(lodo, out.lodo)

# published dense maps (dense.external): voxelwise r with ours, same cell type
if "external" in out.keys():
    write_tsv(dense.compare_external(maps, opts["external"]), out.external)

# demo only: how well the planted gene set's map recovers the planted field
if "validation" in out.keys():
    truth = json.loads(Path(snakemake.input.truth).read_text())
    planted = truth.get("planted_set")
    if planted in scores.celltypes:
        v = dense.validate_on_demo(scores, truth["seed"], sign=truth["sign"],
                                   resolution_mm=opts["resolution_mm"],
                                   methods=sorted({opts["method"], "nearest"}),
                                   map_seed=opts["seed"], **fit)
        write_tsv(v.summary.assign(celltype=planted), out.validation)
    else:
        write_tsv(pd.DataFrame(columns=["method", "where", "n", "r_pearson", "r_spearman",
                                       "celltype"]), out.validation)
