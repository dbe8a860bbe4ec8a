# Stages 2-3: probe filtering and sample-to-region mapping (abagen), per atlas.


# Each donor's CSVs are parsed once into a binary cache; changing the atlas or
# an abagen option reruns only the expression rule, never the parsing.
rule ahba_cache:
    input:
        lambda wc: donor_files(wc.donor),
    output:
        donor_cache_files("{donor}"),
    log:
        "logs/ahba_cache_{donor}.log",
    conda:
        "../../envs/expression.yaml"
    threads: rule_threads("ahba_cache")
    resources:
        mem_mb=rule_mem_mb("ahba_cache"),
        runtime=rule_runtime("ahba_cache"),
    params:
        library=library("rule_ahba_cache.py"),
    script:
        "../../scripts/rules/rule_ahba_cache.py"


# Probe filtering and one-probe-per-gene selection need no atlas: done once and
# reused by every atlas; changing one of SELECTION_OPTIONS (a param) reruns it.
rule select_probes:
    input:
        cache=all_cache_files(),
        # probe_selection "rnaseq": abagen compares each probe with the RNA-seq
        rnaseq=all_rnaseq_files() if USE_RNASEQ else [],
    output:
        selection_files(),
    log:
        "logs/select_probes.log",
    conda:
        "../../envs/expression.yaml"
    threads: rule_threads("select_probes")
    resources:
        mem_mb=rule_mem_mb("select_probes"),
        runtime=rule_runtime("select_probes"),
    params:
        library=library("rule_select_probes.py"),
        donors=DONORS,
        options={k: config["expression"][k] for k in SELECTION_OPTIONS},
    script:
        "../../scripts/rules/rule_select_probes.py"


rule expression:
    input:
        atlas=atlas_inputs,
        selection=selection_files(),
    output:
        expression="results/{atlas}/expression.tsv",
        probes="results/{atlas}/probes.tsv",
        samples="results/{atlas}/samples.tsv",
        counts="results/{atlas}/sample_counts.tsv",
        stability="results/{atlas}/stability.tsv",
        donors=expand("results/{{atlas}}/donors/expression_{donor}.tsv", donor=DONORS),
        methods="results/{atlas}/methods.txt",
    log:
        "logs/expression_{atlas}.log",
    conda:
        "../../envs/expression.yaml"
    threads: rule_threads("expression")
    resources:
        mem_mb=rule_mem_mb("expression"),
        runtime=rule_runtime("expression"),
    params:
        library=library("rule_expression.py"),
        donors=DONORS,
        atlas=atlas_param,
        options={
            k: v for k, v in config["expression"].items() if k not in ("source", "precomputed")
        },
    script:
        "../../scripts/rules/rule_expression.py"
