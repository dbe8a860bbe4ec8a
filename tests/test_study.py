"""A study is a folder: `make study` / scripts/tools/new_study.py, and studies run with
`snakemake --directory <study>` or as a Snakemake module, sharing one resources_dir.

The end-to-end tests (marked slow) run in copies of the checkout in a temporary
folder; nothing is written to the checkout's results/ or resources/.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

import conftest
from conftest import job_counts, run_snakemake

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "config" / "study.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
NEW_STUDY = ROOT / "scripts" / "tools" / "new_study.py"
SHARED = ROOT.parent / "shared" / "data"
ENIGMA_MDD = SHARED / "enigma" / "summary_statistics" / "mddadult_case-controls_CortThick.csv"
# the jobs that make the shared downloads and caches under resources_dir
SHARED_RULES = {"demo_donors", "demo_map", "demo_genesets", "fetch_donor", "ahba_cache",
                "select_probes", "gene_aliases", "fetch_genesets"}


# --- helpers -----------------------------------------------------------------

def run(cmd, cwd, timeout=900, **kw):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)


def new_study(*args, cwd, script=NEW_STUDY):
    return run([sys.executable, str(script), *map(str, args)], cwd=cwd)


def snakemake(cwd, *args, timeout=900):
    return run_snakemake(cwd, *map(str, args), timeout=timeout)


def copy_checkout(dest):
    """A copy of the checkout (no outputs, no downloads) with the suite's .venv linked in."""
    return conftest.copy_checkout(dest, venv=True)


def tree_state(folder, skip=()):
    """Path -> (size, mtime_ns) of every file under `folder` (except `skip` top-level names)."""
    state = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or ".pytest_cache" in rel.parts:
            continue
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            state[str(rel)] = (st.st_size, st.st_mtime_ns)
    return state


def schema_node(schema, path):
    """The schema of a config path (a list of keys; names under a pattern match any key)."""
    node = schema
    for key in path:
        props = node.get("properties") or {}
        if key in props:
            node = props[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def schema_keys(node, path=()):
    """(path, is_fixed) of every key the schema names; is_fixed: no pattern key on the way."""
    out = []
    for name, sub in (node.get("properties") or {}).items():
        out.append((path + (name,), "*" not in path))
        out += schema_keys(sub, path + (name,))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += schema_keys(extra, path + ("*",))
    for alt in node.get("oneOf", []) + node.get("anyOf", []):
        out += schema_keys(alt, path)
    return out


def template_keys(text):
    """(config path, comment block) of every active key line of a YAML template.

    The comment block is the key's inline comment plus the comment lines right
    above it.
    """
    lines = text.splitlines()
    stack, out = [], []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z0-9_.-]+):(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        block = [rest.split(" #", 1)[1]] if " #" in rest else []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            block.append(lines[j])
            j -= 1
        out.append((tuple(k for _, k in stack), "\n".join(block)))
    return out


def readme_sheet_columns():
    """The maps sheet's columns, from the "Maps sheet" table of config/README.md."""
    text = (ROOT / "config" / "README.md").read_text()
    section = text.split("\n## Maps sheet\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


# --- the template ------------------------------------------------------------

def test_template_has_every_schema_key():
    schema = yaml.safe_load(SCHEMA.read_text())
    text = TEMPLATE.read_text()
    cfg = yaml.safe_load(text)
    missing_active, missing_any = [], []
    for path, fixed in schema_keys(schema):
        if fixed:
            node = cfg
            for key in path:
                if not isinstance(node, dict) or key not in node:
                    missing_active.append(".".join(path))
                    break
                node = node[key]
        elif not re.search(rf"(^|[\s{{,#]){re.escape(path[-1])}:", text, flags=re.MULTILINE):
            missing_any.append(".".join(path))
    # every fixed key is written out, so the user sees its value; keys under a
    # name the user chooses (atlases.<name>, genesets.<name>, resources.<rule>)
    # appear at least in a commented example
    assert not missing_active, f"config/study.yaml lacks schema keys {missing_active}"
    assert not missing_any, f"config/study.yaml never mentions {missing_any}"


def test_template_explains_every_key():
    schema = yaml.safe_load(SCHEMA.read_text())
    problems = []
    for path, block in template_keys(TEMPLATE.read_text()):
        name = ".".join(path)
        node = schema_node(schema, path)
        if node is None:
            problems.append(f"{name}: not in the schema")
            continue
        if not block.strip():
            problems.append(f"{name}: no comment")
            continue
        # a section's keys give their own defaults
        section = "properties" in node
        if "default" in node and not section and "default" not in block.lower():
            problems.append(f"{name}: the comment does not give the default")
        for value in node.get("enum", []):
            shown = "null" if value is None else str(value)
            if not re.search(rf"(?<![\w-]){re.escape(shown)}(?![\w-])", block):
                problems.append(f"{name}: the comment does not list the value {shown!r}")
    assert not problems, "\n".join(problems)


def test_template_is_written_for_a_real_study(tmp_path, monkeypatch):
    cfg = yaml.safe_load(TEMPLATE.read_text())
    assert cfg["ahba"]["source"] == "allen"
    assert cfg["nulls"]["n_perm"] == 10000 and cfg["enrichment"]["n_random"] == 10000
    assert cfg["genesets"] == {"seidlitz2020": "seidlitz2020", "lake2018": "lake2018",
                               "pooled7": "pooled7"}
    assert cfg["dense"]["enabled"] is False
    assert cfg["maps"] == "config/maps.tsv"
    # valid once the sheet exists (the workflow reads it relative to the study folder)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "maps.tsv").write_text("\t".join(readme_sheet_columns()) + "\n")
    monkeypatch.chdir(tmp_path)
    validate(cfg, str(SCHEMA))
    assert Path(cfg["maps"]).is_file()


# --- scripts/tools/new_study.py ------------------------------------------------------

def test_new_study_writes_a_commented_valid_study(tmp_path, monkeypatch):
    res = new_study(tmp_path / "studies" / "mdd", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    study = tmp_path / "studies" / "mdd"
    assert "studies/mdd" in res.stdout and "--directory" in res.stdout
    text = (study / "config" / "config.yaml").read_text()
    cfg = yaml.safe_load(text)
    # resources_dir: the checkout's resources/, absolute, so every study shares it
    assert cfg["resources_dir"] == str(ROOT / "resources")
    # otherwise the template as it is, comments included
    template = TEMPLATE.read_text().splitlines()
    written = text.splitlines()
    assert len(written) == len(template)
    differ = [(a, b) for a, b in zip(template, written) if a != b]
    assert differ == [("resources_dir: resources", f"resources_dir: {ROOT / 'resources'}")]
    # the sheet: header row only, README's columns
    assert (study / "config" / "maps.tsv").read_text() == "\t".join(readme_sheet_columns()) + "\n"
    assert readme_sheet_columns()[:3] == ["map", "path", "format"]
    assert (study / "data").is_dir()
    readme = (study / "README.md").read_text()
    assert f"--directory {study}" in readme and "--report results/report.html" in readme
    assert "--unlock" in readme
    assert not (study / "workflow").exists()
    monkeypatch.chdir(study)
    validate(cfg, str(SCHEMA))


def test_new_study_refuses_an_existing_folder(tmp_path):
    study = tmp_path / "mdd"
    assert new_study(study, cwd=tmp_path).returncode == 0
    sheet = study / "config" / "maps.tsv"
    sheet.write_text(sheet.read_text() + "m\tdata/m.csv\ttable\n")
    before = tree_state(study)
    res = new_study(study, cwd=tmp_path)
    assert res.returncode == 1
    assert "already exists" in res.stderr and "never overwritten" in res.stderr
    assert "Traceback" not in res.stderr
    assert tree_state(study) == before
    # an empty folder, or a file, is refused too
    (tmp_path / "empty").mkdir()
    assert new_study(tmp_path / "empty", cwd=tmp_path).returncode == 1
    assert list((tmp_path / "empty").iterdir()) == []
    # FROM must be a study
    res = new_study(tmp_path / "other", "--from", tmp_path / "empty", cwd=tmp_path)
    assert res.returncode == 1 and "not a study folder" in res.stderr
    assert not (tmp_path / "other").exists()


def test_from_copies_config_and_sheet_and_keeps_paths_working(tmp_path):
    a = tmp_path / "studies" / "mdd"
    assert new_study(a, cwd=tmp_path).returncode == 0
    (a / "data" / "sets").mkdir(parents=True)
    (a / "data" / "thickness.csv").write_text("Structure,d_icv\nL_bankssts,0.1\n")
    (a / "data" / "sets" / "mine.gmt").write_text("A\tna\tGENE1\n")
    text = (a / "config" / "config.yaml").read_text()
    text = text.replace("  method: auto\n", "  method: vasa\n", 1)
    text = text.replace("  pooled7: pooled7\n", "  pooled7: pooled7\n  mine: data/sets/mine.gmt\n")
    (a / "config" / "config.yaml").write_text(text)
    with open(a / "config" / "maps.tsv", "a") as fh:
        fh.write("mdd\tdata/thickness.csv\ttable\td_icv\tdk\t-1\tENIGMA MDD\t\n")
    before = tree_state(a)

    b = tmp_path / "studies" / "mdd_moran"
    res = new_study(b, "--from", a, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert tree_state(a) == before
    cfg_a = yaml.safe_load((a / "config" / "config.yaml").read_text())
    cfg_b = yaml.safe_load((b / "config" / "config.yaml").read_text())
    # the same config, with the path of a file of the first study seen from the second
    assert cfg_b["genesets"]["mine"] == "../mdd/data/sets/mine.gmt"
    assert (b / cfg_b["genesets"]["mine"]).resolve() == (a / "data/sets/mine.gmt").resolve()
    cfg_b["genesets"]["mine"] = cfg_a["genesets"]["mine"]
    assert cfg_b == cfg_a
    # comments stay
    assert (b / "config" / "config.yaml").read_text().count("#") == text.count("#")
    sheet = pd.read_csv(b / "config" / "maps.tsv", sep="\t", dtype=str).fillna("")
    assert list(sheet["path"]) == ["../mdd/data/thickness.csv"]
    assert (b / sheet["path"][0]).resolve() == (a / "data" / "thickness.csv").resolve()
    assert list(sheet["sign"]) == ["-1"] and list(sheet["column"]) == ["d_icv"]
    assert "copied from" in (b / "README.md").read_text()
    assert "../mdd/data/thickness.csv" in res.stdout


def test_module_flag_writes_a_snakedeploy_style_snakefile(tmp_path):
    res = new_study(tmp_path / "mdd", "--module", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    snakefile = (tmp_path / "mdd" / "workflow" / "Snakefile").read_text()
    code = [line for line in snakefile.splitlines() if line.strip() and not line.startswith("#")]
    assert code[0] == 'configfile: "config/config.yaml"'
    assert "module itx:" in code
    assert f'"{ROOT / "workflow" / "Snakefile"}"' in snakefile
    assert re.search(r"config:\s*\n\s+config\s*\n", snakefile)
    assert code[-1] == "use rule * from itx"
    # a variant of a module study is a module study too
    res = new_study(tmp_path / "mdd2", "--from", tmp_path / "mdd", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "mdd2" / "workflow" / "Snakefile").read_text() == snakefile


def test_make_study(tmp_path):
    work = tmp_path / "repo"
    conftest.copy_checkout(work)
    res = run(["make", "study"], cwd=work)
    assert res.returncode != 0 and "make study NAME=<name>" in res.stderr
    # some systems export NAME (WSL: the host name); only the command line counts
    res = run(["make", "study"], cwd=work, env={**os.environ, "NAME": "host"})
    assert res.returncode != 0 and not (work / "studies").exists()
    res = run(["make", "study", "NAME=mdd"], cwd=work)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load((work / "studies" / "mdd" / "config" / "config.yaml").read_text())
    assert cfg["resources_dir"] == str(work / "resources")
    res = run(["make", "study", "NAME=mdd"], cwd=work)
    assert res.returncode != 0 and "already exists" in res.stderr
    res = run(["make", "study", "NAME=mdd_vasa", "FROM=studies/mdd", "MODULE=1"], cwd=work)
    assert res.returncode == 0, res.stderr
    assert (work / "studies" / "mdd_vasa" / "workflow" / "Snakefile").is_file()
    elsewhere = tmp_path / "projects" / "mdd"
    res = run(["make", "study", "NAME=mdd", f"DIR={elsewhere}", "MODULE=0"], cwd=work)
    assert res.returncode == 0, res.stderr
    assert (elsewhere / "config" / "maps.tsv").is_file() and not (elsewhere / "workflow").exists()


def test_git_ignores_study_folders():
    res = run(["git", "check-ignore", "-q", "studies/mdd/config/config.yaml"], cwd=ROOT)
    assert res.returncode == 0, ".gitignore should ignore studies/"


def test_a_fresh_study_passes_the_workflows_checks(tmp_path):
    """The written config and empty sheet pass every check before any job (dry run)."""
    work = copy_checkout(tmp_path / "repo")
    assert new_study(work / "studies" / "mdd", cwd=work,
                     script=work / "scripts" / "tools" / "new_study.py").returncode == 0
    res = snakemake(work, "--directory", "studies/mdd", "--dry-run")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    jobs = job_counts(res)
    # the real AHBA (six donors) and the three built-in collections would be fetched
    assert jobs["fetch_donor"] == 6 and jobs["fetch_genesets"] == 3, jobs
    assert str(work / "resources" / "ahba" / "allen") in res.stdout
    assert not (work / "resources" / "ahba").exists()


# --- end to end: README "Your own study", word for word ------------------------------
#
# One run of the section's commands in a fresh copy of the checkout covers the
# whole path: a study made by `make study`, its map added, run with --directory,
# its report; a second variant (FROM, another null method) run side by side on
# the shared resources; the cluster commands; a module deployment of the same
# config; --unlock.

def readme_commands():
    """Shell commands of the ```bash blocks of README's "Your own study" section."""
    text = (ROOT / "README.md").read_text()
    assert "\n## Your own study\n" in text
    section = text.split("\n## Your own study\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_readme_section_has_the_commands():
    commands = readme_commands()
    assert commands[0] == "make study NAME=mdd"
    for needed in ("--directory studies/mdd", "--report results/report.html",
                   "FROM=studies/mdd", "MODULE=1", "--workflow-profile workflow/profiles/slurm",
                   "--unlock"):
        assert any(needed in c for c in commands), needed


def offline_study(config_path):
    """What cannot run here, for a study made by `make study`: brain-map.org and GitHub
    are unreachable, so the AHBA is the offline demo (generated AHBA-format donors) and
    the built-in gene sets come from the local mirror ../shared/data/genesets/ (the
    documented offline form, checksums verified as for a download). Two donors, one
    collection (seidlitz2020; each collection adds four jobs per study) and fewer null
    maps and random sets keep the test within minutes. Edited as text, so that the
    file stays as the user has it (comments, layout) for the README's own edits."""
    text = config_path.read_text()
    if (SHARED / "genesets").is_dir():
        mirror = f"{{builtin: seidlitz2020, source: {SHARED / 'genesets'}/}}"
    else:
        # a clean clone in CI has no ../shared/data: a generated collection instead
        mirror = str(generated_genesets(config_path.parents[2] / "generated_sets.gmt"))
    edits = [("  source: allen\n", "  source: demo\n"),
             ('  donors: ["9861", "10021", "12876", "14380", "15496", "15697"]\n',
              '  donors: ["9861", "10021"]\n'),
             ("  n_perm: 10000\n", "  n_perm: 100\n"),
             ("  n_random: 10000\n", "  n_random: 100\n"),
             ("  n_boot: 1000\n", "  n_boot: 100\n")]
    edits += [("  seidlitz2020: seidlitz2020\n", f"  seidlitz2020: {mirror}\n"),
              ("  lake2018: lake2018\n", ""), ("  pooled7: pooled7\n", "")]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config_path.write_text(text)


def generated_enigma_table(path):
    """An ENIGMA-format cortical-thickness table (the columns of the toolbox's files,
    synthetic values) for machines without ../shared/data, such as CI's clean clone."""
    from itx import atlas

    info = atlas.load_atlas("dk", {"builtin": "desikan_killiany"}).info
    cortex = info[info["structure"] == "cortex"]
    rng = np.random.default_rng(11)
    d = np.round(np.linspace(-0.15, 0.05, len(cortex))
                 + rng.normal(scale=0.03, size=len(cortex)), 3)
    pd.DataFrame({"CorticalThickness": "MDDadult_casevsCN", "Structure": cortex["region"],
                  "d_icv": d, "se_icv": 0.03}).to_csv(path, index=False)
    return path


def generated_genesets(path):
    """The demo's gene sets (genes of the demo AHBA), for machines without
    ../shared/data/genesets."""
    from itx import demo

    with open(path, "w") as fh:
        for name, genes in demo.demo_gene_sets(seed=0).items():
            fh.write(f"{name}\tgenerated\t" + "\t".join(genes) + "\n")
    return path


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The section's commands, run one by one with bash from a fresh copy of the
    checkout; per command: the result and the state of resources/ and of the
    checkout (outside studies/ and resources/) before and after."""
    work = copy_checkout(tmp_path_factory.mktemp("readme") / "repo")
    enigma = ENIGMA_MDD if ENIGMA_MDD.is_file() else None
    shutil.copytree(ROOT / "results", work / "results",
                    ignore=lambda d, names: [n for n in names if n != "README.md"])
    steps = []
    for command in readme_commands():
        argv = shlex.split(command)
        if argv[0] == "curl":
            # GitHub is unreachable here: the same file (its sha256 is checked by the
            # README's next command) from the local copy of the ENIGMA toolbox data;
            # without that copy (CI's clean clone), a generated table of the same format
            if enigma is None:
                enigma = generated_enigma_table(work.parent / "generated_enigma.csv")
            command = f"cp {shlex.quote(str(enigma))} {shlex.quote(argv[argv.index('-o') + 1])}"
        elif "sha256sum -c" in command and enigma != ENIGMA_MDD:
            continue  # the generated table is not the published file
        elif "workflow/profiles/slurm" in argv:
            # no SLURM cluster here (tests/test_slurm.py runs the profile on one)
            command += " --dry-run"
        before = (tree_state(work / "resources"), tree_state(work, skip=("studies", "resources")))
        started = time.monotonic()
        res = run(["bash", "-c", command], cwd=work, timeout=900)
        elapsed = time.monotonic() - started
        assert res.returncode == 0, f"$ {command}\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        after = (tree_state(work / "resources"), tree_state(work, skip=("studies", "resources")))
        steps.append(dict(command=command, res=res, elapsed=elapsed,
                          resources=(before[0], after[0]), checkout=(before[1], after[1])))
        m = re.fullmatch(r"make study NAME=(\S+)", command)
        if m:
            offline_study(work / "studies" / m.group(1) / "config" / "config.yaml")
    return dict(work=work, studies=work / "studies", steps=steps)


def step(readme_run, pattern):
    """The one step whose command matches `pattern`."""
    found = [s for s in readme_run["steps"] if re.search(pattern, s["command"])]
    assert len(found) == 1, [s["command"] for s in found]
    return found[0]


MAP = Path("results") / "dk" / "mdd_thickness"


@pytest.mark.slow
def test_readme_section_runs_word_for_word(readme_run):
    studies = readme_run["studies"]
    genes = pd.read_csv(studies / "mdd" / MAP / "genes.tsv", sep="\t")
    assert len(genes) > 1000 and genes["p_spin"].between(0, 1).all()
    thickness = pd.read_csv(studies / "mdd" / MAP / "map.tsv", sep="\t").set_index("region")
    # sign -1: thinning (negative d) is positive
    source = pd.read_csv(studies / "mdd" / "data" / "CortThick_case_vs_controls_adult_MDD.csv")
    d = source.set_index("Structure")["d_icv"]
    assert thickness.loc["L_fusiform", "value"] == pytest.approx(-d["L_fusiform"])
    if ENIGMA_MDD.is_file():
        assert thickness.loc["L_fusiform", "value"] == pytest.approx(0.117)
    enrichment = pd.read_csv(studies / "mdd" / MAP / "enrichment_seidlitz2020.tsv", sep="\t")
    if (SHARED / "genesets").is_dir():
        assert set(enrichment["set"]) <= {"Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In",
                                          "Oligo", "OPC"} and len(enrichment) >= 5
    else:
        assert len(enrichment) >= 3
    html = (studies / "mdd" / "results" / "report.html").read_text(errors="replace")
    assert "mdd_thickness" in html and "top_genes.png" in html
    # the variant found the ENIGMA table of the first study through the rewritten path
    sheet = pd.read_csv(studies / "mdd_vasa" / "config" / "maps.tsv", sep="\t", dtype=str)
    assert list(sheet["path"]) == ["../mdd/data/CortThick_case_vs_controls_adult_MDD.csv"]
    # the cluster command planned the study's (nothing left to do) in the study folder
    slurm = step(readme_run, "profiles/slurm")["res"]
    assert "Nothing to be done" in slurm.stdout + slurm.stderr
    unlock = step(readme_run, "--unlock")["res"]
    assert "Unlocked working directory" in unlock.stdout + unlock.stderr


@pytest.mark.slow
def test_results_and_logs_stay_in_each_study(readme_run):
    work, studies = readme_run["work"], readme_run["studies"]
    for name in ("mdd", "mdd_vasa", "mdd_module"):
        assert (studies / name / MAP / "genes.tsv").is_file()
        assert (studies / name / "results" / "versions.tsv").is_file()
        assert any((studies / name / "logs").iterdir())
        assert (studies / name / ".snakemake").is_dir()
        # downloads and caches went to the shared resources_dir, not into the study
        assert not (studies / name / "resources").exists()
    # nothing was written to the checkout: results/ holds only its README, no logs/ or
    # .snakemake/, and no file outside studies/ and resources/ changed at any step
    assert sorted(p.name for p in (work / "results").iterdir()) == ["README.md"]
    assert not (work / "logs").exists() and not (work / ".snakemake").exists()
    for s in readme_run["steps"]:
        assert s["checkout"][0] == s["checkout"][1], s["command"]
    assert (work / "resources" / "ahba" / "demo" / "cache").is_dir()


@pytest.mark.slow
def test_second_study_reuses_the_shared_resources(readme_run):
    first = step(readme_run, r"--cores 4 --directory studies/mdd$")
    second = step(readme_run, r"--cores 4 --directory studies/mdd_vasa$")
    assert {"demo_donors", "fetch_donor", "ahba_cache", "select_probes"} <= \
        set(job_counts(first["res"])), job_counts(first["res"])
    jobs = job_counts(second["res"])
    assert not SHARED_RULES & set(jobs), jobs
    assert jobs.get("expression") == 1 and jobs.get("association") == 1, jobs
    assert second["resources"][0] == second["resources"][1], "the variant changed resources/"


@pytest.mark.slow
def test_the_two_studies_used_their_own_null_methods(readme_run):
    studies = readme_run["studies"]
    methods = {}
    for name in ("mdd", "mdd_vasa"):
        with np.load(studies / name / MAP / "nulls.npz") as z:
            methods[name] = str(z["method"])
    # auto is alexander_bloch for a region table on an atlas with a surface
    assert methods == {"mdd": "alexander_bloch", "mdd_vasa": "vasa"}
    ga, gb = (pd.read_csv(studies / n / MAP / "genes.tsv", sep="\t").set_index("gene").sort_index()
              for n in ("mdd", "mdd_vasa"))
    # same map and expression: same r; other null maps: other p values
    assert np.allclose(ga["r"], gb["r"])
    assert not np.allclose(ga["p_spin"], gb["p_spin"])


@pytest.mark.slow
def test_module_deployment_matches_the_directory_run(readme_run):
    studies = readme_run["studies"]
    assert (studies / "mdd_module" / "workflow" / "Snakefile").is_file()
    for f in (MAP / "genes.tsv", Path("results") / "dk" / "expression.tsv"):
        assert (studies / "mdd_module" / f).read_bytes() == (studies / "mdd" / f).read_bytes(), f
    module = step(readme_run, "cd studies/mdd_module")
    assert not SHARED_RULES & set(job_counts(module["res"]))
    assert module["resources"][0] == module["resources"][1], "the module run changed resources/"
