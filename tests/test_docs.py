"""The documentation stays in step with the code.

* config/README.md documents every key of workflow/schemas/config.schema.yaml
  (nested keys included) and names no key the schema lacks;
* its "Maps sheet" table lists exactly the columns of workflow/schemas/maps.schema.yaml;
* the relative links of README.md, config/README.md and docs/*.md lead to files
  (and headings) that exist;
* the README keeps the two commands a newcomer needs.

In config/README.md a key is documented by a row of a table whose header starts
with "key" (first cell: the key's full path in backticks, `<name>` for a name the
user chooses), or by a `## ` heading that names it in backticks (a section such as
`nulls`). A maps-sheet column is a row of the table whose header starts with
"column".
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_README = ROOT / "config" / "README.md"
README = ROOT / "README.md"
CONFIG_SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
MAPS_SCHEMA = ROOT / "workflow" / "schemas" / "maps.schema.yaml"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# tokens that look like a dotted key but are file names (`expression.tsv`)
FILE_SUFFIXES = {"tsv", "csv", "yaml", "yml", "smk", "gmt", "json", "npz", "png", "html",
                 "txt", "gz", "nii", "gii", "md", "py"}


# --- the schema's keys ---------------------------------------------------------

def schema_keys(schema):
    """Every key path of a JSON schema: named properties, and `*` for the names a
    user chooses (additionalProperties that are schemas), recursively, through
    oneOf/anyOf alternatives too."""
    def walk(node, path):
        keys = []
        for name, sub in (node.get("properties") or {}).items():
            keys.append(path + (name,))
            keys += walk(sub, path + (name,))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            keys.append(path + ("*",))
            keys += walk(extra, path + ("*",))
        for alt in node.get("oneOf", []) + node.get("anyOf", []):
            keys += walk(alt, path)
        return keys

    return {".".join(k) for k in walk(schema, ())}


def normalise(key):
    """`atlases.<name>.builtin` -> `atlases.*.builtin`."""
    return re.sub(r"<[^<>]+>", "*", key)


# --- what config/README.md documents --------------------------------------------

def sections(text):
    """(heading, body) of every `## ` section."""
    parts = re.split(r"^## (.*)$", text, flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2]))


def table_first_cells(text, header):
    """First cells (inside backticks) of the rows of every table whose header row's
    first cell is `header`."""
    cells = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = re.match(r"^\|\s*([^|]*?)\s*\|", lines[i])
        if head and i + 1 < len(lines) and re.match(r"^\|[\s:-]+\|", lines[i + 1]):
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(lines[j])
                j += 1
            if head.group(1).lower() == header:
                for row in rows:
                    m = re.match(r"^\|\s*`([^`]+)`\s*\|", row)
                    assert m, f"a row of a {header!r} table has no `...` first cell: {row}"
                    cells.append(m.group(1))
            i = j
        else:
            i += 1
    return cells


def documented_keys(text):
    keys = table_first_cells(text, "key")
    for heading, _ in sections(text):
        keys += re.findall(r"`([^`]+)`", heading)
    return [normalise(k) for k in keys]


def test_config_readme_documents_every_schema_key():
    schema = schema_keys(yaml.safe_load(CONFIG_SCHEMA.read_text()))
    documented = set(documented_keys(CONFIG_README.read_text()))
    missing = sorted(schema - documented)
    assert not missing, f"config/README.md does not document {missing}"


def test_config_readme_names_no_key_the_schema_lacks():
    schema = schema_keys(yaml.safe_load(CONFIG_SCHEMA.read_text()))
    text = CONFIG_README.read_text()
    unknown = sorted(set(documented_keys(text)) - schema)
    assert not unknown, f"config/README.md documents keys the schema does not have: {unknown}"
    # dotted keys in the prose too (`nulls.n_perm`), with a top-level key first
    top = {k.split(".")[0] for k in schema}
    named = set()
    for token in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_<>]+)+)`", text):
        if token.split(".")[0] in top and token.rsplit(".", 1)[1] not in FILE_SUFFIXES:
            named.add(normalise(token))
    unknown = sorted(named - schema)
    assert not unknown, f"config/README.md names keys the schema does not have: {unknown}"


def test_config_readme_documents_each_key_once():
    keys = table_first_cells(CONFIG_README.read_text(), "key")
    dup = sorted({k for k in keys if keys.count(k) > 1})
    assert not dup, f"config/README.md has several rows for {dup}"


def maps_sheet_columns(text):
    section = dict(sections(text))["Maps sheet"]
    return table_first_cells(section, "column")


def test_config_readme_lists_the_maps_sheet_columns():
    schema = yaml.safe_load(MAPS_SCHEMA.read_text())
    columns = maps_sheet_columns(CONFIG_README.read_text())
    assert len(columns) == len(set(columns)), columns
    missing = sorted(set(schema["properties"]) - set(columns))
    assert not missing, f"config/README.md's maps sheet table lacks the column(s) {missing}"
    unknown = sorted(set(columns) - set(schema["properties"]))
    assert not unknown, f"config/README.md lists sheet column(s) the schema lacks: {unknown}"
    # the required columns first, marked required
    assert columns[:len(schema["required"])] == schema["required"]
    rows = {c: r for c, r in re.findall(r"^\| `([a-z_]+)` \| (yes|no) \|",
                                        dict(sections(CONFIG_README.read_text()))["Maps sheet"],
                                        flags=re.MULTILINE)}
    assert {c for c, r in rows.items() if r == "yes"} == set(schema["required"])


def test_config_readme_starts_with_how_to_configure():
    """The Snakemake workflow catalog shows config/README.md as the configuration
    instructions: it opens with how to configure a study."""
    text = CONFIG_README.read_text()
    first = text.split("\n## ", 1)[0]
    for needed in ("config.yaml", "maps.tsv", "make study", "--directory"):
        assert needed in first, needed


# --- the checker itself ------------------------------------------------------------

def test_checker_notices_a_missing_or_unknown_key():
    schema = {"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
        "m": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"x": {"type": "string"}}}}}}
    assert schema_keys(schema) == {"a", "a.b", "m", "m.*", "m.*.x"}
    doc = ("## `a`: section\n\n| key | values |\n|---|---|\n| `a.b` | int |\n"
           "| `m` | map |\n| `m.<name>` | one |\n| `m.<name>.x` | str |\n")
    assert set(documented_keys(doc)) == schema_keys(schema)
    assert schema_keys(schema) - set(documented_keys(doc.replace("| `a.b` | int |\n", ""))) \
        == {"a.b"}
    assert set(documented_keys(doc + "| `a.c` | typo |\n")) - schema_keys(schema) == {"a.c"}


# --- links ----------------------------------------------------------------------

def github_slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    slugs, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.*)$", text, flags=re.MULTILINE):
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


@pytest.mark.parametrize("doc", [README, CONFIG_README, *DOCS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"


def test_docs_pages_are_linked_from_the_readme():
    text = README.read_text()
    unlinked = [p.name for p in DOCS if f"(docs/{p.name}" not in text]
    assert not unlinked, f"README.md links no docs page {unlinked}"
    assert "(config/README.md" in text


def test_readme_keeps_the_two_commands():
    text = README.read_text()
    assert re.search(r"^make demo\s", text, flags=re.MULTILINE)
    assert re.search(r"^make test\s", text, flags=re.MULTILINE)
    assert "\n## Your own study\n" in text
