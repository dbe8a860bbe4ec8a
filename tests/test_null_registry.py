"""The null-model registry (itx.nullmodels), the null-stage file format
(itx.nullfiles) and vertex-level spins made once per atlas."""
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from itx import nullfiles, nullmaps, nullmodels, nulls, vertexspins

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"


# ------------------------------------------------------------------ registry

def test_schema_enums_equal_the_registry():
    """The schemas stay static YAML; this keeps their null enums in step with
    itx.nullmodels.REGISTRY (add a family there, then here the two files)."""
    config = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())
    nulls_schema = config["properties"]["nulls"]["properties"]
    cortex = list(nullmodels.names(part="cortex"))
    assert nulls_schema["method"]["enum"] == ["auto"] + cortex, \
        "config.schema.yaml nulls.method enum"
    assert nulls_schema["subcortex_method"]["enum"] == list(nullmodels.names(part="subcortex")), \
        "config.schema.yaml nulls.subcortex_method enum"
    maps = yaml.safe_load((SCHEMAS / "maps.schema.yaml").read_text())
    assert maps["properties"]["null_method"]["enum"] == ["", "auto"] + cortex, \
        "maps.schema.yaml null_method enum"


def test_registry_entries_are_consistent():
    for name, model in nullmodels.REGISTRY.items():
        assert model.name == name
        assert model.made_from in set(nullmodels.ARTEFACTS) | {"groups"}, name
        assert set(model.parts) <= {"cortex", "subcortex"} and model.parts, name
        assert callable(model.make)
        assert model.summary
        assert (model.artefact is None) == (model.made_from == "groups")
    # the spin implementations of itx.nulls cover exactly the surface families
    assert set(nulls.METHODS) == {m for m, v in nullmodels.REGISTRY.items() if v.needs_surface}
    assert nullmodels.get("vertex_spin").needs_vertex_map
    assert not any(m.needs_vertex_map for m in nullmodels.REGISTRY.values()
                   if m.name != "vertex_spin")
    with pytest.raises(ValueError, match="unknown null method 'spin'.*alexander_bloch"):
        nullmodels.get("spin")
    # the constants older code reads follow from the registry
    assert nullmaps.INDEX_METHODS == ("alexander_bloch", "vasa", "hungarian", "baum")
    assert nullmaps.CORTEX_METHODS == nullmodels.names(part="cortex")
    assert nullmaps.SUBCORTEX_METHODS == ("permute", "burt2020")
    assert nullmodels.wildcard_pattern("spins") == "alexander_bloch|vasa|hungarian|baum"


def _rule_outputs():
    """rule name -> output path of workflow/rules/nulls.smk."""
    text = (ROOT / "workflow" / "rules" / "nulls.smk").read_text()
    out = {}
    for block in re.split(r"^rule ", text, flags=re.M)[1:]:
        name = block.split(":", 1)[0]
        m = re.search(r'output:\s*\n\s*"([^"]+)"', block)
        if m:
            out[name] = m.group(1)
    return out


def test_every_artefact_has_its_rule():
    outputs = _rule_outputs()
    for made_from, art in nullmodels.ARTEFACTS.items():
        assert art.kind in nullfiles.KINDS
        assert nullfiles.KINDS[art.kind].rule == art.rule
        assert art.rule in outputs, f"no rule {art.rule} in nulls.smk"
        pattern = outputs[art.rule].replace("{atlas}", "dk")
        for model in nullmodels.REGISTRY.values():
            if model.made_from != made_from:
                continue
            path = f"results/dk/{model.artefact}"
            # the rule's output, its {method} wildcard filled in by the family
            assert re.fullmatch(re.escape(pattern).replace(r"\{method\}", "(?P<m>[a-z_0-9]+)"),
                                path), (model.name, path, pattern)


@pytest.mark.parametrize("method, sub, keys", [
    ("alexander_bloch", "permute", ["map", "atlas", "spins"]),
    ("baum", "burt2020", ["map", "atlas", "spins", "distance"]),
    ("cornblath", "permute", ["map", "atlas", "weights"]),
    ("moran", "permute", ["map", "atlas", "distance"]),
    ("burt2020", "burt2020", ["map", "atlas", "distance"]),
    ("vertex_spin", "permute", ["map", "atlas", "vertex_spins", "vertex"]),
])
def test_map_null_inputs(method, sub, keys):
    got = nullmodels.map_null_inputs("results/dk", "m", method, sub, atlas_files=["a.gii"],
                                     vertex_files=["l.gii", "r.gii"])
    assert list(got) == keys
    assert got["map"] == "results/dk/m/map.tsv" and got["atlas"] == ["a.gii"]
    if "spins" in got:
        assert got["spins"] == f"results/dk/nulls/spins_{method}.npz"
    if "vertex" in got:
        assert got["vertex"] == ["l.gii", "r.gii"]
        assert got["vertex_spins"] == "results/dk/nulls/vertex_spins.npz"


def test_every_make_shares_one_signature():
    rng = np.random.default_rng(0)
    n, n_perm = 6, 5
    values = rng.normal(size=n)
    xyz = rng.normal(size=(n, 3))
    dist = np.sqrt(((xyz[:, None] - xyz[None]) ** 2).sum(-1))
    from scipy import sparse

    weights = sparse.csr_matrix(np.tile(np.eye(n), (n_perm, 1)))
    source = np.tile(np.arange(n, dtype=np.int16)[:, None], (1, n_perm))
    spins = vertexspins.VertexSpins(regions=list("abcdef"), vertex=np.arange(n, dtype=np.int32),
                              parcel=np.arange(n, dtype=np.int32), source=source,
                              n_vertices=np.array([n, 0]), offsets=np.array([0, -1]))
    artefact = {"spins": np.tile(np.arange(n)[:, None], (1, n_perm)), "weights": weights,
                "distance": dist, "vertex": spins, "groups": None}
    for model in nullmodels.REGISTRY.values():
        out = model.make(nullmodels.NullPart(values=values, n_perm=n_perm, seed=3,
                                             artefact=artefact[model.made_from],
                                             vertex_data=(values, None),
                                             groups=np.zeros(n, int)))
        assert out.shape == (n, n_perm), model.name
        if model.made_from in ("spins", "weights", "vertex"):  # identity artefacts
            np.testing.assert_array_equal(out, np.tile(values[:, None], (1, n_perm)))


# --------------------------------------------------------------- file format

def _zip_members(path):
    import zipfile

    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def test_demo_files_keep_their_bytes(tmp_path):
    """spins_*.npz, distance.npz and nulls.npz are demo outputs: the unified
    writer gives the bytes of the writers it replaced (written here as they
    were: np.savez_compressed, same keys, order and dtypes)."""
    rng = np.random.default_rng(1)
    regions = [f"L_r{i}" for i in range(7)]
    idx = rng.integers(-1, 7, size=(7, 9))
    old = tmp_path / "old.npz"
    np.savez_compressed(old, idx=idx.astype(np.int32), regions=np.asarray(regions),
                        method=np.array("alexander_bloch"), seed=np.array(4, dtype=np.int64),
                        n_perm=np.array(9, dtype=np.int64), format=np.array("itx-spins-2"))
    new = nulls.save_spins(tmp_path / "new.npz", idx, regions, "alexander_bloch", 4)
    assert new.read_bytes() == old.read_bytes()

    dist = rng.random((7, 7))
    dist[0, 1] = np.inf
    np.savez_compressed(old, dist=dist, regions=np.asarray(regions))
    new = nullmaps.save_distance(tmp_path / "d.npz", dist, regions)
    assert new.read_bytes() == old.read_bytes()

    vals = rng.normal(size=(7, 9))
    vals[2, 3] = np.nan
    np.savez_compressed(old, values=vals, regions=np.asarray(regions),
                        method=np.array("burt2020"), seed=np.array(5, dtype=np.int64),
                        format=np.array("itx-nullmaps-1"))
    new = nullmaps.save_null_maps(tmp_path / "n.npz", vals, regions, "burt2020", 5)
    assert new.read_bytes() == old.read_bytes()

    from scipy import sparse

    w = sparse.random(14, 7, density=0.3, random_state=0, format="csr")
    np.savez_compressed(old, data=w.data, indices=w.indices, indptr=w.indptr,
                        shape=np.asarray(w.shape), regions=np.asarray(regions),
                        format=np.array("itx-nullmaps-1-weights"))
    new = nullmaps.save_weights(tmp_path / "w.npz", w, regions)
    assert _zip_members(new) == _zip_members(old)


def test_load_checks_kind_tag_and_regions(tmp_path):
    regions = ["L_a", "L_b", "L_c"]
    p = nullmaps.save_null_maps(tmp_path / "n.npz", np.zeros((3, 2)), regions, "vasa", 1)
    assert nullfiles.load(p, "null_maps", regions)["regions"] == regions
    with pytest.raises(nullfiles.NullFileError,
                       match=r"n\.npz was made for other regions .*row 1 is 'L_b', not 'L_x'.*"
                             r"delete it and rerun the map_nulls rule"):
        nullmaps.load_null_maps(p, ["L_a", "L_x", "L_c"])
    with pytest.raises(nullfiles.NullFileError, match="2 regions, not 3"):
        nullmaps.save_distance(tmp_path / "d.npz", np.zeros((2, 2)), ["L_a", "L_b"])
        nullmaps.load_distance(tmp_path / "d.npz", regions)
    # a file of another kind: the tag (or the keys) say so, and which rule remakes it
    with pytest.raises(nullfiles.NullFileError, match="not an itx spin file.*spins rule"):
        nulls.load_spins(p)
    np.savez(tmp_path / "old.npz", values=np.zeros((3, 2)), regions=np.array(regions),
             method=np.array("vasa"), seed=np.array(1), format=np.array("itx-nullmaps-0"))
    with pytest.raises(nullfiles.NullFileError, match="unsupported null-map file format "
                                                      "'itx-nullmaps-0'.*rerun the map_nulls"):
        nullmaps.load_null_maps(tmp_path / "old.npz")
    np.savez(tmp_path / "dx.npz", dist=np.zeros((3, 3)), regions=np.array(regions),
             format=np.array("x"))
    with pytest.raises(nullfiles.NullFileError, match="not an itx distance file"):
        nullmaps.load_distance(tmp_path / "dx.npz")
    with pytest.raises(ValueError, match="must end in .npz"):
        nullfiles.save(tmp_path / "x.npy", "distance", regions, dist=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="holds"):
        nullfiles.save(tmp_path / "x.npz", "distance", regions, dist=np.zeros((3, 3)), extra=1)
    assert not list(tmp_path.glob("*.part"))


# ----------------------------------------------------------- vertex spins

@pytest.fixture(scope="module")
def dk_left():
    from itx import atlas as atlases

    dk = atlases.load_atlas("dk", {"builtin": "desikan_killiany"})
    info = atlases.scope_regions(dk.info, "cortex")
    cortex = info[nullmaps.is_cortex(info)]
    return atlases.fsaverage5_surface(dk), cortex


def _brute_force(pair, labels, ids, rot):
    """The old per-map algorithm, one rotation at a time: rotate the vertex map,
    then parcellate (itx.vertexspins.vertex_parcel_means)."""
    data = np.r_[pair[0], pair[1]]
    out = np.empty((len(ids), rot.shape[1]))
    for j in range(rot.shape[1]):
        spun = data[rot[:, j]]
        out[:, j] = vertexspins.vertex_parcel_means((spun[:10242], spun[10242:]), labels, ids)
    return out


def test_vertex_spins_equal_the_per_map_algorithm(dk_left, tmp_path):
    labels, cortex = dk_left
    ids = cortex["id"].tolist()
    n_perm, seed = 12, nullmaps.derive_seed(7, "cortex")
    rng = np.random.default_rng(2)
    pair = [rng.normal(size=10242), rng.normal(size=10242)]
    pair[0][:300] = np.nan                      # vertices without data
    rot = vertexspins.vertex_rotations(n_perm, seed)
    spins = vertexspins.make_vertex_spins(labels, ids, n_perm, seed,
                                    regions=cortex["region"].tolist())
    # the per-atlas rule draws the same rotations, block by block
    assert spins.source.dtype == np.int16
    np.testing.assert_array_equal(spins.source, rot[spins.vertex])
    got = vertexspins.apply_vertex_spins(pair, spins)
    expect = _brute_force(pair, labels, ids, rot)
    np.testing.assert_array_equal(got, expect)            # bit for bit
    np.testing.assert_array_equal(vertexspins.spin_vertex_map(pair, labels, ids, rot), expect)
    # blocks of any size give the same bits
    np.testing.assert_array_equal(vertexspins.apply_vertex_spins(pair, spins, max_cells=5000), got)
    # through the file (the regions are checked)
    p = vertexspins.save_vertex_spins(tmp_path / "vs.npz", spins)
    back = vertexspins.load_vertex_spins(p, cortex["region"].tolist())
    np.testing.assert_array_equal(vertexspins.apply_vertex_spins(pair, back), got)
    assert back.seed == seed and back.n_perm == n_perm
    with pytest.raises(nullfiles.NullFileError, match="other regions"):
        vertexspins.load_vertex_spins(p, cortex["region"].tolist()[::-1])


def test_vertex_spins_one_hemisphere_and_rule_path(dk_left, tmp_path):
    labels, cortex = dk_left
    left = cortex[cortex["hemisphere"] == "L"]
    ids = left["id"].tolist()
    n_perm, seed = 6, 3
    rng = np.random.default_rng(4)
    lh = rng.normal(size=10242)
    # left-only rotations, as the calibration study uses them
    rot = vertexspins.vertex_rotations(n_perm, seed, hemispheres="left")
    spins = vertexspins.make_vertex_spins(labels, ids, rotations=rot)
    assert list(spins.offsets) == [0, -1]
    old = np.empty((len(ids), n_perm))
    for j in range(n_perm):
        old[:, j] = vertexspins.vertex_parcel_means((lh[rot[:, j]], None), labels, ids)
    np.testing.assert_array_equal(vertexspins.apply_vertex_spins((lh, None), spins), old)
    # the map_nulls path: files in, null maps over the scope out, sign applied
    import nibabel as nib

    files = []
    for h, d in (("lh", lh), ("rh", rng.normal(size=10242))):
        img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(d.astype(np.float32))])
        nib.save(img, tmp_path / f"{h}.func.gii")
        files.append(str(tmp_path / f"{h}.func.gii"))
    info = left.reset_index(drop=True)
    both = vertexspins.make_vertex_spins(labels, ids, n_perm, nullmaps.derive_seed(seed, "cortex"),
                                   regions=info["region"].tolist())
    vertexspins.save_vertex_spins(tmp_path / "vertex_spins.npz", both)
    values = np.zeros(len(info))
    got = nullmodels.map_nulls(values, info, "vertex_spin", "permute", n_perm, seed,
                               {"vertex_spins": str(tmp_path / "vertex_spins.npz"),
                                "vertex": files}, sign="-1")
    data = -np.asarray(nib.load(files[0]).darrays[0].data, dtype=np.float64)
    rot2 = vertexspins.vertex_rotations(n_perm, nullmaps.derive_seed(seed, "cortex"))
    np.testing.assert_array_equal(got, vertexspins.spin_vertex_map((data, None), labels, ids, rot2))


def test_auto_chooses_registered_families_that_fit():
    from itx.nullmaps import resolve_method

    assert set(nullmodels.AUTO) == {"vertex_map", "parcels", "no_surface"}
    for kind, name in nullmodels.AUTO.items():
        model = nullmodels.get(name)
        assert "cortex" in model.parts
        assert model.needs_vertex_map == (kind == "vertex_map"), kind
        assert not model.needs_surface or kind != "no_surface", kind
    assert resolve_method("auto", map_format="gifti", has_surface=True) == "vertex_spin"
    assert resolve_method("auto", map_format="table", has_surface=True) == "alexander_bloch"
    assert resolve_method("auto", map_format="nifti", has_surface=False) == "burt2020"
    assert resolve_method("auto", map_format="gifti", has_surface=False) == "burt2020"
