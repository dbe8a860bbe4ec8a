"""Region names from other sources: ENIGMA tables, precomputed expression tables."""
import os
from pathlib import Path

import pandas as pd
import pytest

from itx import atlas, expression, parcellate, regions

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITX_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def dk():
    return atlas.desikan_killiany().info


def test_name_lookup_accepts_enigma_and_unique_labels(dk):
    lookup = regions.name_lookup(dk)
    assert lookup["l_bankssts"] == "L_bankssts"
    assert lookup["brainstem"] == "B_brainstem"
    assert lookup["laccumb"] == "L_accumbensarea" and lookup["rthal"] == "R_thalamusproper"
    assert "bankssts" not in lookup  # not unique: both hemispheres


def test_enigma_subcortical_table_matches_and_skips_ventricles(dk, tmp_path, caplog):
    rows = [("Laccumb", 0.1), ("Rhippo", -0.2), ("LLatVent", 0.3), ("brainstem", 0.05)]
    path = tmp_path / "subvol.csv"
    pd.DataFrame({"Structure": [r for r, _ in rows], "d_icv": [v for _, v in rows]}).to_csv(
        path, index=False)
    v = parcellate.read_region_table(path, dk, column="d_icv").dropna()
    assert v.to_dict() == {"L_accumbensarea": 0.1, "R_hippocampus": -0.2, "B_brainstem": 0.05}
    assert "LLatVent" in caplog.text
    pd.DataFrame({"Structure": ["Lfoo"], "d_icv": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="Lfoo"):
        parcellate.read_region_table(path, dk, column="d_icv")


def _write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_precomputed_by_name_with_bom_and_duplicates(dk, tmp_path):
    text = "label,Region,A,B,Mar-01,Mar-01\n1,L_bankssts,1,2,3,4\n83,brainstem,5,6,7,8\n"
    table, notes = expression.read_precomputed(_write(tmp_path / "t.csv", text, bom=True), dk)
    assert list(table.columns) == ["region", "A", "B"]
    assert len(table) == 83 and table["A"].notna().sum() == 2
    assert table.set_index("region").loc["B_brainstem", "B"] == 6
    assert any("Mar-01" in n for n in notes)


def test_precomputed_by_id_and_errors(dk, tmp_path):
    table, _ = expression.read_precomputed(
        _write(tmp_path / "i.tsv", "id\tA\n2\t0.5\n"), dk)
    assert table.set_index("region").loc["L_caudalanteriorcingulate", "A"] == 0.5
    with pytest.raises(ValueError, match="another atlas"):
        expression.read_precomputed(_write(tmp_path / "x.csv", "region,A\nV1,1\n"), dk)
    with pytest.raises(ValueError, match="disagree"):
        expression.read_precomputed(_write(tmp_path / "y.csv", "label,Region,A\n2,L_bankssts,1\n"),
                                    dk)
    with pytest.raises(ValueError, match="not numeric"):
        expression.read_precomputed(_write(tmp_path / "z.csv", "region,A\nL_bankssts,x\n"), dk)
    with pytest.raises(ValueError, match="no region column"):
        expression.read_precomputed(_write(tmp_path / "w.csv", "foo,A\n1.5,1\n"), dk)
    with pytest.raises(ValueError, match="more than once"):
        expression.read_precomputed(
            _write(tmp_path / "v.csv", "region,A\nL_bankssts,1\nl_bankssts,2\n"), dk)


@pytest.mark.skipif(not (DATA / "ahba_parcellated").is_dir(), reason="../shared/data not available")
def test_real_published_tables(dk):
    table, notes = expression.read_precomputed(
        DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv", dk)
    assert table.shape == (83, 1 + 15629) and table.iloc[:, 1:].notna().all().all()
    table, _ = expression.read_precomputed(
        DATA / "ahba_parcellated" / "allgenes_stable_r0.6.csv", dk)
    assert table.shape == (83, 1 + 1645)
    empty = table.set_index("region").isna().all(axis=1)
    # no brainstem row; right frontal and temporal poles have no AHBA sample
    assert sorted(empty[empty].index) == ["B_brainstem", "R_frontalpole", "R_temporalpole"]
