"""Rule provenance: what made one map's results folder (written after its other outputs)."""
from itx import provenance
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
record = provenance.map_record(
    choices=p.choices,
    settings=p.settings,
    inputs={"map": snakemake.input.map, "expression": [snakemake.input.expression],
            "genesets": snakemake.input.genesets},
    versions=provenance.package_versions(snakemake.input.versions),
    library=p.library,
)
provenance.write_record(record, snakemake.output[0])
