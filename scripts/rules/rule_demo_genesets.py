"""Rule demo_genesets: the demo gene-set collection (one set planted)."""
from itx import demo
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
demo.write_gene_sets_gmt(demo.demo_gene_sets(snakemake.params.seed), snakemake.output[0])
