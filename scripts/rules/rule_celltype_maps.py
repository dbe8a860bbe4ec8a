"""Rule celltype_maps: regional abundance of each cell type of a collection, for one atlas."""
from itx import atlas as atlases
from itx import celltypes, figures, genesets
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
expression = read_tsv(snakemake.input.expression).set_index("region")
# z-scores over the regions with expression (regions without samples carry no information)
expression = expression.loc[expression.notna().all(axis=1)]
res = celltypes.celltype_maps(expression, genesets.read_gene_sets(snakemake.input.genesets),
                              snakemake.params.min_genes, aliases=aliases)
write_tsv(res.table.reset_index(), snakemake.output.table)
write_tsv(res.sets, snakemake.output.sets)
figures.plot_celltype_maps(res.table, snakemake.output.figure,
                           title=f"{snakemake.wildcards.geneset} ({snakemake.wildcards.atlas})")
# one brain per cell type: the same table drawn on the cortex (or in the volume)
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas)
by_id = res.table.rename(index=dict(zip(atlas.info["region"], atlas.info["id"])))
title = f"{snakemake.wildcards.geneset}: mean marker z ({snakemake.wildcards.atlas})"
if atlas.surface is not None:
    figures.plot_region_maps_grid(by_id, atlases.fsaverage5_surface(atlas), snakemake.output.brain,
                                  title=title)
else:
    figures.plot_volume_maps_grid(by_id, atlas.volume, snakemake.output.brain, title=title)
