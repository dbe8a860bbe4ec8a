"""pytest plugin that runs abagen 0.1.3's own test suite on the current stack.

``tests/test_abagen_suite.py`` loads it with ``-p itx_abagen_plugin`` in a
subprocess that runs abagen's tests (``abagen/tests/`` from the PyPI sdist,
copied to ``<tmp>/abagen_tests/`` so that ``import abagen`` finds the
installed package, not the sdist's copy).  The plugin

- applies ``itx.compat.patch_abagen()`` when it is imported, which is before
  pytest loads abagen's ``conftest.py`` (that imports abagen);
  ``ITX_ABAGEN_COMPAT=0`` leaves it out, for the run that shows the suite
  fails without the compatibility module;
- provides ``pkg_resources`` while abagen's *test modules* are imported
  (``tests/test_images.py`` and ``tests/cli/test_run.py`` themselves do
  ``from pkg_resources import resource_filename``).  That is abagen's test
  code, not abagen, so it is handled here and not in ``itx.compat``;
- blocks every connection off this machine (DNS look-ups included), so a
  test that needs the network fails at once instead of hanging;
- deselects the tests listed in ``deselected.toml`` ([network]) and marks
  those in [pending_compat] ``xfail(strict=True)`` while the adaptation they
  wait for is not in ``itx.compat.applied("abagen")``;
- writes what it did (the abagen file imported, the adaptations applied, the
  deselected node ids, list entries that matched nothing) as JSON to
  ``$ITX_ABAGEN_REPORT``.

Nothing here changes abagen or its tests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import tomllib
from pathlib import Path

import pytest

COMPAT = os.environ.get("ITX_ABAGEN_COMPAT", "1") != "0"
LIST_FILE = Path(__file__).with_name("deselected.toml")
# the sdist's abagen/tests/ is run as <rootdir>/abagen_tests/
SDIST_PREFIX, RUN_PREFIX = "abagen/tests/", "abagen_tests/"

if COMPAT:
    from itx import compat

    compat.patch_abagen()


def load_list(path=LIST_FILE):
    """The [network] and [pending_compat] tables of `path`."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return data.get("network", {}), data.get("pending_compat", {})


def _run_id(sdist_id):
    if not sdist_id.startswith(SDIST_PREFIX):
        raise pytest.UsageError(f"{LIST_FILE.name}: {sdist_id!r} does not start "
                                f"with {SDIST_PREFIX!r}")
    return RUN_PREFIX + sdist_id[len(SDIST_PREFIX):]


def _matches(nodeid, entry):
    # an entry names a module, a test function (every parametrization) or
    # one parametrized test
    return (nodeid == entry or nodeid.split("[", 1)[0] == entry
            or nodeid.startswith(entry + "::"))


# ---------------------------------------------------------------- network
class NetworkBlocked(OSError):
    """Raised instead of opening a connection off this machine."""


def _is_local(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "", "localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real = {"getaddrinfo": socket.getaddrinfo,
         "connect": socket.socket.connect,
         "connect_ex": socket.socket.connect_ex}


def _getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        raise NetworkBlocked(f"network blocked by itx_abagen_plugin: "
                             f"getaddrinfo({host!r})")
    return _real["getaddrinfo"](host, *args, **kwargs)


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise NetworkBlocked(f"network blocked by itx_abagen_plugin: "
                             f"connect({address!r})")


def _connect(self, address):
    _check(self, address)
    return _real["connect"](self, address)


def _connect_ex(self, address):
    _check(self, address)
    return _real["connect_ex"](self, address)


# ---------------------------------------------------------------- hooks
class _State:
    def __init__(self):
        network, pending = load_list()
        self.network = {_run_id(k): v for k, v in network.items()}
        self.pending = {_run_id(k): v for k, v in pending.items()}
        self.applied = tuple(compat.applied("abagen")) if COMPAT else ()
        self.hit = set()
        self.deselected = []
        self.ignored = []
        self.xfailed = []


_state = None


def pytest_configure(config):
    global _state
    _state = _State()
    socket.getaddrinfo = _getaddrinfo
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex


def pytest_ignore_collect(collection_path, config):
    # whole modules in [network] query the network when imported: skip
    # importing them at all
    try:
        rel = collection_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return None
    if rel in _state.network:
        _state.hit.add(rel)
        _state.ignored.append(rel)
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    # a test module is imported while its collect report is made
    if COMPAT and isinstance(collector, pytest.Module):
        with compat._pkg_resources_during_import():
            return (yield)
    return (yield)


def pytest_collection_modifyitems(session, config, items):
    keep, drop = [], []
    for item in items:
        entry = next((e for e in _state.network if _matches(item.nodeid, e)), None)
        if entry is not None:
            _state.hit.add(entry)
            drop.append(item)
            continue
        keep.append(item)
        entry = next((e for e in _state.pending if _matches(item.nodeid, e)), None)
        if entry is not None:
            _state.hit.add(entry)
            info = _state.pending[entry]
            if info["adaptation"] not in _state.applied:
                item.add_marker(pytest.mark.xfail(
                    strict=True, reason=f"needs itx.compat adaptation "
                                        f"{info['adaptation']!r}: {info['why']}"))
                _state.xfailed.append(item.nodeid)
    if drop:
        config.hook.pytest_deselected(items=drop)
        _state.deselected.extend(item.nodeid for item in drop)
    items[:] = keep


def pytest_report_header(config):
    abagen = sys.modules.get("abagen")
    return [f"itx-abagen: {getattr(abagen, '__file__', 'not imported')}",
            f"itx-abagen-compat: {_state.applied if COMPAT else 'disabled'}"]


def pytest_unconfigure(config):
    socket.getaddrinfo = _real["getaddrinfo"]
    socket.socket.connect = _real["connect"]
    socket.socket.connect_ex = _real["connect_ex"]
    out = os.environ.get("ITX_ABAGEN_REPORT")
    if out and _state is not None:
        abagen = sys.modules.get("abagen")
        entries = set(_state.network) | set(_state.pending)
        Path(out).write_text(json.dumps({
            "abagen_file": getattr(abagen, "__file__", None),
            "compat": COMPAT,
            "applied": list(_state.applied),
            "ignored_modules": sorted(_state.ignored),
            "deselected": sorted(_state.deselected),
            "pending_xfail": sorted(_state.xfailed),
            "unmatched_entries": sorted(entries - _state.hit),
        }, indent=1))
