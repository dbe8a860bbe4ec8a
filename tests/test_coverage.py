"""One definition of a usable region (itx.coverage.region_use), shared by the
tests (analysis.align), the coverage table and the figures."""
import numpy as np
import pandas as pd

from itx.analysis import align
from itx.coverage import coverage_table, region_use


def _inputs(seed=0, n=12, n_genes=4):
    rng = np.random.default_rng(seed)
    regions = [f"L_r{i}" for i in range(n)]
    values = pd.Series(rng.normal(size=n), index=regions)
    values.iloc[[1, 5]] = np.nan
    expr = pd.DataFrame(rng.normal(size=(n, n_genes)), index=regions,
                        columns=[f"G{j}" for j in range(n_genes)])
    expr.iloc[5, 0] = np.nan   # no map value and no expression
    expr.iloc[7, 2] = np.nan   # one gene missing: the region has no expression
    return regions, values, expr


def test_region_use_matches_a_loop():
    regions, values, expr = _inputs()
    asked = regions + ["L_absent"]
    use = region_use(asked, values, expr)
    for r in asked:
        has_map = r in values.index and np.isfinite(values[r])
        has_expr = r in expr.index and all(np.isfinite(v) for v in expr.loc[r])
        assert use.loc[r, "has_map_value"] == has_map, r
        assert use.loc[r, "has_expression"] == has_expr, r
        assert use.loc[r, "used"] == (has_map and has_expr), r
    assert list(use.index) == asked


def test_align_coverage_and_region_use_agree():
    regions, values, expr = _inputs(seed=3)
    scope = regions[:10]
    nulls = np.tile(values.reindex(scope).to_numpy()[:, None], (1, 3))
    aligned = align(expr.rename_axis("region").reset_index(),
                    values.rename("value").rename_axis("region").reset_index(), nulls, scope)
    table = coverage_table(
        pd.DataFrame({"region": regions, "id": range(1, 13), "hemisphere": "L",
                      "structure": "cortex", "value": values.to_numpy()}),
        scope, expr.rename_axis("region").reset_index())
    use = region_use(scope, values, expr)
    assert aligned.regions == list(use.index[use["used"]])
    assert table.loc[table["used"], "region"].tolist() == aligned.regions
