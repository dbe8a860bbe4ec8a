"""Run abagen 0.1.3 and brainsmash 0.11.0 on the current scientific stack.

abagen 0.1.3 (June 2021) is the newest release on PyPI and the reference for
every number this workflow computes from the AHBA; it predates pandas 2,
numpy 2 and setuptools without ``pkg_resources``. This module adapts it, and
brainsmash where numpy 2 deprecates what it calls, without copying or forking
either package: each adaptation below names the lines it stands in for, is
applied only when the installed stack needs it, and only to the package that
needs it.

- pandas methods that pandas 2 removed are made visible only while a wrapped
  abagen function runs (a reentrant scope), never to the rest of the process;
- ``pkg_resources`` is provided only while abagen's modules are imported;
- ``np.row_stack`` (deprecated in numpy 2) is replaced in the namespaces of
  the modules that call it, not in numpy.

Call :func:`patch_abagen` (or :func:`patch_brainsmash`) before using the
package; both are idempotent. ``tests/test_compat.py`` shows, for each
adaptation, that the call it covers fails without it, and
``tests/test_legacy_reference.py`` that abagen's numbers on the patched
current stack equal unpatched abagen's on its own legacy stack.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.resources
import importlib.util
import sys
import threading
import types
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ADAPTATIONS", "Adaptation", "patch_abagen", "patch_brainsmash",
           "applied"]


@dataclass(frozen=True)
class Adaptation:
    """One change that abagen or brainsmash needs on the current stack.

    Parameters
    ----------
    name : str
        Short name, used in tests and in ``applied()``.
    package : {'abagen', 'brainsmash'}
        The only package the adaptation is applied to.
    stands_for : tuple of str
        ``module.function (file:line)`` of every line it stands in for.
    why : str
        What changed in the stack.
    """

    name: str
    package: str
    stands_for: tuple
    why: str


ADAPTATIONS = (
    Adaptation(
        "pkg_resources", "abagen",
        ("abagen.datasets.fetchers (fetchers.py:10)",
         "abagen.probes_ (probes_.py:11)",
         "abagen.samples_ (samples_.py:8)",
         "abagen.mouse.io (mouse/io.py:7)"),
        "setuptools >= 82 ships no pkg_resources; abagen imports "
        "resource_filename from it at import time to locate its bundled "
        "data files",
    ),
    Adaptation(
        "DataFrame.append", "abagen",
        ("abagen.allen.get_expression_data (allen.py:505, 506, 544)",
         "abagen.allen._match_centroids (allen.py:813)",
         "abagen.utils.labeltable_to_df (utils.py:180)",
         "abagen.samples_.groupby_index (samples_.py:406)"),
        "pandas 2.0 removed DataFrame.append and Series.append; pandas 1.5 "
        "implemented both as pd.concat([self, other]), which the shim calls",
    ),
    Adaptation(
        "DataFrame.set_axis(inplace=)", "abagen",
        ("abagen.probes_.collapse_probes (probes_.py:757)",),
        "pandas 2.0 removed the inplace argument of set_axis; abagen passes "
        "inplace=False, which is what set_axis now always does",
    ),
    Adaptation(
        "AtlasTree._assign_sample", "abagen",
        ("abagen.matching.AtlasTree._assign_sample (matching.py:392)",
         "abagen.matching.AtlasTree.label_samples (matching.py:338)"),
        "when parcels tie, _assign_sample returns a 1-element array (the "
        "closest centroid of a one-row frame), which label_samples stores in "
        "a float array; numpy 1.25 deprecated storing an array with ndim > 0 "
        "as a scalar and numpy 2 raises; the adaptation returns its element",
    ),
    Adaptation(
        "load_gifti(GiftiImage)", "abagen",
        ("abagen.utils.load_gifti (utils.py:210-219)",
         "abagen.images.check_surface (images.py:276)",
         "abagen.images (images.py:168, 420)",
         "abagen.datasets.fetchers (fetchers.py:491)"),
        "load_gifti passes a loaded GiftiImage through only when nib.load "
        "fails on it with nibabel 3's TypeError text ('stat: path should be "
        "string, bytes, os.PathLike or integer, not GiftiImage'); nibabel 5 "
        "words it differently (on the legacy stack too) and load_gifti "
        "re-raises; the adaptation returns a GiftiImage as it is",
    ),
    Adaptation(
        "_max_idx(object columns)", "abagen",
        ("abagen.probes_._max_idx (probes_.py:347)",
         "abagen.probes_._groupby_and_apply (probes_.py:181)"),
        "pandas 1.5's DataFrame.idxmax raised TypeError on an object column, "
        "on which abagen relies (GroupBy.apply then retries without the "
        "grouping column 'gene_symbol'); pandas 2 returns it; the adaptation "
        "raises as pandas 1.5 did and takes an integer `column` by position, "
        "as pandas 1.5's Series.__getitem__ did",
    ),
    Adaptation(
        "np.row_stack", "abagen",
        ("abagen.correct._batch_correct (correct.py:67)",
         "abagen.correct.remove_distance (correct.py:497)",
         "abagen.matching.AtlasTree._assign_sample (matching.py:388)",
         "abagen.images.check_geometry (images.py:426)",
         "abagen.surfaces.make_surf_graph (surfaces.py:183)"),
        "numpy 2.0 deprecated np.row_stack, an alias of np.vstack",
    ),
    Adaptation(
        "np.row_stack", "brainsmash",
        ("brainsmash.mapgen.base.Base.__call__ (mapgen/base.py:135)",
         "brainsmash.mapgen.sampled.Sampled.__call__ (mapgen/sampled.py:129)",
         "brainsmash.workbench.geo (geo.py:124, 126, 278)",
         "brainsmash.workbench.surf.make_surf_graph (surf.py:179)"),
        "numpy 2.0 deprecated np.row_stack, an alias of np.vstack",
    ),
)

# abagen functions that hold a line covered by a pandas adaptation; while any
# of them runs, the removed pandas methods exist again.
_PANDAS_SCOPED = {
    # itx.expression calls _match_centroids itself (missing="centroids")
    "abagen.allen": ("get_expression_data", "_match_centroids"),
    "abagen.utils": ("labeltable_to_df",),
    "abagen.samples_": ("groupby_index",),
    "abagen.probes_": ("collapse_probes",),
}
_ROW_STACK_MODULES = {
    "abagen": ("abagen.correct", "abagen.matching", "abagen.images",
               "abagen.surfaces"),
    "brainsmash": ("brainsmash.mapgen.base", "brainsmash.mapgen.sampled",
                   "brainsmash.workbench.geo", "brainsmash.workbench.surf"),
}

_lock = threading.RLock()
_applied: dict = {}  # package -> tuple of adaptation names applied
_scope_depth = 0
_saved_methods: dict = {}


def applied(package="abagen"):
    """Names of the adaptations applied to `package` in this process."""
    return _applied.get(package, ())


# ---------------------------------------------------------------- pkg_resources
def _resource_filename(package, resource):
    """What ``pkg_resources.resource_filename`` returns for a package on disk."""
    return str(importlib.resources.files(package).joinpath(resource))


@contextlib.contextmanager
def _pkg_resources_during_import():
    """Make ``from pkg_resources import resource_filename`` work, then undo."""
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = _resource_filename
    shim.__doc__ = "itx.compat stand-in, present only while abagen imports"
    sys.modules["pkg_resources"] = shim
    try:
        yield
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]


# ---------------------------------------------------------------- pandas
def _frame_append(self, other, ignore_index=False, verify_integrity=False,
                  sort=False):
    # pandas 1.5 DataFrame.append for a DataFrame, a list of them or None
    # (which concat drops): exactly concat of self and the others. A Series
    # or dict (a new row) took another path there; abagen never passes one.
    if isinstance(other, (pd.Series, dict)):
        raise TypeError("itx.compat's DataFrame.append takes frames only")
    others = list(other) if isinstance(other, (list, tuple)) else [other]
    return pd.concat([self, *others], ignore_index=ignore_index,
                     verify_integrity=verify_integrity, sort=sort)


def _series_append(self, to_append, ignore_index=False,
                   verify_integrity=False):
    others = (list(to_append) if isinstance(to_append, (list, tuple))
              else [to_append])
    return pd.concat([self, *others], ignore_index=ignore_index,
                     verify_integrity=verify_integrity)


def _set_axis_accepting_inplace(original):
    @functools.wraps(original)
    def set_axis(self, labels, *args, inplace=False, **kwargs):
        if inplace:
            raise TypeError("set_axis(inplace=True) is not supported by "
                            "itx.compat; abagen 0.1.3 never asks for it")
        return original(self, labels, *args, **kwargs)
    set_axis.__itx_compat__ = True
    return set_axis


def _pandas_needs(name):
    if name == "DataFrame.append":
        return not hasattr(pd.DataFrame, "append")
    if name == "DataFrame.set_axis(inplace=)":
        import inspect
        return "inplace" not in inspect.signature(pd.DataFrame.set_axis).parameters
    raise KeyError(name)


def _enter_pandas_scope(names):
    global _scope_depth
    with _lock:
        if _scope_depth == 0:
            if "DataFrame.append" in names:
                _saved_methods[(pd.DataFrame, "append")] = None
                _saved_methods[(pd.Series, "append")] = None
                pd.DataFrame.append = _frame_append
                pd.Series.append = _series_append
            if "DataFrame.set_axis(inplace=)" in names:
                original = pd.DataFrame.set_axis
                _saved_methods[(pd.DataFrame, "set_axis")] = original
                pd.DataFrame.set_axis = _set_axis_accepting_inplace(original)
        _scope_depth += 1


def _exit_pandas_scope():
    global _scope_depth
    with _lock:
        _scope_depth -= 1
        if _scope_depth == 0:
            for (cls, attr), original in _saved_methods.items():
                if original is None:
                    delattr(cls, attr)
                else:
                    setattr(cls, attr, original)
            _saved_methods.clear()


def _scoped(function, names):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        _enter_pandas_scope(names)
        try:
            return function(*args, **kwargs)
        finally:
            _exit_pandas_scope()
    wrapper.__itx_compat__ = True
    return wrapper


def _replace_everywhere(prefix, original, replacement):
    # `from .allen import get_expression_data` binds the function in other
    # modules too (abagen/__init__.py); rebind it wherever it was bound.
    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == prefix
                                  or modname.startswith(prefix + ".")):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)


# ---------------------------------------------------------------- numpy
class _NumpyWithRowStack(types.ModuleType):
    """numpy as the patched module sees it: ``row_stack`` is ``vstack``."""

    def __init__(self):
        super().__init__("numpy")
        self.row_stack = np.vstack

    def __getattr__(self, name):
        return getattr(np, name)


def _numpy_needs_row_stack():
    if not hasattr(np, "row_stack"):
        return True
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            np.row_stack([[0]])
        except DeprecationWarning:
            return True
    return False


def _patch_row_stack(package):
    proxy = _NumpyWithRowStack()
    for modname in _ROW_STACK_MODULES[package]:
        module = importlib.import_module(modname)
        if getattr(module, "np", None) is np:
            module.np = proxy


# ---------------------------------------------------------------- matching
def _numpy_rejects_sized_scalars():
    try:
        np.zeros(1)[0] = np.zeros(1)
    except (TypeError, ValueError):
        return True
    return False


def _scalar_label(original):
    @functools.wraps(original)
    def _assign_sample(self, possible, sample):
        label = original(self, possible, sample)
        if isinstance(label, np.ndarray) and label.size == 1:
            return label.reshape(-1)[0]
        return label
    _assign_sample.__itx_compat__ = True
    return _assign_sample


# ---------------------------------------------------------------- nibabel
def _load_gifti_needs_images():
    import nibabel as nib
    from abagen import utils

    try:
        utils.load_gifti(nib.GiftiImage())
    except TypeError:
        return True
    return False


def _load_gifti_passing_images(original):
    import nibabel as nib

    @functools.wraps(original)
    def load_gifti(img):
        if isinstance(img, nib.GiftiImage):
            return img
        return original(img)
    load_gifti.__itx_compat__ = True
    return load_gifti


# ---------------------------------------------------------------- probes
def _idxmax_accepts_objects():
    try:
        pd.DataFrame({"a": ["x", "y"]}).idxmax()
    except TypeError:
        return False
    return True


def _max_idx_numeric_only(original):
    @functools.wraps(original)
    def _max_idx(df, column=0):
        if any(pd.api.types.is_object_dtype(dtype)
               or isinstance(dtype, pd.StringDtype) for dtype in df.dtypes):
            raise TypeError("reduction operation 'argmax' not allowed for "
                            "this dtype")
        if (pd.api.types.is_integer(column) and column not in df.columns
                and not pd.api.types.is_numeric_dtype(df.columns)):
            column = df.columns[column]
        return original(df, column=column)
    _max_idx.__itx_compat__ = True
    return _max_idx


# ---------------------------------------------------------------- public
def patch_abagen(skip=()):
    """Import abagen with the adaptations the installed stack needs.

    Parameters
    ----------
    skip : iterable of str, optional
        Names of adaptations not to apply; for tests that show an adaptation
        is needed. Skipping only works on the first call in a process.

    Returns
    -------
    module
        The ``abagen`` package.
    """
    skip = set(skip)
    with _lock:
        if "abagen" in _applied:
            return sys.modules["abagen"]
        done = []
        need_pkg = (importlib.util.find_spec("pkg_resources") is None
                    and "pkg_resources" not in skip)
        with (_pkg_resources_during_import() if need_pkg
              else contextlib.nullcontext()):
            import abagen
            # every module that imports pkg_resources, abagen.mouse.io among
            # them, is loaded here, while the stand-in exists
            for modname in ("abagen.datasets.fetchers", "abagen.probes_",
                            "abagen.samples_", "abagen.mouse.io"):
                importlib.import_module(modname)
        if need_pkg:
            done.append("pkg_resources")

        pandas_names = tuple(
            name for name in ("DataFrame.append", "DataFrame.set_axis(inplace=)")
            if name not in skip and _pandas_needs(name))
        if pandas_names:
            for modname, functions in _PANDAS_SCOPED.items():
                module = importlib.import_module(modname)
                for fname in functions:
                    original = getattr(module, fname)
                    if getattr(original, "__itx_compat__", False):
                        continue
                    _replace_everywhere("abagen", original,
                                        _scoped(original, pandas_names))
            done.extend(pandas_names)

        if ("AtlasTree._assign_sample" not in skip
                and _numpy_rejects_sized_scalars()):
            from abagen.matching import AtlasTree
            AtlasTree._assign_sample = _scalar_label(AtlasTree._assign_sample)
            done.append("AtlasTree._assign_sample")

        if "load_gifti(GiftiImage)" not in skip and _load_gifti_needs_images():
            from abagen import utils
            _replace_everywhere("abagen", utils.load_gifti,
                                _load_gifti_passing_images(utils.load_gifti))
            done.append("load_gifti(GiftiImage)")

        if "_max_idx(object columns)" not in skip and _idxmax_accepts_objects():
            from abagen import probes_
            _replace_everywhere("abagen", probes_._max_idx,
                                _max_idx_numeric_only(probes_._max_idx))
            done.append("_max_idx(object columns)")

        if "np.row_stack" not in skip and _numpy_needs_row_stack():
            _patch_row_stack("abagen")
            done.append("np.row_stack")
        _applied["abagen"] = tuple(done)
        return abagen


def patch_brainsmash(skip=()):
    """Import brainsmash with the adaptations the installed numpy needs.

    Parameters
    ----------
    skip : iterable of str, optional
        As for :func:`patch_abagen`.

    Returns
    -------
    module
        The ``brainsmash`` package.
    """
    with _lock:
        import brainsmash
        if "brainsmash" in _applied:
            return brainsmash
        done = []
        if "np.row_stack" not in set(skip) and _numpy_needs_row_stack():
            _patch_row_stack("brainsmash")
            done.append("np.row_stack")
        _applied["brainsmash"] = tuple(done)
        return brainsmash
