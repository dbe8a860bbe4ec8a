# Null sensitivity: each map analysed again under every further null of
# nulls.sensitivity (or the sheet's null_sensitivity column), each null's results
# kept apart in results/{atlas}/{map}/sensitivity/{null}/, then one table, figure
# and page per map that put the nulls side by side with their calibrated
# false-positive rates (docs/calibration.md). The rules are those of the map's own
# null, reading and writing the null's folder.


use rule map_nulls as map_nulls_sensitivity with:
    input:
        unpack(sensitivity_null_inputs),
    output:
        "results/{atlas}/{map}/sensitivity/{null}/nulls.npz",
    log:
        "logs/map_nulls_{atlas}_{map}_{null}.log",
    params:
        library=library("rule_map_nulls.py"),
        atlas=atlas_param,
        scope=config["scope"],
        method=lambda wc: wc.null,
        sign=lambda wc: map_row(wc)["sign"],
        subcortex_method=config["nulls"]["subcortex_method"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],


use rule association as association_sensitivity with:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/sensitivity/{null}/nulls.npz",
    output:
        "results/{atlas}/{map}/sensitivity/{null}/genes.tsv",
    log:
        "logs/association_{atlas}_{map}_{null}.log",


# the bootstrapped PLS1 weights do not depend on the null, but the rule writes them
# with the tested variance explained; both are kept in the null's folder
use rule pls as pls_sensitivity with:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/sensitivity/{null}/nulls.npz",
    output:
        components="results/{atlas}/{map}/sensitivity/{null}/pls.tsv",
        genes="results/{atlas}/{map}/sensitivity/{null}/pls_genes.tsv",
        scores="results/{atlas}/{map}/sensitivity/{null}/pls_scores.tsv",
    log:
        "logs/pls_{atlas}_{map}_{null}.log",


use rule enrichment as enrichment_sensitivity with:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/sensitivity/{null}/nulls.npz",
        genesets=geneset_path,
        aliases=gene_alias_input,
        ranking=lambda wc: (
            f"results/{wc.atlas}/{wc.map}/pls_genes.tsv"
            if config["enrichment"]["ranking"] == "pls1"
            else []
        ),
    output:
        table="results/{atlas}/{map}/sensitivity/{null}/enrichment_{geneset}.tsv",
        sets="results/{atlas}/{map}/sensitivity/{null}/enrichment_{geneset}_sets.tsv",
        nulls="results/{atlas}/{map}/sensitivity/{null}/enrichment_{geneset}_nulls.tsv.gz",
    log:
        "logs/enrichment_{atlas}_{map}_{geneset}_{null}.log",


use rule celltype_compare as celltype_compare_sensitivity with:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/sensitivity/{null}/nulls.npz",
        genesets=geneset_path,
        aliases=gene_alias_input,
    output:
        table="results/{atlas}/{map}/sensitivity/{null}/celltypes_{geneset}.tsv",
        figure="results/{atlas}/{map}/sensitivity/{null}/figures/celltypes_{geneset}.png",
    log:
        "logs/celltype_compare_{atlas}_{map}_{geneset}_{null}.log",


rule null_sensitivity:
    input:
        unpack(null_sensitivity_inputs),
    output:
        table="results/{atlas}/{map}/null_sensitivity.tsv",
        html=report(
            "results/{atlas}/{map}/null_sensitivity.html",
            caption="../report/null_sensitivity.rst",
            category="Robustness",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "page": "null sensitivity"},
        ),
        figure=report(
            "results/{atlas}/{map}/figures/null_sensitivity.png",
            caption="../report/null_sensitivity.rst",
            category="Robustness",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "figure": "null sensitivity"},
        ),
    log:
        "logs/null_sensitivity_{atlas}_{map}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("null_sensitivity")
    resources:
        mem_mb=rule_mem_mb("null_sensitivity"),
        runtime=rule_runtime("null_sensitivity"),
    params:
        library=library("rule_null_sensitivity.py"),
        nulls=null_sensitivity_names,
        genesets=GENESETS,
        celltype_sets=CELLTYPE_SETS,
        atlas_key=lambda wc: atlas_key(wc.atlas),
        hemispheres="left" if config["scope"].startswith("left") else "both",
        n_perm=config["nulls"]["n_perm"],
    script:
        "../../scripts/rules/rule_null_sensitivity.py"


# The calibration study (docs/calibration.md) for the atlas: every null's false-positive
# rate, the default null and the nulls of this run marked.
rule null_calibration:
    input:
        calibration=str(CALIBRATION_TABLE),
    output:
        table="results/{atlas}/null_calibration.tsv",
        figure=report(
            "results/{atlas}/figures/null_calibration.png",
            caption="../report/null_calibration.rst",
            category="Nulls",
            subcategory="{atlas}",
            labels={"atlas": "{atlas}", "figure": "calibration of the nulls"},
        ),
    log:
        "logs/null_calibration_{atlas}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("null_calibration")
    resources:
        mem_mb=rule_mem_mb("null_calibration"),
        runtime=rule_runtime("null_calibration"),
    params:
        library=library("rule_null_calibration.py"),
        atlas_key=lambda wc: atlas_key(wc.atlas),
        hemispheres="left" if config["scope"].startswith("left") else "both",
        default=lambda wc: default_null(wc.atlas),
        used=lambda wc: atlas_nulls(wc.atlas),
    script:
        "../../scripts/rules/rule_null_calibration.py"
