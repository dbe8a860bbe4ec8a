"""Tidy table writing: atomic, byte-reproducible, readable."""
import os
import stat

import numpy as np
import pandas as pd
import pytest

from itx import tables


def frame():
    return pd.DataFrame({"gene": ["A", "B"], "r": [0.5, -1 / 3], "p": [1e-12, np.nan]})


@pytest.mark.parametrize("name", ["t.tsv", "t.tsv.gz"])
def test_write_is_reproducible_and_round_trips(tmp_path, name):
    a, b = tmp_path / "a" / name, tmp_path / "b" / name
    tables.write_tsv(frame(), a)
    tables.write_tsv(frame(), b)
    assert a.read_bytes() == b.read_bytes()  # no timestamp or temp name inside
    back = tables.read_tsv(a)
    pd.testing.assert_frame_equal(back, frame(), rtol=1e-9)
    mode = stat.S_IMODE(os.stat(a).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert [p.name for p in a.parent.iterdir()] == [name]  # no temp files left


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.tsv"

    class Boom(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            super().to_csv(*args, **kwargs)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        tables.write_tsv(Boom(frame()), target)
    assert list(tmp_path.iterdir()) == []
