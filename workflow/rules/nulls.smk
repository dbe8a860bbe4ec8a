# Stage 5: spatial nulls. Map-independent parts (spins of the atlas's parcels,
# permutations within subcortical structures, parcel distance matrices, the
# rotated vertices of vertex-level spins) are made once per atlas and scope and
# reused by every map; each map then gets its own null maps
# (results/{atlas}/{map}/nulls.npz) that every test reads. Which family needs
# which of these files is declared once, in itx.nullmodels.REGISTRY.


rule spins:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/spins_{method}.npz",
    log:
        "logs/spins_{atlas}_{method}.log",
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("spins")
    resources:
        mem_mb=rule_mem_mb("spins"),
        runtime=rule_runtime("spins"),
    params:
        library=library("rule_spins.py"),
        atlas=atlas_param,
        scope=config["scope"],
        method=lambda wc: wc.method,
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    script:
        "../../scripts/rules/rule_spins.py"


# cornblath: each null parcel value is a weighted mean of parcel values; the
# weights (counts of rotated vertices) do not depend on the map: made once.
rule spin_weights:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/weights_cornblath.npz",
    log:
        "logs/spin_weights_{atlas}.log",
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("spin_weights")
    resources:
        mem_mb=rule_mem_mb("spin_weights"),
        runtime=rule_runtime("spin_weights"),
    params:
        library=library("rule_spin_weights.py"),
        atlas=atlas_param,
        scope=config["scope"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    script:
        "../../scripts/rules/rule_spin_weights.py"


# vertex_spin: for each rotation, the source vertex of every parcel vertex; the
# rotations do not depend on the map, so every GIFTI map of the atlas reuses them
# (itx.vertexspins.make_vertex_spins; the per-map step is a gather and a parcel mean).
rule vertex_spins:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/vertex_spins.npz",
    log:
        "logs/vertex_spins_{atlas}.log",
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("vertex_spins")
    resources:
        mem_mb=rule_mem_mb("vertex_spins"),
        runtime=rule_runtime("vertex_spins"),
    params:
        library=library("rule_vertex_spins.py"),
        atlas=atlas_param,
        scope=config["scope"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
    script:
        "../../scripts/rules/rule_vertex_spins.py"


rule null_distance:
    input:
        atlas=atlas_inputs,
    output:
        "results/{atlas}/nulls/distance.npz",
    log:
        "logs/null_distance_{atlas}.log",
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("null_distance")
    resources:
        mem_mb=rule_mem_mb("null_distance"),
        runtime=rule_runtime("null_distance"),
    params:
        library=library("rule_null_distance.py"),
        atlas=atlas_param,
        scope=config["scope"],
    script:
        "../../scripts/rules/rule_null_distance.py"


rule map_nulls:
    input:
        unpack(map_null_inputs),
    output:
        "results/{atlas}/{map}/nulls.npz",
    log:
        "logs/map_nulls_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("map_nulls")
    resources:
        mem_mb=rule_mem_mb("map_nulls"),
        runtime=rule_runtime("map_nulls"),
    params:
        library=library("rule_map_nulls.py"),
        atlas=atlas_param,
        scope=config["scope"],
        method=map_null_method,
        sign=lambda wc: map_row(wc)["sign"],
        subcortex_method=config["nulls"]["subcortex_method"],
        n_perm=config["nulls"]["n_perm"],
        seed=config["nulls"]["seed"],
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
    log:
        "logs/variogram_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/nulls.yaml"
    threads: rule_threads("variogram")
    resources:
        mem_mb=rule_mem_mb("variogram"),
        runtime=rule_runtime("variogram"),
    params:
        library=library("rule_variogram.py"),
    script:
        "../../scripts/rules/rule_variogram.py"
