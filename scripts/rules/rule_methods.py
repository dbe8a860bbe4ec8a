"""Rule methods: abagen's methods text as an HTML page for the report."""
from pathlib import Path

from itx import report
from itx.tables import log_to_file, write_text

log_to_file(snakemake.log[0])
text = Path(snakemake.input[0]).read_text()
write_text(report.methods_html(text, title=f"AHBA processing ({snakemake.wildcards.atlas})"),
           snakemake.output[0])
