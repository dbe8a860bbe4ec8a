# Dense whole-brain cell-type maps (docs/dense_maps.md): each cell type's marker
# score at every AHBA tissue sample, interpolated (Gaussian process, or abagen's
# nearest samples) to every grey-matter voxel of MNI152; any atlas can then
# parcellate the NIfTI maps. Independent of the atlas: reads the probe selection.
# Outputs are off the default target unless dense.enabled (all_outputs).


rule dense_maps:
    input:
        selection=selection_files(),
        genesets=geneset_path,
        # the demo's truth: which set was planted, to check it is recovered
        truth=f"{DEMO_DIR}/truth.json" if IS_DEMO else [],
        # published dense maps to compare with (dense.external)
        external=list(config["dense"]["external"].values()),
    output:
        # the GP's posterior SD ('nearest' has none), the demo's check of the planted
        # field, the comparison with published maps: only when they apply
        **(
            {"uncertainty": "results/dense/{geneset}/uncertainty.nii.gz"}
            if config["dense"]["method"] == "gp" and config["dense"]["uncertainty"]
            else {}
        ),
        **({"validation": "results/dense/{geneset}/validation.tsv"} if IS_DEMO else {}),
        **(
            {"external": "results/dense/{geneset}/external.tsv"}
            if config["dense"]["external"]
            else {}
        ),
        maps="results/dense/{geneset}/maps.nii.gz",
        mask="results/dense/{geneset}/mask.nii.gz",
        celltypes="results/dense/{geneset}/celltypes.tsv",
        scores="results/dense/{geneset}/scores.tsv",
        sets="results/dense/{geneset}/sets.tsv",
        lodo="results/dense/{geneset}/lodo.tsv",
        figure=report(
            "results/dense/{geneset}/maps.png",
            caption="../report/dense_maps.rst",
            category="Cell types",
            subcategory="dense maps",
            labels={"gene sets": "{geneset}", "figure": "dense whole-brain maps"},
        ),
    log:
        "logs/dense_maps_{geneset}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("dense_maps")
    resources:
        mem_mb=rule_mem_mb("dense_maps"),
        runtime=rule_runtime("dense_maps"),
    params:
        library=library("rule_dense_maps.py"),
        # every option but 'enabled' (switching it on must not rerun finished maps)
        options={k: v for k, v in config["dense"].items() if k != "enabled"},
    script:
        "../../scripts/rules/rule_dense_maps.py"
