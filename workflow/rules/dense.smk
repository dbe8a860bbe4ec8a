# Dense whole-brain cell-type maps (docs/dense_maps.md): each cell type's marker
# score at every AHBA tissue sample, interpolated (Gaussian process, or abagen's
# nearest samples) to every grey-matter voxel of MNI152; any atlas can then
# parcellate the NIfTI maps. Independent of the atlas: reads the probe selection.


def dense_files(geneset):
    """Outputs of rule dense_maps for one gene-set collection."""
    base = f"results/dense/{geneset}"
    outs = [f"{base}/{f}" for f in ("maps.nii.gz", "mask.nii.gz", "celltypes.tsv", "scores.tsv",
                                      "sets.tsv", "lodo.tsv", "maps.png")]
    if config["dense"]["method"] == "gp" and config["dense"]["uncertainty"]:
        outs.append(f"{base}/uncertainty.nii.gz")
    if IS_DEMO:
        outs.append(f"{base}/validation.tsv")
    return outs


def dense_outputs():
    """Targets of every collection when dense.enabled (for all_outputs)."""
    if not config["dense"]["enabled"]:
        return []
    return [f for g in GENESETS for f in dense_files(g)]


def _dense_output(name):
    return f"results/dense/{{geneset}}/{name}"


rule dense_maps:
    input:
        selection=selection_files(),
        genesets=geneset_path,
        # the demo's truth: which set was planted, to check it is recovered
        truth=[f"{DEMO_DIR}/truth.json"] if IS_DEMO else [],
    output:
        maps=_dense_output("maps.nii.gz"),
        mask=_dense_output("mask.nii.gz"),
        celltypes=_dense_output("celltypes.tsv"),
        scores=_dense_output("scores.tsv"),
        sets=_dense_output("sets.tsv"),
        lodo=_dense_output("lodo.tsv"),
        figure=_dense_output("maps.png"),
        **(
            {"uncertainty": _dense_output("uncertainty.nii.gz")}
            if config["dense"]["method"] == "gp" and config["dense"]["uncertainty"]
            else {}
        ),
        **({"validation": _dense_output("validation.tsv")} if IS_DEMO else {}),
    params:
        # every option but 'enabled' (switching it on must not rerun finished maps)
        options={k: v for k, v in config["dense"].items() if k != "enabled"},
    log:
        "logs/dense_maps_{geneset}.log",
    threads: rule_threads("dense_maps")
    resources:
        mem_mb=rule_mem_mb("dense_maps"),
        runtime=rule_runtime("dense_maps"),
    conda:
        "../../envs/report.yaml"
    script:
        "../../scripts/rule_dense_maps.py"
