# Stage 7b: built-in gene-set collections (fetched, checksum-verified), and
# regional cell-type maps compared with every map (spatial-null p values).
import sys
from pathlib import Path

# the collection registry lives in itx.genesets (scripts/)
_ITX_SCRIPTS = str(Path(workflow.basedir).parent / "scripts")
if _ITX_SCRIPTS not in sys.path:
    sys.path.insert(0, _ITX_SCRIPTS)
from itx.genesets import BUILTIN_COLLECTIONS, builtin_name


def builtin_geneset_sources():
    """Built-in collection -> its source (None = the pinned URL), from `genesets:`."""
    sources = {}
    for key, spec in config["genesets"].items():
        name = builtin_name(spec)
        if name is None:
            continue
        source = spec.get("source") if isinstance(spec, dict) else None
        if name in sources and sources[name] != source:
            raise ValueError(
                f"genesets: built-in collection {name!r} is listed twice with different sources "
                f"({sources[name]!r}, {source!r}); give one source"
            )
        sources[name] = source
    return sources


BUILTIN_GENESET_SOURCES = builtin_geneset_sources()


def gene_alias_input(wildcards=None):
    """The alias table (rule gene_aliases) when the matrix has abagen's reannotated
    symbols (enrichment.aliases, expression from AHBA probes, expression.reannotated)."""
    if (not config["enrichment"]["aliases"] or PRECOMPUTED
            or not config["expression"]["reannotated"]):
        return []
    return [f"{AHBA_DIR}/gene_aliases.tsv"]


def celltype_outputs(atlas):
    """Cell-type outputs of one atlas (the lead adds them to all_outputs)."""
    outs = []
    for g in GENESETS:
        outs += [f"results/{atlas}/celltypes/{g}.tsv",
                 f"results/{atlas}/celltypes/figures/{g}.png"]
        for m in maps_for_atlas(atlas):
            outs += [f"results/{atlas}/{m}/celltypes_{g}.tsv",
                     f"results/{atlas}/{m}/figures/celltypes_{g}.png"]
    return outs


# downloads run where Snakemake runs, never in cluster jobs (as fetch_donor)
localrules:
    fetch_genesets,


rule fetch_genesets:
    output:
        "resources/genesets/{collection}.{ext}",
    wildcard_constraints:
        collection="|".join(BUILTIN_COLLECTIONS),
        ext="csv|gmt",
    params:
        source=lambda wc: BUILTIN_GENESET_SOURCES.get(wc.collection),
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    log:
        "logs/fetch_genesets_{collection}.{ext}.log",
    threads: rule_threads("fetch_genesets")
    resources:
        mem_mb=rule_mem_mb("fetch_genesets"),
        runtime=rule_runtime("fetch_genesets"),
    conda:
        "../../envs/fetch.yaml"
    script:
        "../../scripts/rule_fetch_genesets.py"


rule gene_aliases:
    input:
        # every donor has the same Probes.csv (the Allen annotation)
        f"{AHBA_DIR}/cache/donor{DONORS[0]}/Probes.csv",
    output:
        f"{AHBA_DIR}/gene_aliases.tsv",
    log:
        "logs/gene_aliases.log",
    threads: rule_threads("gene_aliases")
    resources:
        mem_mb=rule_mem_mb("gene_aliases"),
        runtime=rule_runtime("gene_aliases"),
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/rule_gene_aliases.py"


rule celltype_maps:
    input:
        expression="results/{atlas}/expression.tsv",
        genesets=geneset_path,
        aliases=gene_alias_input,
    output:
        table="results/{atlas}/celltypes/{geneset}.tsv",
        sets="results/{atlas}/celltypes/{geneset}_sets.tsv",
        figure=report(
            "results/{atlas}/celltypes/figures/{geneset}.png",
            caption="../report/celltype_maps.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"gene sets": "{geneset}", "figure": "regional cell-type maps"},
        ),
    params:
        min_genes=config["celltypes"]["min_genes"],
    log:
        "logs/celltype_maps_{atlas}_{geneset}.log",
    threads: rule_threads("celltype_maps")
    resources:
        mem_mb=rule_mem_mb("celltype_maps"),
        runtime=rule_runtime("celltype_maps"),
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/rule_celltype_maps.py"


rule celltype_compare:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        genesets=geneset_path,
        aliases=gene_alias_input,
    output:
        table="results/{atlas}/{map}/celltypes_{geneset}.tsv",
        figure=report(
            "results/{atlas}/{map}/figures/celltypes_{geneset}.png",
            caption="../report/celltype_compare.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"map": "{map}", "gene sets": "{geneset}", "figure": "map vs cell-type maps"},
        ),
    params:
        method=config["association"]["method"],
        min_genes=config["celltypes"]["min_genes"],
    log:
        "logs/celltype_compare_{atlas}_{map}_{geneset}.log",
    threads: rule_threads("celltype_compare")
    resources:
        mem_mb=rule_mem_mb("celltype_compare"),
        runtime=rule_runtime("celltype_compare"),
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/rule_celltype_compare.py"
