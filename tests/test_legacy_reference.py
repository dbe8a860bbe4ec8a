"""No number moved: the current stack against the legacy one it replaced.

The legacy stack (tests/legacy/requirements.txt: Python 3.11, pandas 1.5.3,
numpy 1.26.4, nilearn 0.10.4, setuptools 81 with ``pkg_resources``) is the
reference. The session builds it once in its own venv, outside the repo
(``$ITX_LEGACY_VENV`` or ``~/.cache/itx/legacy-<sha256[:12] of the pins>``;
see tests/legacy/venv.py), and skips if there is no Python 3.11.

* abagen level: UNPATCHED abagen 0.1.3 in the legacy venv
  (tests/legacy/abagen_reference.py, one subprocess for all selected cases,
  running alongside the tests) against abagen patched by ``itx.compat`` on the
  current stack, same arguments, same demo donors (generated here, on the
  current stack); and ``itx.expression.process_ahba`` against the legacy
  default. Bit-identical results are required (labels, dtypes, NaNs, every
  value; counts and reports too) unless a case is listed in ``NOT_EXACT``, or
  the two numpys' own exp/log kernels give different bits on this CPU
  or scipy's ``stats.iqr`` (measured first, by ``elementary``: numpy 2.x
  changed its AVX-512 kernels, scipy 1.17 its iqr). Then a case may differ by
  ELEMENTARY_RTOL of its largest value, and the difference is recorded.
* workflow level (slow): the demo DAG run once by each stack's snakemake,
  every table under results/ compared cell by cell; differences by design are
  listed in ``DEMO_DIFFERENCES`` (file pattern, column, tolerance, reason).

Each comparison records what it measured (``record_property`` and
``<basetemp>/legacy_report.json``, also ``$ITX_LEGACY_REPORT`` if set):
max abs and max relative difference, exact or not, timings.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import build_demo_cache, copy_checkout
from itx import atlas as atlases
from itx import compat, demo, expression
from test_expression import OPTION_SETS

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "legacy"
REFERENCE_SCRIPT = LEGACY / "abagen_reference.py"


def _load_venv_module():
    spec = importlib.util.spec_from_file_location("itx_legacy_venv", LEGACY / "venv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


legacy_venv_mod = _load_venv_module()

# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------
#: demo donors: "full" as tests/test_expression.py (seed 3, 60 samples per
#: donor, all 45,821 probes; every abagen call ~15 s); "small" for the option
#: sweeps (seed 3, 20 samples per donor, the probes of SMALL_GENES genes; ~1 s
#: a call, which also makes missing='interpolate' affordable)
FULL = dict(seed=3, samples_per_donor=60)
SMALL = dict(seed=3, samples_per_donor=20)
SMALL_GENES = 1000
#: abagen's reannotation merges its own table of all 45,821 probes, so a cut
#: Probes.csv needs reannotated=False (as in tests/test_rnaseq.py); the
#: reannotated path is covered by the full cases
SMALL_BASE = {"reannotated": False}


@dataclass(frozen=True)
class Case:
    id: str
    data: str  # "full" or "small"
    opts: dict = field(default_factory=dict)
    atlas: str = "volume"  # or "surface"
    returns: tuple = ("counts",)
    slow: bool = False

    @property
    def rnaseq(self):
        return self.opts.get("probe_selection") == "rnaseq"


def _probe_methods():
    abagen = compat.patch_abagen()  # as tests/conftest.py does (idempotent)
    return list(abagen.probes_.SELECTION_METHODS)


def _norm_methods():
    abagen = compat.patch_abagen()

    # the aliases (demean, rsig, sigmoid, ...) name the same functions: one each
    methods = abagen.correct.NORMALIZATION_METHODS
    return [k for k, f in methods.items() if next(n for n in methods if methods[n] is f) == k]


def _opt_id(opts):
    return ",".join(f"{k}={v}" for k, v in opts.items()) or "default"


def _build_cases():
    cases = [
        # what tests/test_expression.py and tests/test_rnaseq.py compare today
        Case("full-default", "full", returns=("counts", "report")),
        *[Case(f"full-{_opt_id(o)}", "full", o, slow=True) for o in OPTION_SETS],
        Case("full-surface", "full", atlas="surface", slow=True),
        Case("full-return_donors", "full", returns=("donors",), slow=True),
        Case("full-probe_selection=rnaseq", "full", {"probe_selection": "rnaseq"}, slow=True),
    ]
    small = [{}]
    small += [{"probe_selection": m} for m in _probe_methods()]
    small += [{"sample_norm": m} for m in _norm_methods() + [None]]
    small += [{"gene_norm": m} for m in _norm_methods() + [None]]
    small += [{"missing": m} for m in (None, "centroids", "interpolate")]
    small += [
        {"missing": "interpolate", "region_agg": "samples"},
        {"missing": "centroids", "return_donors": True},
        {"region_agg": "samples"}, {"region_agg": None}, {"agg_metric": "median"},
        {"region_agg": None, "return_donors": True},
        {"region_agg": "samples", "return_donors": True},  # abagen refuses: same error
        {"lr_mirror": "bidirectional"}, {"lr_mirror": "leftright"}, {"lr_mirror": "rightleft"},
        {"donor_probes": "common", "probe_selection": "max_variance"},
        {"donor_probes": "independent", "probe_selection": "corr_intensity"},
        {"ibf_threshold": 0}, {"ibf_threshold": 0.8},
        {"tolerance": 0}, {"tolerance": 5}, {"tolerance": -2},
        {"norm_matched": False}, {"norm_structures": True},
        {"sim_threshold": 3}, {"corrected_mni": False},
    ]
    seen = set()
    for o in small:
        returns = ("counts", "report") if not o else ("counts",)
        if o.get("region_agg", "donors") is None:
            returns = ()  # sample-level: abagen returns the frame(s) only
        if o.pop("return_donors", False):
            returns = ("donors",)
        key = json.dumps({**expression.ABAGEN_DEFAULTS, **o}, sort_keys=True)
        key += str("donors" in returns)
        if key in seen:  # e.g. sample_norm='srs' is the default: small-default covers it
            continue
        seen.add(key)
        cases.append(Case(f"small-{_opt_id(o)}" + ("-donors" if "donors" in returns else ""),
                          "small", {**SMALL_BASE, **o}, returns=returns,
                          # abagen's interpolation: ~30 s a call even on the small donors
                          slow=o.get("missing") == "interpolate"))
    return cases


CASES = _build_cases()
#: cases abagen refuses (on both stacks, with the same message)
EXPECTED_ERRORS = {"small-region_agg=samples-donors"}
CASE_BY_ID = {c.id: c for c in CASES}
assert len(CASE_BY_ID) == len(CASES)

#: cases where the current stack cannot give abagen's bits on the legacy stack
#: whatever the machine: case id -> (rtol, reason). None so far; every other
#: case must be bit-identical, unless the two numpys' elementary functions
#: differ on this machine (see ``elementary`` and ``ELEMENTARY_RTOL``).
NOT_EXACT: dict = {}

#: Two changes of the stack move abagen's last bits, whatever abagen and
#: itx.compat do; ``elementary`` measures both on this machine first:
#:
#: - numpy picks SIMD kernels for exp, log, ... at import, by CPU; on AVX-512
#:   machines numpy 2.x's float64 exp/log/expm1/log1p/power kernels give other
#:   last bits than numpy 1.26's. Disabling them in both stacks makes them
#:   agree (``NPY_DISABLE_CPU_FEATURES`` = NO_AVX512, e.g. ``export
#:   NPY_DISABLE_CPU_FEATURES="AVX512F AVX512CD AVX512_SKX AVX512_CLX
#:   AVX512_CNL AVX512_ICL AVX512_SPR X86_V4"`` before pytest); with that the
#:   default full case and process_ahba are bit-identical.
#: - scipy 1.17's ``stats.iqr`` computes its percentiles with
#:   ``stats.quantile`` instead of ``np.percentile`` (scipy 1.16): other last
#:   bits where a percentile falls between two samples. abagen's robust
#:   sigmoids (``srs``, the default sample_norm and gene_norm, ``rs``,
#:   ``mixed_sig``) divide by it.
#:
#: abagen's sigmoid and min-max rescaling amplify these to ~1e-14. When the
#: probe finds any of them, a case that is not exact must still agree to
#: ELEMENTARY_RTOL relative to the largest |value| of the frame, and records
#: its max abs difference; when none differs, every case must be exact.
NO_AVX512 = ("AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR "
             "X86_V4")  # feature names of numpy 1.26 and 2.x; each ignores the other's
ELEMENTARY_RTOL = 1e-12

_ELEMENTARY_PROBE = r"""
import hashlib, json, numpy as np
x = np.linspace(-30.0, 30.0, 200003)
p = np.abs(x) + 1e-3
out = {}
for name, f, a in [("exp", np.exp, x), ("log", np.log, p), ("expm1", np.expm1, x / 10),
                   ("log1p", np.log1p, p), ("tanh", np.tanh, x), ("sqrt", np.sqrt, p),
                   ("power", lambda a: np.power(a, 0.37), p), ("sum", np.sum, x * np.pi),
                   ("sort", np.sort, np.sin(x))]:
    out[name] = hashlib.sha256(np.ascontiguousarray(f(a)).tobytes()).hexdigest()
# abagen.correct._rs: scipy.stats.iqr(scale='normal') over an even number of
# samples (percentiles between two samples); exactly representable inputs
from scipy import stats
q = ((np.arange(20 * 500) * 7919) % 10007 / 10007.0).reshape(20, 500)
iqr = stats.iqr(q, axis=0, scale="normal", keepdims=True)
out["scipy.stats.iqr"] = hashlib.sha256(np.ascontiguousarray(iqr).tobytes()).hexdigest()
print(json.dumps(out))
"""

# ---------------------------------------------------------------------------
# measurement log
# ---------------------------------------------------------------------------
_REPORT: dict = {"cases": {}, "demo": {}, "venv": {}}


def _record(section, key, value, record_property=None):
    _REPORT[section][key] = value
    if record_property is not None:
        record_property(f"{section}:{key}", json.dumps(value, default=str))


@pytest.fixture(scope="session")
def legacy_report(tmp_path_factory):
    yield _REPORT
    text = json.dumps(_REPORT, indent=1, sort_keys=True, default=str) + "\n"
    (tmp_path_factory.getbasetemp() / "legacy_report.json").write_text(text)
    if os.environ.get("ITX_LEGACY_REPORT"):
        Path(os.environ["ITX_LEGACY_REPORT"]).write_text(text)


# ---------------------------------------------------------------------------
# the legacy venv
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def legacy_venv(legacy_report):
    try:
        venv, info = legacy_venv_mod.ensure()
    except legacy_venv_mod.Unavailable as exc:
        pytest.skip(str(exc))
    _REPORT["venv"] = {**info, "path": str(venv)}
    return venv


@pytest.fixture(scope="session")
def elementary(legacy_venv):
    """The elementary functions whose results differ between the two stacks here."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    runs = {}
    for stack, python in (("current", sys.executable),
                          ("legacy", str(legacy_venv / "bin" / "python"))):
        res = subprocess.run([python, "-c", _ELEMENTARY_PROBE], capture_output=True, text=True,
                             env=env, timeout=300, check=True)
        runs[stack] = json.loads(res.stdout)
    differ = sorted(k for k in runs["current"] if runs["current"][k] != runs["legacy"][k])
    _REPORT["elementary"] = {"differ": differ,
                             "NPY_DISABLE_CPU_FEATURES": os.environ.get("NPY_DISABLE_CPU_FEATURES")}
    return differ


def _tolerance(case_id, elementary):
    """(rtol, reason) a not bit-identical result may still pass with, or None."""
    if case_id in NOT_EXACT:
        return NOT_EXACT[case_id]
    if elementary:
        return (ELEMENTARY_RTOL,
                f"the two stacks give different bits for {', '.join(elementary)} on this "
                f"machine (numpy's AVX-512 kernels: NPY_DISABLE_CPU_FEATURES='{NO_AVX512}' "
                f"makes them agree; scipy 1.17's stats.iqr: by design)")
    return None


def test_legacy_venv_is_the_legacy_stack(legacy_venv, record_property):
    info = legacy_venv_mod.check(legacy_venv)  # raises unless the pins hold
    assert info["pandas"] == "1.5.3" and info["numpy"] == "1.26.4"
    assert info["abagen"] == "0.1.3" and info["nilearn"] == "0.10.4"
    assert (legacy_venv / legacy_venv_mod.MARKER).is_file()
    # and it is not the current stack
    assert pd.__version__ != info["pandas"] and np.__version__ != info["numpy"]
    record_property("legacy_venv", json.dumps(_REPORT["venv"]))


# ---------------------------------------------------------------------------
# demo donors (generated on the current stack; both stacks read the files)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dk():
    return atlases.load_atlas("dk", "desikan_killiany")


@pytest.fixture(scope="session")
def atlas_info_csv(dk, tmp_path_factory):
    path = tmp_path_factory.mktemp("legacy_atlas") / "atlas_info.csv"
    dk.info.loc[:, ["id", "label", "hemisphere", "structure"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def full_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy_full")
    demo.generate_donors(out, **FULL)
    demo.generate_rnaseq_donors(out, **FULL)
    return out


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """Demo donors cut to the probes of SMALL_GENES genes (all CSVs copied as text)."""
    src = tmp_path_factory.mktemp("legacy_small_src")
    demo.generate_donors(src, **SMALL)
    demo.generate_rnaseq_donors(src, **SMALL)
    out = tmp_path_factory.mktemp("legacy_small")
    first = src / "microarray" / f"normalized_microarray_donor{demo.DONOR_IDS[0]}"
    probes = pd.read_csv(first / "Probes.csv", dtype=str)
    rng = np.random.default_rng(11)
    genes = rng.choice(np.sort(probes["gene_symbol"].unique()), size=SMALL_GENES, replace=False)
    keep = probes[probes["gene_symbol"].isin(genes)]
    keep_ids = set(keep["probe_id"])
    for d in demo.DONOR_IDS:
        name = f"normalized_microarray_donor{d}"
        dst = out / "microarray" / name
        dst.mkdir(parents=True)
        lines = (src / "microarray" / name / "Probes.csv").read_text().splitlines(True)
        (dst / "Probes.csv").write_text(
            lines[0] + "".join(l for l in lines[1:] if l.split(",", 1)[0] in keep_ids))
        for fname in ("SampleAnnot.csv", "Ontology.csv"):
            shutil.copy(src / "microarray" / name / fname, dst / fname)
        for fname in ("MicroarrayExpression.csv", "PACall.csv"):
            with open(src / "microarray" / name / fname) as fin, open(dst / fname, "w") as fout:
                fout.writelines(l for l in fin if l.split(",", 1)[0] in keep_ids)
    shutil.copytree(src / "rnaseq", out / "rnaseq")
    return out


@pytest.fixture(scope="session")
def full_cache(full_data):
    return build_demo_cache(full_data)


def _case_inputs(case, dk, atlas_info_csv, data_dir):
    atlas = (str(dk.volume) if case.atlas == "volume"
             else [str(p) for p in dk.surface])
    return {"id": case.id, "atlas": atlas, "atlas_info": str(atlas_info_csv),
            "data_dir": str(data_dir), "abagen_data": str(data_dir) if case.rnaseq else None,
            "opts": case.opts, "returns": list(case.returns)}


# ---------------------------------------------------------------------------
# the legacy run: one subprocess for every selected case, read as it goes
# ---------------------------------------------------------------------------


def _frame_from_npz(path):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        values = z["values"]

        def index(arr, info):
            dtype = info["dtype"]
            data = arr.tolist() if dtype == "object" else arr
            return pd.Index(data, dtype=dtype, name=info["name"])

        levels = [index(z[f"index{i}"], info) for i, info in enumerate(meta["index"])]
        idx = pd.MultiIndex.from_arrays(levels) if meta["multiindex"] else levels[0]
        cols = index(z["columns"], meta["columns"])
    return pd.DataFrame(values, index=idx, columns=cols)


class LegacyRun:
    def __init__(self, proc, out_dir, case_ids, log):
        self.proc, self.out, self.case_ids, self.log = proc, out_dir, case_ids, log
        self.started = time.perf_counter()

    def result(self, case_id, timeout=1800):
        if case_id not in self.case_ids:
            raise KeyError(f"{case_id} was not sent to the legacy run")
        done = self.out / case_id / "result.json"
        t0 = time.perf_counter()
        while not done.is_file():
            if self.proc.poll() is not None and not done.is_file():
                raise RuntimeError(f"legacy reference process ended ({self.proc.returncode}) "
                                   f"without {case_id}:\n{self.log.read_text()[-6000:]}")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"legacy case {case_id} not done after {timeout} s")
            time.sleep(0.2)
        res = json.loads(done.read_text())
        folder = self.out / case_id
        if res["ok"]:
            if res["donors"] is not None:
                res["donor_frames"] = {d: _frame_from_npz(folder / f"donor_{d}.npz")
                                       for d in res["donors"]}
            else:
                res["expression"] = _frame_from_npz(folder / "expression.npz")
            if "counts.npz" in res["files"]:
                res["counts"] = _frame_from_npz(folder / "counts.npz")
            if "report.txt" in res["files"]:
                res["report"] = (folder / "report.txt").read_text(encoding="utf-8")
        res["waited"] = time.perf_counter() - t0
        return res

    def manifest(self, timeout=1800):
        self.proc.wait(timeout=timeout)
        return json.loads((self.out / "manifest.json").read_text())


def _selected_case_ids(session):
    ids = []
    for item in session.items:
        if getattr(item, "module", None) is not sys.modules[__name__]:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "case" in callspec.params:
            ids.append(callspec.params["case"].id)
        elif item.originalname == "test_process_ahba_equals_legacy_default":
            ids.append("full-default")
    return list(dict.fromkeys(ids))


@pytest.fixture(scope="session")
def legacy_run(request, legacy_venv, dk, atlas_info_csv, tmp_path_factory, legacy_report):
    ids = _selected_case_ids(request.session)
    data = {}
    for kind in sorted({CASE_BY_ID[i].data for i in ids}):
        data[kind] = request.getfixturevalue(f"{kind}_data")
    # the full-data cases go first: their ~15 s calls overlap the small ones here
    ids.sort(key=lambda i: CASE_BY_ID[i].data != "full")
    out = tmp_path_factory.mktemp("legacy_out")
    cases = [_case_inputs(CASE_BY_ID[i], dk, atlas_info_csv, data[CASE_BY_ID[i].data])
             for i in ids]
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ABAGEN_DATA")}
    log = out / "legacy.log"
    proc = subprocess.Popen([str(legacy_venv / "bin" / "python"), str(REFERENCE_SCRIPT),
                             str(out / "cases.json"), str(out / "results")],
                            cwd=out, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    run = LegacyRun(proc, out / "results", set(ids), log)
    yield run
    if proc.poll() is None:  # tests stopped early: do not leave it running
        proc.terminate()
        proc.wait(30)
    elif proc.returncode == 0:
        manifest = json.loads((out / "results" / "manifest.json").read_text())
        _REPORT["legacy_manifest"] = {
            "versions": manifest["versions"], "total_seconds": manifest["total_seconds"],
            "import_seconds": manifest["import_seconds"], "itx_imported": manifest["itx_imported"],
            "case_seconds": {c["id"]: c["result"]["seconds"] for c in manifest["cases"]}}


# ---------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------


def frame_differences(ours: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Max abs / relative difference of two equally labelled float frames."""
    a, b = ours.to_numpy(dtype=float), ref.to_numpy(dtype=float)
    if a.shape != b.shape:
        return {"shape": [a.shape, b.shape]}
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    both = ~(nan_a | nan_b)
    diff = np.abs(a - b)[both]
    scale = np.abs(b)[both]
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    return {"max_abs": float(diff.max()) if diff.size else 0.0,
            "max_rel": float(rel.max()) if rel.size else 0.0,
            "n_differ": int((diff > 0).sum()), "n_values": int(a.size),
            "nan_pattern_equal": bool((nan_a == nan_b).all())}


def assert_frames_match(ours, ref, what, tolerance=None, **kwargs):
    """Bit-identical, else (with `tolerance` = (rtol, reason)) equal to rtol
    relative to the largest absolute value of `ref`; returns what was measured.
    Labels, dtypes and the NaN pattern must always be identical."""
    try:
        pd.testing.assert_frame_equal(ours, ref, check_exact=True, **kwargs)
        return {"exact": True, "max_abs": 0.0, "max_rel": 0.0}
    except AssertionError as exact_error:
        same_labels = ours.index.equals(ref.index) and ours.columns.equals(ref.columns)
        found = {"exact": False, **(frame_differences(ours, ref) if same_labels else
                                    {"labels_differ": True})}
        if tolerance is None:
            raise AssertionError(f"{what}: not bit-identical to the legacy stack "
                                 f"({found}):\n{exact_error}") from None
        rtol, reason = tolerance
        scale = float(np.nanmax(np.abs(ref.to_numpy(dtype=float)), initial=0.0))
        pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=rtol,
                                      atol=rtol * scale, **kwargs)
        return {**found, "tolerance": f"rtol {rtol:g} of max |value| {scale:.6g}",
                "reason": reason}


def _new_stack_call(case, dk, atlas_info_csv, data_dir, monkeypatch):
    import abagen  # patched (tests/conftest.py)

    inputs = _case_inputs(case, dk, atlas_info_csv, data_dir)
    atlas = tuple(inputs["atlas"]) if case.atlas == "surface" else inputs["atlas"]
    if inputs["abagen_data"]:
        monkeypatch.setenv("ABAGEN_DATA", inputs["abagen_data"])
    else:
        monkeypatch.delenv("ABAGEN_DATA", raising=False)
    kwargs = {**case.opts, **{f"return_{r}": True for r in case.returns}}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return abagen.get_expression_data(atlas, inputs["atlas_info"], data_dir=inputs["data_dir"],
                                          donors="all", verbose=0, **kwargs)


def _params():
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
            for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_abagen_equals_legacy(case, legacy_run, elementary, request, dk, atlas_info_csv,
                              monkeypatch, record_property):
    data_dir = request.getfixturevalue(f"{case.data}_data")
    t0 = time.perf_counter()
    try:
        res = _new_stack_call(case, dk, atlas_info_csv, data_dir, monkeypatch)
        error = None
    except Exception as exc:
        error = exc
    new_seconds = time.perf_counter() - t0
    ref = legacy_run.result(case.id)
    measured = {"new_seconds": round(new_seconds, 2), "legacy_seconds": round(ref["seconds"], 2),
                "waited_for_legacy": round(ref["waited"], 2)}
    if not ref["ok"]:
        assert case.id in EXPECTED_ERRORS, f"legacy abagen failed:\n{ref['traceback']}"
        # abagen refused on the legacy stack: it must refuse the same way here
        measured["legacy_error"] = f"{ref['error_type']}: {ref['error']}"
        _record("cases", case.id, measured, record_property)
        assert error is not None, f"legacy abagen raised {measured['legacy_error']}, ours did not"
        assert (type(error).__name__, str(error)) == (ref["error_type"], ref["error"])
        return
    if error is not None:
        raise AssertionError(f"legacy abagen succeeded, the current stack raised "
                             f"{type(error).__name__}") from error
    res = list(res) if isinstance(res, tuple) else [res]
    rtol = _tolerance(case.id, elementary)
    expr = res.pop(0)
    if "donors" in case.returns:
        assert sorted(expr) == ref["donors"]
        found = {d: assert_frames_match(expr[d], ref["donor_frames"][d], f"{case.id} donor {d}",
                                        rtol) for d in ref["donors"]}
        measured["exact"] = all(f["exact"] for f in found.values())
        measured["max_abs"] = max(f.get("max_abs", np.nan) for f in found.values())
        measured["by_donor"] = found
    else:
        found = assert_frames_match(expr, ref["expression"], case.id, rtol)
        measured.update(found)
        measured["shape"] = list(expr.shape)
    if "counts" in case.returns:
        pd.testing.assert_frame_equal(res.pop(0), ref["counts"], check_exact=True)
    if "report" in case.returns:
        assert res.pop(0) == ref["report"]
    _record("cases", case.id, measured, record_property)


def test_process_ahba_equals_legacy_default(legacy_run, elementary, dk, full_cache,
                                            record_property):
    """The project's own pipeline (from the parsed-CSV cache, as the workflow
    runs it) against unpatched abagen on the legacy stack."""
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    t0 = time.perf_counter()
    ours = expression.process_ahba(dk.volume, info, cache_dir=full_cache)
    seconds = time.perf_counter() - t0
    ref = legacy_run.result("full-default")
    assert ref["ok"], ref.get("traceback")
    found = assert_frames_match(ours.expression, ref["expression"], "process_ahba",
                                _tolerance("process_ahba", elementary))
    pd.testing.assert_frame_equal(ours.counts, ref["counts"], check_names=False)
    assert ours.report == ref["report"]
    _record("cases", "process_ahba(full-default)", {**found, "new_seconds": round(seconds, 2)},
            record_property)


def test_legacy_reference_never_imported_itx(legacy_run):
    if not legacy_run.case_ids:
        pytest.skip("no legacy case selected")
    manifest = legacy_run.manifest()
    assert manifest["itx_imported"] is False
    assert manifest["versions"]["pandas"] == "1.5.3"
    assert manifest["versions"]["numpy"] == "1.26.4"
    assert manifest["versions"]["abagen"] == "0.1.3"


# ---------------------------------------------------------------------------
# the demo workflow on each stack, every table under results/ cell by cell
# ---------------------------------------------------------------------------
#: cells the two stacks compute differently by design: (file glob under
#: results/, column glob, rtol, reason, when). A differing column must stay
#: within rtol of the largest |value| of its column (rtol None: any value);
#: `when` "elementary" applies the entry only when the two numpys' exp/log
#: kernels differ on this machine (``elementary``), else it is void. Anything
#: not listed must be the same string, or the same number to DEMO_RTOL.
_ROUNDING = ("printed with 10 significant digits: the ~1e-15 differences of numpy's "
             "AVX-512 exp/log kernels and scipy 1.17's iqr (abagen's srs normalisation; "
             "see the abagen-level cases) flip the last digit of a few cells (measured: "
             "6 cells of 6 x 83 x 17,681, 1e-10 at most)")
DEMO_DIFFERENCES = [
    ("versions.tsv", "version", None,
     "the installed package versions: what the two stacks differ in", "always"),
    ("dk/donors/expression_*.tsv", "*", 1e-9, _ROUNDING, "elementary"),
    ("dk/expression.tsv", "*", 1e-9, _ROUNDING, "elementary"),
]
DEMO_RTOL = 1e-12


def run_demo(work, snakemake, env=None, timeout=2400):
    t0 = time.perf_counter()
    res = subprocess.run([str(snakemake), "--cores", "2"], cwd=work, capture_output=True,
                         text=True, timeout=timeout, env=env)
    return res, time.perf_counter() - t0


def _demo_env(bin_dir):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ABAGEN_DATA")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def compare_table(legacy_file, new_file):
    """Per column: identical, or numeric differences, or text differences."""
    a = pd.read_csv(legacy_file, sep="\t", dtype=str, keep_default_na=False)
    b = pd.read_csv(new_file, sep="\t", dtype=str, keep_default_na=False)
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return {"__structure__": {"kind": "structure", "legacy": [list(a.columns), a.shape],
                                  "new": [list(b.columns), b.shape]}}
    out = {}
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        differ = x != y
        if not differ.any():
            out[col] = {"kind": "identical"}
            continue
        xn, yn = pd.to_numeric(a[col], errors="coerce"), pd.to_numeric(b[col], errors="coerce")
        xn, yn = xn.to_numpy(float), yn.to_numpy(float)
        nan_word = {"nan", "NaN", "", "NA"}
        is_nan_x = np.array([v in nan_word for v in x])
        is_nan_y = np.array([v in nan_word for v in y])
        numeric = ~np.isnan(xn) & ~np.isnan(yn)
        text = differ & ~numeric & ~(is_nan_x & is_nan_y)
        diff = np.abs(xn - yn)[differ & numeric]
        scale = np.abs(xn[numeric]).max(initial=0.0)
        rel = diff / np.maximum(np.abs(xn[differ & numeric]), 1e-300)
        out[col] = {"kind": "text" if text.any() else "numeric",
                    "n_differ": int(differ.sum()), "n": int(len(x)),
                    "max_abs": float(diff.max(initial=0.0)),
                    "max_rel": float(rel.max(initial=0.0)),
                    "column_max_abs": float(scale),
                    "example": [str(x[differ][0]), str(y[differ][0])]}
    return out


def _documented(rel_path, column, elementary):
    for pattern, col, rtol, reason, when in DEMO_DIFFERENCES:
        if when == "elementary" and not elementary:
            continue
        if fnmatch.fnmatch(rel_path, pattern) and fnmatch.fnmatch(column, col):
            return rtol, reason
    return None


def compare_other(legacy_file, new_file):
    """Non-table outputs, for the record: bytes, or the arrays they hold."""
    same = legacy_file.read_bytes() == new_file.read_bytes()
    out = {"identical_bytes": same}
    if same:
        return out
    name = new_file.name
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib
            arrays = {"data": (np.asarray(nib.load(legacy_file).dataobj),
                               np.asarray(nib.load(new_file).dataobj))}
        elif name.endswith(".npz"):
            with np.load(legacy_file) as a, np.load(new_file) as b:
                arrays = {k: (a[k], b[k]) for k in a.files}
        else:
            return out
        out["max_abs"] = {k: float(np.nanmax(np.abs(x.astype(float) - y.astype(float)),
                                             initial=0.0))
                          for k, (x, y) in arrays.items()}
    except Exception as exc:  # only recorded
        out["error"] = repr(exc)
    return out


@pytest.fixture(scope="module")
def demo_runs(legacy_venv, tmp_path_factory, legacy_report, demo_checkout):
    """The demo DAG run by the legacy venv's snakemake, and by the current one
    (the session's demo run, shared with tests/test_workflow.py)."""
    bin_dir = legacy_venv / "bin"
    work = copy_checkout(tmp_path_factory.mktemp("demo_legacy") / "repo")
    res, seconds = run_demo(work, bin_dir / "snakemake", env=_demo_env(bin_dir))
    _REPORT["demo"]["legacy_seconds"] = round(seconds, 1)
    _REPORT["demo"]["current_seconds"] = float((demo_checkout / ".demo_seconds").read_text())
    assert res.returncode == 0, ("demo failed on the legacy stack:\n"
                                 + res.stdout[-3000:] + res.stderr[-8000:])
    return {"legacy": work / "results", "current": demo_checkout / "results"}


@pytest.mark.slow
def test_demo_tables_equal_legacy(demo_runs, elementary, record_property):
    legacy, current = demo_runs["legacy"], demo_runs["current"]
    files = {stack: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
             for stack, root in demo_runs.items()}
    assert files["legacy"] == files["current"], "the two stacks wrote different result files"
    tables = [f for f in files["current"] if f.endswith(".tsv")]
    assert any(f.endswith("expression.tsv") for f in tables) and len(tables) > 20
    other = {f: compare_other(legacy / f, current / f)
             for f in files["current"] if not f.endswith(".tsv")}
    problems, differences = [], {}
    for rel in tables:
        for col, found in compare_table(legacy / rel, current / rel).items():
            if found["kind"] == "identical":
                continue
            differences[f"{rel}:{col}"] = found
            doc = _documented(rel, col, elementary)
            if found["kind"] == "structure":
                problems.append(f"{rel}: columns or shape differ {found}")
            elif doc is not None:
                rtol, reason = doc
                found["documented"] = reason
                if rtol is not None and not (found["kind"] == "numeric" and
                                             found["max_abs"] <= rtol * found["column_max_abs"]):
                    problems.append(f"{rel}:{col} beyond its documented tolerance {found}")
            elif found["kind"] == "text":
                problems.append(f"{rel}:{col} text differs {found}")
            elif found["max_abs"] > DEMO_RTOL * found["column_max_abs"]:
                problems.append(f"{rel}:{col} differs {found}")
    _REPORT["demo"].update({"tables": len(tables), "differences": differences,
                            "other_files": other})
    record_property("demo_differences", json.dumps(differences))
    assert not problems, "\n".join(problems)
