"""Bad map files give one clear message each, before any job and again in parcellation.

Every case writes one bad file (or pair) into tmp_path; ``check_map_file`` must
report it with a message naming the file, matching a pattern and saying the
fix, and ``parcellate_map`` must raise the same messages as a MapInputError.
Valid inputs (demo-like volumes, fsaverage GIFTIs, the real ENIGMA tables)
must give no problem.
"""
import builtins
import gzip
import io
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from itx import atlas as atlases
from itx import mapfiles, parcellate
from itx.mapfiles import MapInputError, check_map_file

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITX_SHARED_DATA", ROOT.parent / "shared" / "data"))
ENIGMA = sorted((DATA / "enigma" / "summary_statistics").glob("*.csv"))
N5, N6 = 10242, 40962

# FSL's MNI152 2 mm grid (91 x 109 x 91): small files, real MNI coordinates
FSL2 = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
SHAPE2 = (91, 109, 91)


@pytest.fixture(scope="module")
def dk():
    return atlases.load_atlas("dk", "desikan_killiany")


# --- file makers ---------------------------------------------------------------

def field(shape=SHAPE2, affine=FSL2):
    """A smooth map (x + 2y - z, mm), 0 outside a brain-sized box."""
    xyz = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T)
    f = (xyz[:, 0] + 2 * xyz[:, 1] - xyz[:, 2]).reshape(shape).astype(np.float32)
    inside = (np.abs(xyz[:, 0]) < 70) & (xyz[:, 1] > -105) & (xyz[:, 1] < 70) & \
        (xyz[:, 2] > -50) & (xyz[:, 2] < 80)
    f[~inside.reshape(shape)] = 0
    return f


def nifti(path, data=None, affine=FSL2, **kw):
    img = nib.Nifti1Image(field() if data is None else data, affine, **kw)
    img.to_filename(path)
    return path


def gifti(path, values, intent=None):
    arr = nib.gifti.GiftiDataArray(np.asarray(values, np.float32),
                                   **({"intent": intent} if intent else {}))
    nib.save(nib.gifti.GiftiImage(darrays=[arr]), path)
    return path


def pair(tmp, left, right, names=("map_L.func.gii", "map_R.func.gii")):
    return [str(gifti(tmp / n, v)) for n, v in zip(names, (left, right))]


def rand(n, seed=0):
    return np.random.default_rng(seed).normal(size=n)


def text(path, body, encoding="utf-8"):
    Path(path).write_bytes(body.encode(encoding) if isinstance(body, str) else body)
    return path


DK_ROWS = ["L_bankssts", "L_caudalanteriorcingulate", "L_caudalmiddlefrontal", "L_cuneus",
           "L_entorhinal", "L_fusiform"]


def dk_table(path, cells, column="d_icv", sep="\t", regions=DK_ROWS):
    lines = [sep.join(["Structure", column])]
    lines += [sep.join([r, c]) for r, c in zip(regions, cells)]
    return text(path, "\n".join(lines) + "\n")


GOOD = ["0.12", "-0.05", "0.3", "0.01", "-0.2", "0.07"]


# --- bad NIfTI ---------------------------------------------------------------

def nii_truncated(tmp):
    p = nifti(tmp / "map.nii.gz")
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    return [p], "nifti", None


def nii_trailer_cut(tmp):
    # only the gzip trailer (CRC, length) missing: nibabel alone reads every voxel
    p = nifti(tmp / "map.nii.gz")
    p.write_bytes(p.read_bytes()[:-4])
    return [p], "nifti", None


def nii_corrupt_byte(tmp):
    p = nifti(tmp / "map.nii.gz")
    raw = bytearray(p.read_bytes())
    raw[-6] ^= 0xFF  # inside the stored CRC
    p.write_bytes(bytes(raw))
    return [p], "nifti", None


def nii_raw_truncated(tmp):
    p = nifti(tmp / "map.nii")
    p.write_bytes(p.read_bytes()[:100_000])
    return [p], "nifti", None


def nii_empty_file(tmp):
    return [text(tmp / "map.nii.gz", b"")], "nifti", None


def nii_4d(tmp):
    return [nifti(tmp / "series.nii.gz", np.stack([field()] * 3, axis=-1))], "nifti", None


def nii_inf(tmp):
    data = field()
    data[40, 50, 40] = np.inf
    data[41, 50, 40] = -np.inf
    return [nifti(tmp / "inf.nii.gz", data)], "nifti", None


def nii_zeros(tmp):
    return [nifti(tmp / "zeros.nii.gz", np.zeros(SHAPE2, np.float32))], "nifti", None


def nii_nan(tmp):
    return [nifti(tmp / "nan.nii.gz", np.full(SHAPE2, np.nan, np.float32))], "nifti", None


def nii_mask(tmp):
    return [nifti(tmp / "mask.nii.gz", (field() != 0).astype(np.float32))], "nifti", None


def nii_directory(tmp):
    d = tmp / "map.nii.gz"
    d.mkdir()
    return [d], "nifti", None


def nii_missing(tmp):
    return [tmp / "nowhere.nii.gz"], "nifti", None


def nii_is_table(tmp):
    return [dk_table(tmp / "map.nii.gz", GOOD)], "nifti", None


def nii_is_gifti(tmp):
    return [gifti(tmp / "lh.func.gii", rand(N5))], "nifti", None


def nii_gz_misnamed(tmp):
    p = nifti(tmp / "map.nii.gz")
    q = tmp / "map.nii"
    q.write_bytes(p.read_bytes())
    return [q], "nifti", None


def nii_plain_named_gz(tmp):
    p = nifti(tmp / "map.nii")
    q = tmp / "plain.nii.gz"
    q.write_bytes(p.read_bytes())
    return [q], "nifti", None


def nii_complex(tmp):
    return [nifti(tmp / "complex.nii.gz", field().astype(np.complex64))], "nifti", None


def nii_singular_affine(tmp):
    # nibabel refuses to write such an affine, so the header is edited
    raw = nib.Nifti1Image(field(), FSL2).to_bytes()
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    hdr["qform_code"] = 0
    hdr["srow_z"] = [0, 0, 0, -72]
    path = tmp / "flat.nii.gz"
    path.write_bytes(gzip.compress(hdr.binaryblock + raw[len(hdr.binaryblock):]))
    return [path], "nifti", None


# --- bad GIFTI ---------------------------------------------------------------

def gii_vertex_count(tmp):
    return pair(tmp, rand(12345), rand(12345, 1)), "gifti", None


def gii_mixed_density(tmp):
    return pair(tmp, rand(N5), rand(N6, 1)), "gifti", None


def gii_two_arrays(tmp):
    p = tmp / "two_L.func.gii"
    arrays = [nib.gifti.GiftiDataArray(rand(N5, i).astype(np.float32)) for i in range(2)]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), p)
    return [str(p), gifti(tmp / "two_R.func.gii", rand(N5, 3))], "gifti", None


def gii_mesh(tmp):
    p = tmp / "lh.pial.surf.gii"
    coords = nib.gifti.GiftiDataArray(rand(N5 * 3).reshape(N5, 3).astype(np.float32),
                                      intent="NIFTI_INTENT_POINTSET")
    faces = nib.gifti.GiftiDataArray(np.zeros((10, 3), np.int32), intent="NIFTI_INTENT_TRIANGLE")
    nib.save(nib.gifti.GiftiImage(darrays=[coords, faces]), p)
    return [str(p), gifti(tmp / "rh.func.gii", rand(N5))], "gifti", None


def gii_broken_xml(tmp):
    left, right = pair(tmp, rand(N5), rand(N5, 1))
    raw = Path(left).read_bytes()
    Path(left).write_bytes(raw[: len(raw) // 2])
    return [left, right], "gifti", None


def gii_inf(tmp):
    left = rand(N5)
    left[17] = np.inf
    return pair(tmp, left, rand(N5, 1)), "gifti", None


def gii_constant(tmp):
    return pair(tmp, np.full(N5, 2.5), np.full(N5, 2.5)), "gifti", None


def gii_all_nan(tmp):
    return pair(tmp, np.full(N5, np.nan), np.zeros(N5)), "gifti", None


def gii_one_file(tmp):
    return [gifti(tmp / "lh.func.gii", rand(N5))], "gifti", None


def gii_is_nifti(tmp):
    return [str(nifti(tmp / "lh.map.nii.gz")), gifti(tmp / "rh.func.gii", rand(N5))], "gifti", None


def gii_label(tmp):
    labels = np.arange(N5) % 30
    return [gifti(tmp / "lh.label.gii", labels, intent="NIFTI_INTENT_LABEL"),
            gifti(tmp / "rh.func.gii", rand(N5))], "gifti", None


def gii_same_file(tmp):
    p = gifti(tmp / "both.func.gii", rand(N5))
    return [p, p], "gifti", None


def gii_swapped(tmp):
    return pair(tmp, rand(N5), rand(N5, 1), names=("rh.thick.func.gii", "lh.thick.func.gii")), \
        "gifti", None


# --- bad tables ----------------------------------------------------------------

def tab_decimal_commas(tmp):
    return [dk_table(tmp / "enigma.tsv", [c.replace(".", ",") for c in GOOD])], "table", "d_icv"


def tab_decimal_commas_quoted_csv(tmp):
    rows = "".join(f'{r},"{c.replace(".", ",")}"\n' for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "enigma.csv", "Structure,d_icv\n" + rows)], "table", "d_icv"


def tab_decimal_commas_blank_column(tmp):
    # column left blank: the only column of numbers is still found and explained
    return [dk_table(tmp / "map.tsv", [c.replace(".", ",") for c in GOOD], column="thick")], \
        "table", None


def tab_semicolons(tmp):
    rows = "".join(f"{r};{c.replace('.', ',')}\n" for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "europe.csv", "Structure;d_icv\n" + rows)], "table", "d_icv"


def tab_unquoted_commas(tmp):
    rows = "".join(f"{r},{c.replace('.', ',')}\n" for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "split.csv", "Structure,d_icv\n" + rows)], "table", "d_icv"


def tab_text_cell(tmp):
    cells = list(GOOD)
    cells[2] = "n.a."
    return [dk_table(tmp / "t.tsv", cells)], "table", "d_icv"


def tab_missing_column(tmp):
    return [dk_table(tmp / "t.tsv", GOOD)], "table", "D_ICV"


def tab_text_column(tmp):
    lines = ["CorticalThickness,Structure,d_icv"] + [f"MDD_vs_CN,{r},{c}"
                                                   for r, c in zip(DK_ROWS, GOOD)]
    return [text(tmp / "enigma.csv", "\n".join(lines) + "\n")], "table", "CorticalThickness"


def tab_ambiguous(tmp):
    lines = ["Structure,d_icv,se_icv"] + [f"{r},{c},0.03" for r, c in zip(DK_ROWS, GOOD)]
    return [text(tmp / "enigma.csv", "\n".join(lines) + "\n")], "table", None


def tab_duplicate_region(tmp):
    return [dk_table(tmp / "t.tsv", GOOD, regions=DK_ROWS[:5] + ["l_BANKSSTS"])], "table", "d_icv"


def tab_header_only(tmp):
    return [text(tmp / "t.tsv", "region\tvalue\n")], "table", None


def tab_empty(tmp):
    return [text(tmp / "t.tsv", b"")], "table", None


def tab_blank_lines(tmp):
    return [text(tmp / "t.tsv", "\n \n\n")], "table", None


def tab_directory(tmp):
    (tmp / "maps.tsv").mkdir()
    return [tmp / "maps.tsv"], "table", None


def tab_is_nifti(tmp):
    p = nifti(tmp / "m.nii.gz")
    q = tmp / "map.tsv"
    q.write_bytes(p.read_bytes())
    return [q], "table", None


def tab_excel(tmp):
    xlsx = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256))
    return [text(tmp / "map.csv", xlsx)], "table", None


def tab_latin1(tmp):
    body = "region\tvalue\tnote\n" + "".join(f"{r}\t{c}\tépaisseur\n"
                                            for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "t.tsv", body, encoding="latin-1")], "table", "value"


def tab_utf16(tmp):
    body = "region\tvalue\n" + "".join(f"{r}\t{c}\n" for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "t.tsv", body, encoding="utf-16")], "table", None


def tab_inf(tmp):
    cells = list(GOOD)
    cells[1] = "inf"
    return [dk_table(tmp / "t.tsv", cells)], "table", "d_icv"


def tab_constant(tmp):
    return [dk_table(tmp / "t.tsv", ["0.5"] * 6)], "table", "d_icv"


def tab_too_few(tmp):
    return [dk_table(tmp / "t.tsv", ["0.5", "0.2", "", "", "", ""])], "table", "d_icv"


def tab_blank_column(tmp):
    return [dk_table(tmp / "t.tsv", [""] * 6)], "table", "d_icv"


def tab_no_region_column(tmp):
    body = "Region\tvalue\n" + "".join(f"{r}\t{c}\n" for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "t.tsv", body)], "table", None


def tab_tabs_in_csv(tmp):
    return [dk_table(tmp / "t.csv", GOOD, sep="\t")], "table", "d_icv"


def tab_ragged(tmp):
    body = "region,value\nL_bankssts,0.1\nL_cuneus,0.2,0.3\nL_fusiform,0.4\n"
    return [text(tmp / "t.csv", body)], "table", None


def tab_blank_region(tmp):
    body = "region\tvalue\n" + "".join(f"{r}\t{c}\n" for r, c in zip(DK_ROWS, GOOD)) + "\t0.9\n"
    return [text(tmp / "t.tsv", body)], "table", None


def tab_duplicate_header(tmp):
    body = "region\tvalue\tvalue\n" + "".join(f"{r}\t{c}\t1\n" for r, c in zip(DK_ROWS, GOOD))
    return [text(tmp / "t.tsv", body)], "table", None


def tab_thousands(tmp):
    cells = ["1,234.5", "2,001.0", "980.2", "1,100.7", "1,050.0", "999.9"]
    rows = "".join(f'{r},"{c}"\n' for r, c in zip(DK_ROWS, cells))
    return [text(tmp / "volumes.csv", "Structure,volume\n" + rows)], "table", "volume"


def tab_fractional_ids(tmp):
    body = "id\tvalue\n1.5\t0.1\n2\t0.2\n3\t0.3\n4\t0.4\n"
    return [text(tmp / "t.tsv", body)], "table", None


def tab_bad_gzip(tmp):
    p = tmp / "t.tsv.gz"
    raw = gzip.compress(("region\tvalue\n" + "L_bankssts\t0.1\n" * 200).encode())
    p.write_bytes(raw[: len(raw) // 2])
    return [p], "table", None


# (maker, pattern every message must match, words of the fix)
CASES = [
    (nii_truncated, r"map\.nii\.gz: is truncated or corrupt \(the compressed data ends early",
     "again"),
    (nii_trailer_cut, r"map\.nii\.gz: is truncated or corrupt", "again"),
    (nii_corrupt_byte, r"map\.nii\.gz: is truncated or corrupt \(gzip reports: CRC", "again"),
    (nii_raw_truncated, r"map\.nii: is truncated or corrupt \(its voxel data cannot be read: "
                        r"Expected \d+ bytes, got \d+ bytes", "again"),
    (nii_empty_file, r"map\.nii\.gz: is empty \(0 bytes\)", "again"),
    (nii_4d, r"series\.nii\.gz: expected a 3D volume, got shape \(91, 109, 91, 3\) \(3 volumes\)",
     "one map per file"),
    (nii_inf, r"inf\.nii\.gz: has 2 infinite voxel value\(s\) \(\+inf at voxel \(40, 50, 40\)\)",
     "set them to NaN"),
    (nii_zeros, r"zeros\.nii\.gz: has no voxel with a nonzero finite value", "export the map"),
    (nii_nan, r"nan\.nii\.gz: has no voxel with a nonzero finite value", "export the map"),
    (nii_mask, r"mask\.nii\.gz: every nonzero voxel holds the same value \(1\)", "vary"),
    (nii_directory, r"map\.nii\.gz: is a directory", "the file itself"),
    (nii_missing, r"nowhere\.nii\.gz: does not exist", "fix the 'path'"),
    (nii_is_table, r"map\.nii\.gz: is a text file \(a region table\?\)", "format to 'table'"),
    (nii_is_gifti, r"lh\.func\.gii: is a GIFTI surface file, not a NIfTI volume",
     "format to 'gifti'"),
    (nii_gz_misnamed, r"map\.nii: is a gzip-compressed NIfTI image but its name does not end",
     "rename it to '.nii.gz'"),
    (nii_plain_named_gz, r"plain\.nii\.gz: is an uncompressed NIfTI image but its name ends in "
                         r"'\.gz'", "rename it to '.nii'"),
    (nii_complex, r"complex\.nii\.gz: has voxel data type complex64", "float32"),
    (nii_singular_affine, r"flat\.nii\.gz: its affine .* is singular", "sform/qform"),
    (gii_vertex_count, r"map_L\.func\.gii: 12345 vertices is not an fsaverage mesh",
     "resample the map to fsaverage"),
    (gii_mixed_density, r"map_L\.func\.gii has 10242 vertices \(fsaverage5\) but "
                        r".*map_R\.func\.gii has 40962 \(fsaverage6\); both hemispheres must "
                        r"be on the same mesh",
     "resample one"),
    (gii_two_arrays, r"two_L\.func\.gii: 2 data arrays", "one map per file"),
    (gii_mesh, r"lh\.pial\.surf\.gii: is a surface mesh", ".func.gii/.shape.gii"),
    (gii_broken_xml, r"map_L\.func\.gii: is not a readable GIFTI file \(ExpatError",
     "export or download it again"),
    (gii_inf, r"map_L\.func\.gii: has 1 infinite value\(s\) \(\+inf at vertex 17\)",
     "set them to NaN"),
    (gii_constant, r"map_L\.func\.gii,.*map_R\.func\.gii: every nonzero vertex holds the same "
                   r"value \(2\.5\)", "vary"),
    (gii_all_nan, r"map_R\.func\.gii: no vertex has a nonzero finite value", "export the map"),
    (gii_one_file, r"lh\.func\.gii: surface maps are \(left, right\) GIFTI pairs, got 1",
     "'left.gii,right.gii'"),
    (gii_is_nifti, r"lh\.map\.nii\.gz: is a NIfTI volume, not a GIFTI", "format to 'nifti'"),
    (gii_label, r"lh\.label\.gii: is a label GIFTI", "as an atlas"),
    (gii_same_file, r"both\.func\.gii: is given for both hemispheres", "'left.gii,right.gii'"),
    (gii_swapped, r"rh\.thick\.func\.gii,.*lh\.thick\.func\.gii: the names say right hemisphere "
                  r"first", "left hemisphere's file first"),
    (tab_decimal_commas, r"enigma\.tsv: holds decimal commas \('0,12' in row 'L_bankssts', column "
                         r"'d_icv'; 6 of 6 cells\)", "decimal point, e.g. 0.12"),
    (tab_decimal_commas_quoted_csv, r"enigma\.csv: holds decimal commas \('0,12' in row "
                                    r"'L_bankssts', column 'd_icv'", "decimal point, e.g. 0.12"),
    (tab_decimal_commas_blank_column, r"map\.tsv: holds decimal commas \('0,12' in row "
                                      r"'L_bankssts', column 'thick'", "decimal point"),
    (tab_semicolons, r"europe\.csv: its header 'Structure;d_icv' is semicolon-separated but the "
                     r"file is read as comma-separated", "decimal points"),
    (tab_unquoted_commas, r"split\.csv: every data row has more fields than the header",
     "decimal point, e.g. 0.12"),
    (tab_text_cell, r"t\.tsv: column 'd_icv' has 1 cell\(s\) that are not numbers: 'n\.a\.' in "
                    r"row 'L_caudalmiddlefrontal'", "leave the cell blank"),
    (tab_missing_column, r"t\.tsv: no column 'D_ICV' \(columns: \['Structure', 'd_icv'\]\)",
     "fix the 'column' field of this map in the maps sheet (did you mean 'd_icv'?)"),
    (tab_text_column, r"enigma\.csv: column 'CorticalThickness' is not numeric \(no cell is a "
                      r"number, e\.g\. 'MDD_vs_CN' in row 'L_bankssts'\)",
     "numeric columns: ['d_icv']"),
    (tab_ambiguous, r"enigma\.csv: cannot tell which column holds the values \(numeric columns: "
                    r"\['d_icv', 'se_icv'\]\)", "set the 'column' field"),
    (tab_duplicate_region, r"t\.tsv: region\(s\) listed twice or more: 'L_bankssts' "
                           r"\(data rows 1, 6\)", "one row per region"),
    (tab_header_only, r"t\.tsv: has a header but no data rows", "add one row per region"),
    (tab_empty, r"t\.tsv: is empty", "header line"),
    (tab_blank_lines, r"t\.tsv: is empty", "header line"),
    (tab_directory, r"maps\.tsv: is a directory", "the file itself"),
    (tab_is_nifti, r"map\.tsv: is a NIfTI image, not a region table", "format to 'nifti'"),
    (tab_excel, r"map\.csv: is a zip archive \(an Excel \.xlsx", "export the sheet as CSV"),
    (tab_latin1, r"t\.tsv: is not UTF-8 text \(byte 0xe9 on line 2, 'é'", "save it as UTF-8"),
    (tab_utf16, r"t\.tsv: is UTF-16 text", "UTF-8"),
    (tab_inf, r"t\.tsv: column 'd_icv' holds infinite values \('inf' in row "
              r"'L_caudalanteriorcingulate'\)", "finite number"),
    (tab_constant, r"t\.tsv: column 'd_icv' holds the same value \(0\.5\) in every row",
     "check the 'column' field"),
    (tab_too_few, r"t\.tsv: column 'd_icv' has values in only 2 row\(s\)", "at least 3 regions"),
    (tab_blank_column, r"t\.tsv: column 'd_icv' has no values \(every cell is blank\)",
     "set the 'column' field of this map to the column holding the map"),
    (tab_no_region_column, r"t\.tsv: no region column \(columns: \['Region', 'value'\]\)",
     "rename 'Region' to 'region'"),
    (tab_tabs_in_csv, r"t\.csv: its header .* is tab-separated but the file is read as "
                      r"comma-separated", "rename it to .tsv"),
    (tab_ragged, r"t\.csv: line 3 has 3 fields but the header has 2", "quote such cells"),
    (tab_blank_region, r"t\.tsv: data row\(s\) 7 have no region in column 'region'",
     "fill them in"),
    (tab_duplicate_header, r"t\.tsv: its header names 'value' more than once", "its own name"),
    (tab_thousands, r"volumes\.csv: column 'volume' holds thousands separators "
                    r"\('1,234\.5' in row 'L_bankssts'\)", "e.g. 1234.5"),
    (tab_fractional_ids, r"t\.tsv: region column 'id' holds ids that are not whole numbers "
                         r"\(e\.g\. 1\.5\)", "integers"),
    (tab_bad_gzip, r"t\.tsv\.gz: is truncated or corrupt", "again"),
]


@pytest.mark.parametrize("make, pattern, fix", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_file_is_reported_with_its_fix(tmp_path, make, pattern, fix):
    paths, fmt, column = make(tmp_path)
    problems = check_map_file(paths, fmt, column=column)
    hits = [p for p in problems if re.search(pattern, p)]
    assert hits, f"no message matches {pattern!r}: {problems}"
    assert fix in hits[0], hits[0]
    # every message names a file of the map (the full path, as the sheet gives it)
    assert all(any(str(p) in msg for p in paths) for msg in problems), problems


@pytest.mark.parametrize("make, pattern, fix", CASES, ids=[c[0].__name__ for c in CASES])
def test_parcellation_raises_the_same_messages(dk, tmp_path, make, pattern, fix):
    paths, fmt, column = make(tmp_path)
    expected = check_map_file(paths, fmt, column=column)
    with pytest.raises(MapInputError) as err:
        parcellate.parcellate_map(paths if fmt == "gifti" else paths[0], fmt, dk, column=column)
    assert err.value.problems == expected
    assert re.search(pattern, str(err.value))


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    body = ("Structure\td_icv\nL_bankssts\t0,12\nL_cuneus\tinf\nL_cuneus\tn/d\n"
            "L_fusiform\t0.3\nL_insula\t0.1\n")
    problems = check_map_file(text(tmp_path / "t.tsv", body), "table", column="d_icv")
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    for words in ("listed twice", "decimal commas", "'n/d'", "infinite values"):
        assert words in joined
    with pytest.raises(MapInputError, match=r"^4 problems:\n  - .*t\.tsv: region"):
        mapfiles.read_map_table(tmp_path / "t.tsv", "d_icv")


def test_map_input_error_is_a_value_error():
    err = MapInputError(["a.nii: one", "a.nii: two"])
    assert isinstance(err, ValueError) and err.problems == ["a.nii: one", "a.nii: two"]
    assert str(MapInputError("a.nii: one")) == "a.nii: one"


def test_wrong_format_or_file_count():
    assert "unknown map format 'mgh'" in check_map_file("a.mgh", "mgh")[0]
    assert "a table map is one file, got 2" in check_map_file(["a.tsv", "b.tsv"], "table")[0]


def test_sheet_path_string_is_split_for_gifti(tmp_path):
    left, right = pair(tmp_path, rand(N5), rand(N5, 1))
    assert check_map_file(f"{left}, {right}", "gifti") == []


# --- valid inputs ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    from itx import demo

    folder = tmp_path_factory.mktemp("demo")
    return demo.write_demo_map(folder / "demo_map.nii.gz", folder / "demo_map.tsv", seed=0)


def test_demo_map_files_pass_and_parcellate(dk, demo_files):
    nii, tsv = demo_files
    assert check_map_file(nii, "nifti") == []
    assert check_map_file(tsv, "table", column="value") == []
    assert check_map_file(tsv, "table") == []
    vol = parcellate.parcellate_map(str(nii), "nifti", dk)
    tab = parcellate.parcellate_map(str(tsv), "table", dk, column="value")
    assert vol.notna().sum() == tab.notna().sum() == 83
    np.testing.assert_allclose(vol, tab, rtol=1e-6)


def valid_volumes(tmp):
    yield nifti(tmp / "fsl2.nii.gz")
    yield nifti(tmp / "plain.nii")
    yield nifti(tmp / "single.nii.gz", field()[..., None])  # 4D, one volume
    data = field()
    data[data == 0] = np.nan  # NaN background
    yield nifti(tmp / "nanbg.nii.gz", data)
    img = nib.Nifti1Image(field(), FSL2)
    img.set_data_dtype(np.int16)  # scaled integers, as many tools store maps
    img.to_filename(tmp / "int16.nii.gz")
    yield tmp / "int16.nii.gz"
    aff = np.diag([1.5, 1.5, 1.5, 1.0])
    aff[:3, 3] = [-96, -132, -78]
    shape = (129, 153, 129)
    yield nifti(tmp / "mm15.nii.gz", field(shape, aff), aff)


def test_valid_volumes_pass_and_parcellate(dk, tmp_path):
    for path in valid_volumes(tmp_path):
        assert check_map_file(path, "nifti") == [], path
        values = parcellate.parcellate_map(str(path), "nifti", dk)
        assert values.notna().sum() >= 60, path


@pytest.mark.parametrize("n", [N5, N6])
def test_valid_gifti_pairs_pass_and_parcellate(dk, tmp_path, n):
    left, right = rand(n), rand(n, 1)
    left[:200] = np.nan  # medial wall without data
    right[:200] = 0.0
    paths = pair(tmp_path, left, right)
    assert check_map_file(paths, "gifti") == []
    values = parcellate.parcellate_map(paths, "gifti", dk)
    assert values.notna().sum() == 68
    bids = pair(tmp_path, rand(n), rand(n, 1),
                names=("sub-01_hemi-L_thickness.shape.gii", "sub-01_hemi-R_thickness.shape.gii"))
    assert check_map_file(bids, "gifti") == []


VALID_TABLES = {
    "ids.csv": ("id,thickness\n34,1.0\n1,2.0\n2,2.5\n3,0.5\n", None),
    "bom_crlf.csv": ("\ufeffregion,value\r\nL_insula,1.5\r\nL_bankssts,-2e-1\r\nR_cuneus,3\r\n",
                     None),
    "blanks.tsv": ("region\tvalue\nL_insula\t1\nL_bankssts\t\nL_cuneus\tNA\nL_fusiform\tnan\n"
                   "R_cuneus\t2\nR_insula\t 3.5 \n", None),
    "enigma_subcortex.csv": ("SubcorticalVolume,Structure,d_icv\nX,Laccumb,-0.1\nX,Lamyg,0.2\n"
                             "X,LLatVent,\nX,Rthal,0.05\nX,RLatVent,n/a\n", "d_icv"),
    "trailing.csv": ("region,value,\nL_insula,1,\nL_bankssts,2,\nL_cuneus,3,\n,,\n,,\n", "value"),
    "rownames.csv": ("region,value\n1,L_insula,1\n2,L_bankssts,2\n3,L_cuneus,3\n", None),
}


def test_valid_tables_pass_and_parcellate(dk, tmp_path):
    for name, (body, column) in VALID_TABLES.items():
        path = text(tmp_path / name, body)
        assert check_map_file(path, "table", column=column) == [], name
        values = parcellate.parcellate_map(str(path), "table", dk, column=column)
        assert values.notna().sum() >= 3, name
    gz = tmp_path / "map.tsv.gz"
    gz.write_bytes(gzip.compress(b"region\tvalue\nL_insula\t1\nL_bankssts\t2\nL_cuneus\t4\n"))
    assert check_map_file(gz, "table") == []
    assert parcellate.parcellate_map(str(gz), "table", dk)["L_cuneus"] == 4


@pytest.mark.skipif(not ENIGMA, reason="../shared/data/enigma not available")
def test_real_enigma_tables_pass(dk):
    for path in ENIGMA:
        assert check_map_file(path, "table", column="d_icv") == [], path.name
        values = parcellate.parcellate_map(str(path), "table", dk, column="d_icv", sign=-1)
        assert values.notna().sum() >= 12, path.name
    # the blank 'column' rule: an ENIGMA table has several numeric columns
    assert "cannot tell which column" in check_map_file(ENIGMA[0], "table")[0]


# --- atlas problems: only parcellation sees them -----------------------------------

def test_table_regions_not_in_the_atlas(dk, tmp_path):
    path = dk_table(tmp_path / "schaefer.tsv", GOOD,
                    regions=[f"7Networks_LH_Vis_{i}" for i in range(1, 7)])
    assert check_map_file(path, "table", column="d_icv") == []
    with pytest.raises(MapInputError, match=r"schaefer\.tsv: 6 region\(s\) not in the atlas: "
                                            r"\['7Networks_LH_Vis_1'.*'atlas' column"):
        parcellate.parcellate_map(str(path), "table", dk, column="d_icv")


def test_table_aliases_of_one_region(dk, tmp_path):
    path = dk_table(tmp_path / "sub.csv", ["0.1", "0.2", "0.3"], sep=",",
                    regions=["Laccumb", "L_accumbensarea", "Rthal"])
    assert check_map_file(path, "table", column="d_icv") == []
    with pytest.raises(MapInputError, match=r"sub\.csv: rows \['Laccumb', 'L_accumbensarea'\] "
                                            r"name the same atlas region.*twice"):
        parcellate.parcellate_map(str(path), "table", dk, column="d_icv")


def test_volume_with_values_in_two_parcels_only(dk, tmp_path):
    img = nib.load(dk.volume)
    lab = np.asarray(img.dataobj).astype(int)
    data = np.full(lab.shape, np.nan, np.float32)
    rng = np.random.default_rng(3)
    for pid in (1, 2):
        data[lab == pid] = rng.normal(size=(lab == pid).sum())
    path = nifti(tmp_path / "two.nii.gz", data, img.affine)
    assert check_map_file(path, "nifti") == []
    with pytest.raises(MapInputError, match=r"two\.nii\.gz: after parcellation onto atlas 'dk', "
                                            r"only 2 of 83 regions have a value.*MNI152 space"):
        parcellate.parcellate_map(str(path), "nifti", dk)


def test_volume_constant_over_the_parcels(dk, tmp_path):
    img = nib.load(dk.volume)
    lab = np.asarray(img.dataobj).astype(int)
    data = np.random.default_rng(4).normal(size=lab.shape).astype(np.float32)
    data[lab > 0] = 0.7  # varies outside the brain, one value in every parcel
    path = nifti(tmp_path / "flat.nii.gz", data, img.affine)
    assert check_map_file(path, "nifti") == []
    with pytest.raises(MapInputError, match=r"flat\.nii\.gz: after parcellation onto atlas 'dk', "
                                            r"all 83 regions with a value have the same value "
                                            r"\(0\.7\)"):
        parcellate.parcellate_map(str(path), "nifti", dk)


def test_table_of_unmatched_ventricles_only(dk, tmp_path):
    path = dk_table(tmp_path / "vent.csv", ["0.1", "0.2", "0.3", "0.4"], sep=",",
                    regions=["LLatVent", "RLatVent", "Lthal", "Rthal"])
    # ventricle rows are skipped: two values left
    assert "values in only 2 row(s)" in check_map_file(path, "table", column="d_icv")[0]


# --- no side effects -----------------------------------------------------------------

def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else 0,
                                         p.stat().st_mtime_ns)
            for p in Path(folder).rglob("*")}


def test_check_map_file_writes_nothing(tmp_path, monkeypatch, demo_files):
    inputs, cwd = tmp_path / "inputs", tmp_path / "cwd"
    inputs.mkdir()
    cwd.mkdir()
    calls = []
    for make, _, _ in CASES:
        folder = inputs / make.__name__
        folder.mkdir()
        calls.append(make(folder))
    calls.append(([demo_files[0]], "nifti", None))
    calls.append(([demo_files[1]], "table", None))
    calls.append((pair(inputs, rand(N5), rand(N5, 1)), "gifti", None))
    before_inputs, before_demo = _snapshot(inputs), _snapshot(demo_files[0].parent)

    real_open = builtins.open
    writes = []

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(m in str(mode) for m in "wax+"):
            writes.append((file, mode))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(builtins, "open", guarded_open)
    for paths, fmt, column in calls:
        check_map_file(paths, fmt, column=column)
    monkeypatch.undo()
    assert writes == []
    assert _snapshot(inputs) == before_inputs
    assert _snapshot(demo_files[0].parent) == before_demo
    assert list(cwd.iterdir()) == []
