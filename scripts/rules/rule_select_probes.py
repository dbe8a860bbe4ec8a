"""Rule select_probes: atlas-independent probe filtering and selection, saved once."""
from pathlib import Path

from itx import expression, fetch
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
rnaseq_dir = None
if snakemake.params.options["probe_selection"] == "rnaseq":
    rnaseq = list(snakemake.input.get("rnaseq", []))
    if not rnaseq:
        raise ValueError("expression.probe_selection is 'rnaseq' but the rule got no RNA-seq "
                         "files; set ahba.rnaseq: true")
    # .../<data_dir>/rnaseq/rnaseq_donor{id}/<file>
    rnaseq_dir = Path(rnaseq[0]).parents[2]
    for donor in snakemake.params.donors:
        folder = rnaseq_dir / "rnaseq" / f"rnaseq_donor{donor}"
        # abagen would silently download a missing donor into $ABAGEN_DATA
        if donor in fetch.RNASEQ_DONOR_IDS and not fetch.is_donor_complete(folder, "rnaseq"):
            raise FileNotFoundError(f"{folder} lacks some of {', '.join(fetch.RNASEQ_FILES)}; "
                                    "run the fetch_rnaseq rule again")
selection = expression.select_probes(
    # .../<AHBA dir>/cache/donor{id}/<file>: the parsed-CSV cache, never the CSVs
    cache_dir=Path(snakemake.input.cache[0]).parents[1],
    donors=list(snakemake.params.donors), rnaseq_dir=rnaseq_dir, **snakemake.params.options,
)
expression.write_selection(selection, Path(snakemake.output[0]).parent)
