"""Reference numbers from UNPATCHED abagen 0.1.3 on the legacy stack.

Run by the legacy venv's python (tests/legacy/requirements.txt: pandas 1.5.3,
numpy 1.26.4, setuptools 81 with pkg_resources), never by the current stack,
and never importing ``itx`` (so that nothing of ``itx.compat`` can reach
abagen); everything it needs comes in as file paths::

    python abagen_reference.py CASES.json OUT_DIR

``CASES.json`` is a list of cases, each::

    {"id": str,                       # folder name under OUT_DIR
     "atlas": path or [lh, rh],       # MNI volume or fsaverage5 GIFTIs
     "atlas_info": path,              # CSV: id, label, hemisphere, structure
     "data_dir": path,                # abagen data_dir (microarray/...)
     "abagen_data": path or null,     # $ABAGEN_DATA (abagen reads RNA-seq there)
     "opts": {...},                   # get_expression_data keyword arguments
     "returns": ["counts", "report"]} # return_* flags to pass as True

For each case, in order, it writes ``OUT_DIR/<id>/``: ``expression.npz``
(or ``donor_<id>.npz`` per donor with ``return_donors``), ``counts.npz``,
``report.txt``, then ``result.json`` last (its presence means the case is
complete; the test may read a case while later ones still run). A case that
raises writes ``result.json`` with the exception type and message instead.
Finally ``OUT_DIR/manifest.json`` lists the cases and the versions.

Frames are stored losslessly without pickle (see :func:`save_frame`):
values as their own dtype (float64 for expression), index levels and
columns as int or unicode arrays, with their names and dtypes in ``meta``.
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FORMAT = 1


def _labels(index: pd.Index) -> dict:
    """One pandas Index level -> (array, dtype) without pickle."""
    dtype = str(index.dtype)
    if dtype == "object":
        values = index.to_numpy()
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"object index with non-str values: {values[:5]!r}")
        arr = np.array(list(values), dtype=str) if len(values) else np.array([], dtype="U1")
    else:
        arr = index.to_numpy()
        if arr.dtype.kind not in "iufb":
            raise TypeError(f"cannot store index dtype {dtype}")
    return {"array": arr, "dtype": dtype, "name": index.name}


def save_frame(path: Path, frame: pd.DataFrame) -> None:
    """A DataFrame with one value dtype -> .npz (allow_pickle=False readable)."""
    dtypes = set(map(str, frame.dtypes))
    if len(dtypes) > 1:
        raise TypeError(f"{path.name}: mixed column dtypes {dtypes}")
    values = frame.to_numpy()
    if values.dtype.kind not in "iufb":
        raise TypeError(f"{path.name}: values of dtype {values.dtype}")
    arrays = {"values": values}
    levels = ([frame.index.get_level_values(i) for i in range(frame.index.nlevels)]
              if isinstance(frame.index, pd.MultiIndex) else [frame.index])
    meta = {"format": FORMAT, "index": [], "columns": None,
            "value_dtype": str(values.dtype), "multiindex": isinstance(frame.index, pd.MultiIndex)}
    for i, level in enumerate(levels):
        lab = _labels(level)
        arrays[f"index{i}"] = lab.pop("array")
        meta["index"].append(lab)
    lab = _labels(frame.columns)
    arrays["columns"] = lab.pop("array")
    meta["columns"] = lab
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_case(case: dict, out: Path) -> dict:
    import abagen

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # a previous, interrupted run
        old.unlink()
    atlas = case["atlas"]
    atlas = tuple(atlas) if isinstance(atlas, list) else atlas
    returns = set(case.get("returns", ()))
    kwargs = dict(case.get("opts", {}))
    kwargs.update({f"return_{r}": True for r in returns})
    if case.get("abagen_data"):
        os.environ["ABAGEN_DATA"] = case["abagen_data"]
    else:
        os.environ.pop("ABAGEN_DATA", None)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = abagen.get_expression_data(atlas, case["atlas_info"],
                                             data_dir=case["data_dir"], donors="all",
                                             verbose=0, **kwargs)
    except Exception as exc:  # recorded: the current stack must raise the same
        return {"id": case["id"], "ok": False, "error_type": type(exc).__name__,
                "error": str(exc), "traceback": traceback.format_exc()[-4000:],
                "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    res = list(res) if isinstance(res, tuple) else [res]
    expr = res.pop(0)
    files = []
    if "donors" in returns:
        donors = sorted(expr)
        for d in donors:
            save_frame(out / f"donor_{d}.npz", expr[d])
            files.append(f"donor_{d}.npz")
    else:
        donors = None
        save_frame(out / "expression.npz", expr)
        files.append("expression.npz")
    if "counts" in returns:
        save_frame(out / "counts.npz", res.pop(0))
        files.append("counts.npz")
    if "report" in returns:
        (out / "report.txt").write_text(res.pop(0), encoding="utf-8")
        files.append("report.txt")
    return {"id": case["id"], "ok": True, "files": files, "donors": donors,
            "seconds": seconds}


def versions() -> dict:
    return {"python": sys.version.split()[0], "abagen": md.version("abagen"),
            "pandas": pd.__version__, "numpy": np.__version__,
            "scipy": md.version("scipy"), "nibabel": md.version("nibabel"),
            "nilearn": md.version("nilearn"), "setuptools": md.version("setuptools")}


def main(argv) -> int:
    cases_path, out_dir = Path(argv[1]), Path(argv[2])
    if "itx" in sys.modules or "itx.compat" in sys.modules:
        raise SystemExit("itx must not be imported by the legacy reference")
    cases = json.loads(cases_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    import abagen  # noqa: F401  (import time counted once, not per case)
    import_seconds = time.perf_counter() - t0
    if any(m == "itx" or m.startswith("itx.") for m in sys.modules):
        raise SystemExit("itx was imported into the legacy reference process")
    results = []
    for case in cases:
        result = run_case(case, out_dir / case["id"])
        _write_json(out_dir / case["id"] / "result.json", result)
        results.append(result)
        print(f"{case['id']}: {'ok' if result['ok'] else result['error_type']} "
              f"{result['seconds']:.1f} s", flush=True)
    _write_json(out_dir / "manifest.json", {
        "format": FORMAT, "versions": versions(), "import_seconds": import_seconds,
        "total_seconds": time.perf_counter() - t0,
        "itx_imported": any(m == "itx" or m.startswith("itx.") for m in sys.modules),
        "cases": [{**c, "result": r} for c, r in zip(cases, results)]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
