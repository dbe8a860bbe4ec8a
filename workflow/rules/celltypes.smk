# Stage 7b: built-in gene-set collections (fetched, checksum-verified), and
# regional cell-type maps compared with every map (spatial-null p values).


# downloads run where Snakemake runs, never in cluster jobs (as fetch_donor)
localrules:
    fetch_genesets,
    fetch_ontology,


rule fetch_genesets:
    output:
        f"{RESOURCES_DIR}/genesets/{{collection}}.{{ext}}",
    log:
        "logs/fetch_genesets_{collection}.{ext}.log",
    wildcard_constraints:
        collection="|".join(BUILTIN_COLLECTIONS),
        ext="csv|gmt|collect|xlsx",
    conda:
        "../../envs/fetch.yaml"
    threads: rule_threads("fetch_genesets")
    resources:
        mem_mb=rule_mem_mb("fetch_genesets"),
        runtime=rule_runtime("fetch_genesets"),
    params:
        source=lambda wc: BUILTIN_GENESET_SOURCES.get(wc.collection),
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    script:
        "../../scripts/rules/rule_fetch_genesets.py"


rule fetch_ontology:
    output:
        f"{RESOURCES_DIR}/ontologies/{{ontology}}.obo",
    log:
        "logs/fetch_ontology_{ontology}.log",
    wildcard_constraints:
        ontology="|".join(BUILTIN_ONTOLOGIES),
    conda:
        "../../envs/fetch.yaml"
    threads: rule_threads("fetch_ontology")
    resources:
        mem_mb=rule_mem_mb("fetch_ontology"),
        runtime=rule_runtime("fetch_ontology"),
    params:
        source=lambda wc: ONTOLOGY_SOURCES.get(wc.ontology),
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    script:
        "../../scripts/rules/rule_fetch_ontology.py"


# GO terms list their direct annotations only; a gene of a term is a gene of every
# ancestor term (the true-path rule), as gene-category enrichment assumes
rule propagate_genesets:
    input:
        sets=lambda wc: collection_file(
            config["genesets"][GENESET_OF[wc.collection]], f"{RESOURCES_DIR}/genesets"
        ),
        ontology=lambda wc: f"{RESOURCES_DIR}/ontologies/"
        f"{BUILTIN_COLLECTIONS[wc.collection].ontology}.obo",
    output:
        sets=f"{RESOURCES_DIR}/genesets/{{collection}}.propagated.gmt",
        report=f"{RESOURCES_DIR}/genesets/{{collection}}.propagated.tsv",
    log:
        "logs/propagate_genesets_{collection}.log",
    wildcard_constraints:
        collection="|".join(BUILTIN_COLLECTIONS),
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("propagate_genesets")
    resources:
        mem_mb=rule_mem_mb("propagate_genesets"),
        runtime=rule_runtime("propagate_genesets"),
    params:
        library=library("rule_propagate_genesets.py"),
    script:
        "../../scripts/rules/rule_propagate_genesets.py"


rule gene_aliases:
    input:
        # every donor has the same Probes.csv (the Allen annotation)
        f"{AHBA_DIR}/cache/donor{DONORS[0]}/Probes.csv",
    output:
        f"{AHBA_DIR}/gene_aliases.tsv",
    log:
        "logs/gene_aliases.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("gene_aliases")
    resources:
        mem_mb=rule_mem_mb("gene_aliases"),
        runtime=rule_runtime("gene_aliases"),
    params:
        library=library("rule_gene_aliases.py"),
    script:
        "../../scripts/rules/rule_gene_aliases.py"


rule celltype_maps:
    input:
        expression="results/{atlas}/expression.tsv",
        genesets=geneset_path,
        aliases=gene_alias_input,
        atlas=atlas_inputs,
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
        brain=report(
            "results/{atlas}/celltypes/figures/{geneset}_brain.png",
            caption="../report/celltype_maps.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"gene sets": "{geneset}", "figure": "cell-type maps on the brain"},
        ),
    log:
        "logs/celltype_maps_{atlas}_{geneset}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("celltype_maps")
    resources:
        mem_mb=rule_mem_mb("celltype_maps"),
        runtime=rule_runtime("celltype_maps"),
    params:
        library=library("rule_celltype_maps.py"),
        min_genes=config["celltypes"]["min_genes"],
        atlas=atlas_param,
    script:
        "../../scripts/rules/rule_celltype_maps.py"


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
    log:
        "logs/celltype_compare_{atlas}_{map}_{geneset}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("celltype_compare")
    resources:
        mem_mb=rule_mem_mb("celltype_compare"),
        runtime=rule_runtime("celltype_compare"),
    params:
        library=library("rule_celltype_compare.py"),
        method=config["association"]["method"],
        min_genes=config["celltypes"]["min_genes"],
        tail=config["nulls"]["tail"],
    script:
        "../../scripts/rules/rule_celltype_compare.py"
