"""itx.calibration: the calibration study's rows for one atlas, and its figure."""
import numpy as np
import pandas as pd
import pytest

from itx import calibration


def table():
    rows = []
    for atlas, hemi, fprs in [("desikan_killiany", "left", {"a": 0.056, "b": 0.087, "c": 0.2}),
                              ("schaefer200", "both", {"a": 0.051, "b": 0.09})]:
        for method, fpr in fprs.items():
            for alpha, scale in ((0.05, 1.0), (0.01, 0.2)):
                rows.append({"atlas": atlas, "hemispheres": hemi, "method": method,
                             "sigma": "all", "alpha": alpha, "fpr": fpr * scale,
                             "ci_low": fpr * scale * 0.9, "ci_high": fpr * scale * 1.1})
                # per-sigma rows are not pooled: never used
                rows.append({**rows[-1], "sigma": "35", "fpr": 0.5})
    return pd.DataFrame(rows)


def test_rows_of_the_atlas_with_default_and_used_marked():
    out = calibration.atlas_calibration(table(), "schaefer200", "both", default="a",
                                        used=["b"])
    at05 = out[out["alpha"] == 0.05].set_index("null")
    assert list(at05.index) == ["a", "b", "c"]  # by rate; c only from the fallback atlas
    assert at05.loc["a", "fpr"] == pytest.approx(0.051)
    assert at05.loc["b", "fpr_ci_high"] == pytest.approx(0.099)
    assert at05.loc["a", "fpr_source"] == "schaefer200/both"
    assert "fallback" in at05.loc["c", "fpr_source"]
    assert at05.loc["c", "fpr"] == pytest.approx(0.2)
    assert at05["default"].tolist() == [True, False, False]
    assert at05["used"].tolist() == [False, True, False]
    at01 = out[out["alpha"] == 0.01].set_index("null")
    np.testing.assert_allclose(at01.loc[["a", "b"], "fpr"], [0.051 * 0.2, 0.09 * 0.2])
    assert list(out.columns) == calibration.COLUMNS


def test_a_level_the_table_lacks_gives_no_rows(tmp_path):
    out = calibration.atlas_calibration(table(), "desikan_killiany", "left", alphas=(0.001,))
    assert out.empty


def test_figure_is_written(tmp_path):
    out = calibration.atlas_calibration(table(), "desikan_killiany", "left", default="a",
                                        used=["a", "b"])
    path = calibration.plot_atlas_calibration(out, tmp_path / "f" / "cal.png", title="dk")
    assert path.exists() and path.stat().st_size > 1000
