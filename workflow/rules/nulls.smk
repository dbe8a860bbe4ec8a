# Stage 5: spatial nulls, once per atlas and scope, reused by every map.


rule spins:
    output:
        "results/{atlas}/nulls/spins.npz",
    params:
        atlas=lambda wc: config["atlases"][wc.atlas],
        scope=config["scope"],
        method=config["nulls"]["method"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    log:
        "logs/spins_{atlas}.log",
    threads: rule_threads("spins")
    resources:
        mem_mb=rule_mem_mb("spins"),
        runtime=rule_runtime("spins"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rule_spins.py"
