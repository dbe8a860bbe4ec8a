# Stages 2-3: probe filtering and sample-to-region mapping (abagen), per atlas.


rule expression:
    input:
        all_donor_files(),
    output:
        expression="results/{atlas}/expression.tsv",
        probes="results/{atlas}/probes.tsv",
        samples="results/{atlas}/samples.tsv",
        counts="results/{atlas}/sample_counts.tsv",
        stability="results/{atlas}/stability.tsv",
        donors=expand("results/{{atlas}}/donors/expression_{donor}.tsv", donor=DONORS),
        methods="results/{atlas}/methods.txt",
    params:
        donors=DONORS,
        atlas=lambda wc: config["atlases"][wc.atlas],
        options=config["expression"],
    log:
        "logs/expression_{atlas}.log",
    conda:
        "../../envs/expression.yaml"
    script:
        "../../scripts/rule_expression.py"
