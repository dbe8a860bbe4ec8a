# What made each map's results: results/{atlas}/{map}/provenance.json, written
# after every other output of the map (rules/preflight.smk compares it with the
# next run's choices before any job).
from types import SimpleNamespace


def map_choices(atlas, m):
    """Choices users compare between runs: a change stops the run instead of
    overwriting results made with the old value (unless replace_results)."""
    wc = SimpleNamespace(atlas=atlas, map=m)
    exp = config["expression"]
    if PRECOMPUTED:
        expression = {"source": "precomputed", "table": exp["precomputed"].get(atlas)}
    else:
        expression = {"source": "ahba", "ahba": config["ahba"]["source"], "donors": DONORS}
        expression.update({k: v for k, v in exp.items() if k not in ("source", "precomputed")})
    return {
        "null_method": map_null_method(wc),
        "subcortex_method": config["nulls"]["subcortex_method"],
        "scope": config["scope"],
        "association_method": config["association"]["method"],
        "atlas": config["atlases"][atlas],
        "expression": expression,
        "genesets": config["genesets"],
        "enrichment_ranking": config["enrichment"]["ranking"],
    }


def map_settings(atlas, m):
    """Every other setting of the map's stages (recorded, not compared)."""
    row = MAPS.loc[m]
    return {
        "map": {k: row[k] for k in ("path", "format", "column", "sign", "description")},
        "nulls": {"n_perm": config["nulls"]["n_perm"], "seed": config["nulls"]["seed"]},
        "pls": config["pls"],
        "enrichment": config["enrichment"],
        "celltypes": config["celltypes"],
    }


def geneset_files():
    return [geneset_path(SimpleNamespace(geneset=g)) for g in GENESETS]


rule provenance:
    input:
        outputs=lambda wc: map_result_files(wc.atlas, wc.map),
        map=map_files,
        expression="results/{atlas}/expression.tsv",
        genesets=geneset_files(),
        versions="results/versions.tsv",
    output:
        "results/{atlas}/{map}/provenance.json",
    params:
        library=library("rule_provenance.py"),
        choices=lambda wc: map_choices(wc.atlas, wc.map),
        settings=lambda wc: map_settings(wc.atlas, wc.map),
    log:
        "logs/provenance_{atlas}_{map}.log",
    threads: rule_threads("provenance")
    resources:
        mem_mb=rule_mem_mb("provenance"),
        runtime=rule_runtime("provenance"),
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/rule_provenance.py"


# seconds of hashing: not worth a cluster job
localrules:
    provenance,
