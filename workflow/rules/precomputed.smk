# Stages 1-3 replaced by a published region x gene table (expression.source:
# precomputed): the table is matched to the atlas and written where the AHBA
# stages would write their matrix, so every later stage is unchanged.

# Defined only when used: both this rule and `expression` write expression.tsv.
if PRECOMPUTED:

    ruleorder: expression_precomputed > expression

    rule expression_precomputed:
        input:
            table=lambda wc: config["expression"]["precomputed"][wc.atlas],
            atlas=atlas_inputs,
        output:
            expression="results/{atlas}/expression.tsv",
            methods="results/{atlas}/methods.txt",
        log:
            "logs/expression_precomputed_{atlas}.log",
        conda:
            "../../envs/expression.yaml"
        threads: rule_threads("expression_precomputed")
        resources:
            mem_mb=rule_mem_mb("expression_precomputed"),
            runtime=rule_runtime("expression_precomputed"),
        params:
            library=library("rule_expression_precomputed.py"),
            atlas=atlas_param,
        script:
            "../../scripts/rules/rule_expression_precomputed.py"
