"""A real study end to end: ENIGMA MDD (adults) cortical thickness vs real AHBA expression.

The map is the published ENIGMA case-control effect-size table (Cohen's d per
Desikan-Killiany region), the expression the published abagen-processed DK
table of 15,633 genes (expression.source: precomputed), the nulls spins of
the DK parcels, the gene sets Seidlitz 2020's seven cell classes. Every gene's
r must equal scipy's Spearman correlation over the regions used.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import copy_checkout

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITX_SHARED_DATA", ROOT.parent / "shared" / "data"))
ENIGMA = DATA / "enigma" / "summary_statistics" / "mddadult_case-controls_CortThick.csv"
DK_TABLE = DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv"
PSP = DATA / "genesets" / "celltypes_PSP.csv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ENIGMA.exists() and DK_TABLE.exists() and PSP.exists()),
                       reason="../shared/data not available"),
]


@pytest.fixture(scope="module")
def mdd_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mdd") / "repo"
    copy_checkout(work, resources=False)
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["expression"]["source"] = "precomputed"
    cfg["expression"]["precomputed"] = {"dk": str(DK_TABLE)}
    cfg["scope"] = "cortex"
    cfg["nulls"].update(method="alexander_bloch", n_perm=1000, seed=11)
    cfg["genesets"] = {"seidlitz2020": str(PSP)}
    cfg["enrichment"].update(n_random=1000)
    cfg["maps"] = "config/mdd.tsv"
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # thinner cortex in cases = negative d; sign -1 makes "more thinning" positive
    (work / "config" / "mdd.tsv").write_text(
        "map\tpath\tformat\tcolumn\tatlas\tsign\tdescription\n"
        f"mdd_ct\t{ENIGMA}\ttable\td_icv\tdk\t-1\tENIGMA MDD adults, cortical thinning (-d)\n")
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    return work / "results" / "dk"


def test_gene_r_equals_scipy_spearman_per_gene(mdd_run):
    genes = pd.read_csv(mdd_run / "mdd_ct" / "genes.tsv", sep="\t").set_index("gene")
    cov = pd.read_csv(mdd_run / "mdd_ct" / "coverage.tsv", sep="\t")
    used = cov.loc[cov["used"], "region"].tolist()
    assert len(used) == 68  # every cortical DK region has both a d and expression
    enigma = pd.read_csv(ENIGMA).set_index("Structure")["d_icv"]
    y = -enigma.reindex(used).to_numpy(float)
    expr = pd.read_csv(DK_TABLE, encoding="utf-8-sig").set_index("Region").loc[used]
    # pandas renames repeated header names (Mar-01, Mar-01.1): drop both copies of each
    mangled = [c for c in expr.columns if c.split(".")[0] in ("Mar-01", "Mar-02")]
    assert len(mangled) == 4
    expr = expr.drop(columns=mangled + ["label"])
    assert len(genes) == expr.shape[1] == 15629  # 15,633 minus the 4 mangled Mar-01/Mar-02
    r_scipy = np.array([stats.spearmanr(expr[g].to_numpy(float), y)[0] for g in genes.index])
    np.testing.assert_allclose(genes["r"].to_numpy(), r_scipy, rtol=0, atol=1e-10)
    # naive p is scipy's too; the spin p is never below the +1 floor
    p_scipy = np.array([stats.spearmanr(expr[g].to_numpy(float), y)[1]
                        for g in genes.index[:200]])
    np.testing.assert_allclose(genes["p_naive"].to_numpy()[:200], p_scipy, rtol=1e-6)
    assert genes["p_spin"].min() >= 1 / 1001 - 1e-12
    # spatial autocorrelation: fewer genes pass the spin null than the naive test
    assert (genes["p_spin"] < 0.05).mean() < (genes["p_naive"] < 0.05).mean()


def test_seidlitz_classes_are_tested(mdd_run):
    enr = pd.read_csv(mdd_run / "mdd_ct" / "enrichment_seidlitz2020.tsv", sep="\t")
    assert set(enr["set"]) == {"Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "Oligo", "OPC"}
    assert enr["n_genes"].min() > 50
    assert enr[["p_spatial", "p_random"]].apply(lambda c: c.between(0, 1).all()).all()
    sets = pd.read_csv(mdd_run / "mdd_ct" / "enrichment_seidlitz2020_sets.tsv", sep="\t")
    assert len(sets) == 7


def test_joint_model_of_the_seidlitz_classes_is_statsmodels_ols(mdd_run):
    """The joint model on real data: betas, R2 and F equal statsmodels' OLS on the same
    cell-type maps; the dominances add up to R2."""
    sm = pytest.importorskip("statsmodels.api")
    from itx import celltypes, genesets

    terms = pd.read_csv(mdd_run / "mdd_ct" / "multivariate_seidlitz2020.tsv", sep="\t")
    dom = pd.read_csv(mdd_run / "mdd_ct" / "dominance_seidlitz2020.tsv", sep="\t")
    assert (terms["note"].isna() | (terms["note"] == "")).all()
    cov = pd.read_csv(mdd_run / "mdd_ct" / "coverage.tsv", sep="\t")
    used = cov.loc[cov["used"], "region"].tolist()
    expr = pd.read_csv(mdd_run / "expression.tsv", sep="\t").set_index("region").loc[used]
    maps = celltypes.celltype_maps(expr, genesets.read_gene_sets(PSP), 10).table
    y = pd.read_csv(mdd_run / "mdd_ct" / "map.tsv", sep="\t").set_index("region")["value"]

    def z(a):
        return (a - a.mean()) / a.std(ddof=1)

    fit = sm.OLS(z(y.loc[used]).to_numpy(),
                 sm.add_constant(maps.apply(z).to_numpy())).fit()
    np.testing.assert_allclose(terms["beta"].to_numpy()[1:], fit.params[1:], atol=1e-10)
    np.testing.assert_allclose(terms["se"].to_numpy()[1:], fit.bse[1:], rtol=1e-8)
    np.testing.assert_allclose(terms["model_r2"].iloc[0], fit.rsquared, atol=1e-12)
    np.testing.assert_allclose(terms["model_F"].iloc[0], fit.fvalue, rtol=1e-10)
    assert terms["term"].tolist()[1:] == list(maps.columns)
    np.testing.assert_allclose(dom["dominance"].sum(), fit.rsquared, atol=1e-12)
    assert terms["p_spin"].iloc[1:].between(1 / 1001 - 1e-12, 1).all()
    assert (terms["n_null"] > 900).all()
