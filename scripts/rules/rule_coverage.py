"""Rule coverage: per-region coverage of one map on one atlas."""
import logging

from itx import coverage, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
inp = snakemake.input
null = nullmaps.load_null_maps(inp.nulls)
table = coverage.coverage_table(read_tsv(inp.map), null.regions, read_tsv(inp.expression),
                                read_tsv(inp.counts) if "counts" in inp.keys() else None)
for line in coverage.coverage_summary(table):
    logging.getLogger("coverage").info(line)
write_tsv(table, snakemake.output[0])
