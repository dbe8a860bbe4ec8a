# Stage 5: spatial nulls. Map-independent parts (spins of the atlas's parcels,
# permutations within subcortical structures, parcel distance matrices) are
# made once per atlas and scope and reused by every map; each map then gets its
# own null maps (results/{atlas}/{map}/nulls.npz) that every test reads.


rule spins:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/spins_{method}.npz",
    params:
        library=library("rule_spins.py"),
        atlas=atlas_param,
        scope=config["scope"],
        method=lambda wc: wc.method,
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    log:
        "logs/spins_{atlas}_{method}.log",
    threads: rule_threads("spins")
    resources:
        mem_mb=rule_mem_mb("spins"),
        runtime=rule_runtime("spins"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rules/rule_spins.py"


# cornblath: each null parcel value is a weighted mean of parcel values; the
# weights (counts of rotated vertices) do not depend on the map: made once.
rule spin_weights:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/weights_cornblath.npz",
    params:
        library=library("rule_spin_weights.py"),
        atlas=atlas_param,
        scope=config["scope"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    log:
        "logs/spin_weights_{atlas}.log",
    threads: rule_threads("spin_weights")
    resources:
        mem_mb=rule_mem_mb("spin_weights"),
        runtime=rule_runtime("spin_weights"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rules/rule_spin_weights.py"


rule null_distance:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/distance.npz",
    params:
        library=library("rule_null_distance.py"),
        atlas=atlas_param,
        scope=config["scope"],
    log:
        "logs/null_distance_{atlas}.log",
    threads: rule_threads("null_distance")
    resources:
        mem_mb=rule_mem_mb("null_distance"),
        runtime=rule_runtime("null_distance"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rules/rule_null_distance.py"


rule map_nulls:
    input:
        unpack(map_null_inputs),
    output:
        "results/{atlas}/{map}/nulls.npz",
    params:
        library=library("rule_map_nulls.py"),
        atlas=atlas_param,
        scope=config["scope"],
        method=map_null_method,
        sign=lambda wc: map_row(wc)["sign"],
        subcortex_method=config["nulls"]["subcortex_method"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    log:
        "logs/map_nulls_{atlas}_{map}.log",
    group:
        "per_map"
    threads: rule_threads("map_nulls")
    resources:
        mem_mb=rule_mem_mb("map_nulls"),
        runtime=rule_runtime("map_nulls"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rules/rule_map_nulls.py"


# Does the null keep the map's spatial autocorrelation? Empirical variogram of
# the map against the variograms of its null maps (Burt 2020), for any family.
rule variogram:
    input:
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        distance="results/{atlas}/nulls/distance.npz",
    output:
        table="results/{atlas}/{map}/variogram.tsv",
        figure=report(
            "results/{atlas}/{map}/figures/variogram.png",
            caption="../report/variogram.rst",
            category="Nulls",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "figure": "variogram fit"},
        ),
    params:
        library=library("rule_variogram.py"),
    log:
        "logs/variogram_{atlas}_{map}.log",
    group:
        "per_map"
    threads: rule_threads("variogram")
    resources:
        mem_mb=rule_mem_mb("variogram"),
        runtime=rule_runtime("variogram"),
    conda:
        "../../envs/nulls.yaml"
    script:
        "../../scripts/rules/rule_variogram.py"
