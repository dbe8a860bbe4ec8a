"""Imaging transcriptomics: link brain maps to AHBA gene expression and cell types.

One module per workflow stage; every function takes explicit arguments and
never reads the Snakemake config, so each can be unit-tested on its own.

Modules
-------
fetch        download and verify AHBA donor archives (or take them from a mirror)
demo         generate an offline AHBA-format demo with a planted signal
atlas        built-in and user parcellations, region tables and scopes
expression   abagen-based probe filtering, sample matching and region x gene matrix
parcellate   bring a disease map (volume, surface or table) onto an atlas
nulls        spatial permutation (spin) nulls for cortical parcels
association  gene-map correlations with spatial-null p values
genesets     read gene-set collections (GMT, CSV) and match them to genes
enrichment   gene-set (cell-type) enrichment with ensemble and random-gene nulls
figures      report figures
"""

__version__ = "0.1.0"
