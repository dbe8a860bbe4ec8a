"""Rule propagate_genesets: a built-in's sets propagated up its ontology (true-path rule)."""
import logging

from itx import ontology
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
report = ontology.propagate_file(snakemake.input.sets, snakemake.input.ontology,
                                 snakemake.output.sets)
write_tsv(report, snakemake.output.report)
logging.info("%d of %d sets gained genes from descendant terms; statuses: %s",
             int((report["n_added"] > 0).sum()), len(report),
             report["status"].value_counts().to_dict())
