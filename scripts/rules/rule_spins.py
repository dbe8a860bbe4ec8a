"""Rule spins: map-independent resampling indices over the scope of one atlas."""
import dataclasses
import tempfile

from itx import atlas as atlases
from itx import nullmaps, nulls
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
if (scope["structure"] == "cortex").any():
    atlases.require_surface(atlas, f"spin nulls ({p.method}) of its cortical parcels")
with tempfile.TemporaryDirectory(prefix="itx_atlas_") as scratch:
    # spins rotate on nilearn's fsaverage5 sphere: a finer atlas is taken at the
    # nested fsaverage5 vertices (itx.atlas.fsaverage5_surface)
    if atlas.surface is not None:
        atlas5 = dataclasses.replace(atlas, density="fsaverage5",
                                     surface=atlases.fsaverage5_surface(atlas, scratch))
    else:
        atlas5 = atlas
    idx = nullmaps.scope_index(atlas5, scope, p.method, p.n_perm, p.seed)
nulls.save_spins(snakemake.output[0], idx, scope["region"].tolist(), p.method, p.seed)
