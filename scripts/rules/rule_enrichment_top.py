"""Rule enrichment_top: the report page of the top gene sets of every collection."""
from itx import enrichment_page
from itx.tables import log_to_file, read_tsv, write_text

log_to_file(snakemake.log[0])
p = snakemake.params
tables = {g: read_tsv(f) for g, f in zip(p.genesets, snakemake.input.tables)}
write_text(enrichment_page.top_sets_html(tables, snakemake.wildcards.map, p.n_top),
           snakemake.output[0])
