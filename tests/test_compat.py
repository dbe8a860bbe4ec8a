"""itx.compat: each adaptation is needed (the call it covers fails without it)
and is confined to the package it adapts.

Every case runs in a fresh interpreter, since abagen can be imported (and so
adapted) only once per process.
"""
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from itx import compat

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run(code, skip=(), patch="patch_abagen"):
    """Run `code` after `compat.<patch>(skip=...)`; (returncode, stdout, stderr)."""
    prelude = textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(SCRIPTS)!r})
        from itx import compat
        compat.{patch}(skip={list(skip)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_registry_names_lines_and_packages():
    names = {(a.package, a.name) for a in compat.ADAPTATIONS}
    assert len(names) == len(compat.ADAPTATIONS)
    for a in compat.ADAPTATIONS:
        assert a.package in {"abagen", "brainsmash"}
        assert a.stands_for and a.why
        for line in a.stands_for:
            # "module.function (file.py:line[, line])"
            assert line.startswith(a.package + ".") and ".py:" in line, line


def test_applied_on_this_stack_are_registered():
    registered = {a.name for a in compat.ADAPTATIONS if a.package == "abagen"}
    assert set(compat.applied("abagen")) <= registered
    # on the pinned stack (pandas 2, numpy 2, setuptools without
    # pkg_resources) every abagen adaptation is needed
    if int(pd.__version__.split(".")[0]) >= 2 and int(np.__version__.split(".")[0]) >= 2:
        assert set(compat.applied("abagen")) == registered


@pytest.mark.skipif(importlib.util.find_spec("pkg_resources") is not None,
                    reason="pkg_resources is installed: nothing to adapt")
def test_pkg_resources_needed_and_gone_after_import():
    code = """
        import abagen, importlib.util
        from abagen import probes_
        print(probes_.resource_filename('abagen', 'data/reannotated.csv.gz'))
        print('pkg_resources' in sys.modules)
    """
    rc, out, err = run(code)
    assert rc == 0, err
    path, visible = out.split()
    assert Path(path).is_file()
    assert visible == "False"  # the stand-in exists only while abagen imports
    rc, out, err = run(code, skip=["pkg_resources"])
    assert rc != 0 and "No module named 'pkg_resources'" in err


LABELTABLE = """
    from abagen import utils
    df = utils.labeltable_to_df([{0: 'unknown', 1: 'a'}, {2: 'b'}])
    print(df.to_json())
    print(hasattr(__import__('pandas').DataFrame, 'append'))
"""


def test_frame_append_needed_and_scoped():
    rc, out, err = run(LABELTABLE)
    assert rc == 0, err
    table, visible = out.split("\n")[:2]
    assert json.loads(table)["label"] == {"1": "a", "2": "b"}
    assert visible == "False"  # not visible outside abagen's calls
    rc, out, err = run(LABELTABLE, skip=["DataFrame.append"])
    assert rc != 0 and "'DataFrame' object has no attribute 'append'" in err


def test_frame_append_equals_pandas_1_semantics():
    # pandas 1.5's DataFrame.append(other) was concat([self, other]) (other a
    # frame, a list of frames or None) and Series.append likewise
    a = pd.DataFrame({"x": [1.0, 2.0]}, index=[3, 4])
    b = pd.DataFrame({"x": [5.0], "y": [6.0]}, index=[1])
    pd.testing.assert_frame_equal(compat._frame_append(a, b), pd.concat([a, b]))
    pd.testing.assert_frame_equal(compat._frame_append(a, [b, b], ignore_index=True),
                                  pd.concat([a, b, b], ignore_index=True))
    pd.testing.assert_frame_equal(compat._frame_append(a, None), a)
    with pytest.raises(TypeError, match="frames only"):
        compat._frame_append(a, pd.Series({"x": 1.0}))
    s = pd.Series([1, 2])
    pd.testing.assert_series_equal(compat._series_append(s, s, ignore_index=True),
                                   pd.Series([1, 2, 1, 2]))


def test_set_axis_inplace_needed():
    # a probe-selecting method (not averaging) renames probe columns to genes
    # with set_axis(..., inplace=False)
    code = """
        import numpy as np, pandas as pd
        from abagen import probes_
        samples = pd.Index([1, 2, 3], name='sample_id')
        probe_ids = pd.Index([10, 11, 12], name='probe_id')
        micro = {'d': pd.DataFrame(np.arange(9.).reshape(3, 3), index=probe_ids,
                                   columns=samples)}
        annot = {'d': pd.DataFrame({'well_id': [5, 6, 7]}, index=samples)}
        probes = pd.DataFrame({'gene_symbol': ['C', 'A', 'B']}, index=probe_ids)
        out = probes_.collapse_probes(micro, annot, probes, method='max_variance')
        print(list(out['d'].columns))
    """
    rc, out, err = run(code)
    assert rc == 0, err
    assert out.strip() == "['A', 'B', 'C']"
    rc, out, err = run(code, skip=["DataFrame.set_axis(inplace=)"])
    assert rc != 0 and "inplace" in err


def test_set_axis_refuses_inplace_true():
    wrapped = compat._set_axis_accepting_inplace(pd.DataFrame.set_axis)
    df = pd.DataFrame({"a": [1]})
    assert list(wrapped(df, ["b"], axis=1, inplace=False).columns) == ["b"]
    with pytest.raises(TypeError, match="inplace=True"):
        wrapped(df, ["b"], axis=1, inplace=True)


ASSIGN_TIE = """
    import numpy as np, pandas as pd, nibabel as nib
    from abagen.matching import AtlasTree
    # parcel 1 at x = 0 and 1 (centroid 0.5), parcel 2 at x = 3: a sample at
    # x = 2 has one voxel of each within 1 mm, a tie that _assign_sample
    # breaks by the closest centroid, parcel 2's
    atlas = np.zeros((5, 5, 5), np.int32)
    atlas[0, 2, 2] = atlas[1, 2, 2] = 1
    atlas[3, 2, 2] = 2
    # group_atlas=False: no flooring of the sample onto the atlas grid
    tree = AtlasTree(nib.Nifti1Image(atlas, np.eye(4)), group_atlas=False)
    sample = pd.DataFrame({'mni_x': [2.0], 'mni_y': [2.0], 'mni_z': [2.0]})
    print(tree.label_samples(sample, tolerance=2)['label'].tolist())
"""


def test_assign_sample_tie_needed():
    rc, out, err = run(ASSIGN_TIE)
    assert rc == 0, err
    assert out.strip() == "[2]"
    rc, out, err = run(ASSIGN_TIE, skip=["AtlasTree._assign_sample"])
    if not compat._numpy_rejects_sized_scalars():
        pytest.skip("this numpy still stores a 1-element array as a scalar")
    assert rc != 0 and "sequence" in err


ROW_STACK = """
    import numpy as np
    warnings.simplefilter('error', DeprecationWarning)
    from abagen import surfaces
    vertices = np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    graph = surfaces.make_surf_graph(vertices, faces)
    print(graph.shape, round(float(graph.sum()), 6))
    print(np.row_stack is not np.vstack)  # numpy itself untouched
"""


def test_row_stack_needed_and_numpy_untouched():
    if not compat._numpy_needs_row_stack():
        pytest.skip("np.row_stack is not deprecated in this numpy")
    rc, out, err = run(ROW_STACK)
    assert rc == 0, err
    shape, untouched = out.strip().split("\n")
    assert shape.startswith("(4, 4)") and untouched == "True"
    rc, out, err = run(ROW_STACK, skip=["np.row_stack"])
    assert rc != 0 and "row_stack" in err


BRAINSMASH = """
    import numpy as np
    warnings.simplefilter('error', DeprecationWarning)
    from brainsmash.mapgen import Base
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(40, 3))
    d = np.sqrt(((xyz[:, None] - xyz[None]) ** 2).sum(-1))
    x = rng.normal(size=40)
    gen = Base(x, d, seed=1, resample=False)
    print(gen(3).shape)
"""


def test_brainsmash_row_stack_needed():
    if not compat._numpy_needs_row_stack():
        pytest.skip("np.row_stack is not deprecated in this numpy")
    rc, out, err = run(BRAINSMASH, patch="patch_brainsmash")
    assert rc == 0, err
    assert out.strip() == "(3, 40)"
    rc, out, err = run(BRAINSMASH, patch="patch_brainsmash", skip=["np.row_stack"])
    assert rc != 0 and "row_stack" in err


def test_patch_is_idempotent_and_leaves_pandas_clean():
    a = compat.patch_abagen()
    assert compat.patch_abagen() is a
    assert not hasattr(pd.DataFrame, "append")
    if "pkg_resources" in compat.applied():
        assert "pkg_resources" not in sys.modules
    # the wrapped entry point is the one every abagen namespace sees
    assert a.get_expression_data is a.allen.get_expression_data
    assert getattr(a.get_expression_data, "__itx_compat__", False) == (
        "DataFrame.append" in compat.applied())


LOAD_GIFTI = """
    import nibabel as nib
    from abagen import utils
    img = nib.GiftiImage()
    print(utils.load_gifti(img) is img)
"""


def test_load_gifti_of_an_image_needed():
    rc, out, err = run(LOAD_GIFTI)
    assert rc == 0, err
    assert out.strip() == "True"
    rc, out, err = run(LOAD_GIFTI, skip=["load_gifti(GiftiImage)"])
    assert rc != 0 and "GiftiImage" in err


MAX_IDX = """
    import pandas as pd
    from abagen import probes_
    df = pd.DataFrame({'a': [1, 3, 2], 'b': [9, 1, 1]}, index=['p1', 'p2', 'p3'])
    print(probes_._max_idx(df), probes_._max_idx(df, column='b'))
    try:
        probes_._max_idx(df.assign(gene_symbol='G'))
        print('no error')
    except TypeError:
        print('TypeError')
"""


def test_max_idx_refuses_text_columns_as_pandas_1():
    rc, out, err = run(MAX_IDX)
    assert rc == 0, err
    assert out.strip().splitlines() == ["p2 p1", "TypeError"]
    rc, out, err = run(MAX_IDX, skip=["_max_idx(object columns)"])
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == "no error"  # pandas 2: no retry
