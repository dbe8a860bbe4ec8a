"""Imaging transcriptomics: link brain maps to AHBA gene expression and cell types.

The library of the Snakemake workflow: every function takes explicit
arguments and never reads the Snakemake config, so each can be unit-tested
on its own. Rule scripts (``scripts/rules/``) call one function each.

Modules, in the order of the workflow's stages
----------------------------------------------
Inputs and downloads
    catalog      what the workflow fetches and under which names (constants only)
    download     the one download client: retries, resume, locks, checksums, mirrors
    fetch        AHBA donor archives: download, verify, unpack
    schaefer     fetch the Schaefer 2018 atlases and write a ready atlas folder
    cache        parse each AHBA donor's CSVs once into a binary cache
    demo         offline AHBA-format demo with a planted signal (demo_* parts)
Atlases and maps
    atlas        built-in and user parcellations, region tables, scopes
    regions      region names from other sources matched to an atlas
    mapfiles     checks and readers of map files (volumes, surfaces, tables)
    parcellate   bring a disease map onto an atlas
Expression
    expression   abagen: probe filtering and selection, region x gene matrix
    compat       abagen 0.1.3 and brainsmash on the current stack
Spatial nulls
    nullmodels   the null-model registry: every family declared once
    nullfiles    one file format for everything the null stage writes
    nullmaps     null maps of one map over the analysis scope
    nulls        spins of parcel centroids (neuromaps' methods), spin files
    vertexspins  spins of every sphere vertex: baum, cornblath, vertex-level maps
    distances    parcel distance matrices (geodesic, Euclidean)
    surrogates   variogram (Burt 2020) and Moran surrogates, within-group permutations
Statistics
    coverage     which regions enter the tests, and why not
    analysis     align expression, map and nulls; test genes and gene sets
    association  gene-map correlations with spatial-null p values
    tailp        p values beyond the permutation floor (generalised Pareto tail)
    pls          partial least squares of a map on all genes
    compare      map-to-map comparison with the same nulls
    genesets     gene-set collections: built-ins, readers, gene matching
    enrichment   gene-set (cell-type) enrichment with ensemble and random-gene nulls
    celltypes    regional cell-type maps and their comparison with brain maps
    multivariate joint models of a map on several maps (regression, dominance
                 analysis) and genes' partial correlations, spatial-null p values
    celltype_models  a map's joint models on one collection's cell-type maps
    partial      genes' partial correlations given the covariate maps of the sheet
    dense        dense whole-brain cell-type maps (dense_* parts)
Robustness
    sensitivity  one map under several nulls, side by side (sensitivity_page: words, figure)
    calibration  the calibration study's false-positive rates for one atlas
    robustness   leave-one-donor-out and single-donor re-tests of genes and gene sets
Report and run records
    figures      report figures (one figure helper: new_figure, save_png)
    report       package versions and the methods text
    enrichment_page  the page of top gene sets per collection (htmlpage: shared pieces)
    provenance   what made a results folder
    preflight    checks of a study's config and maps sheet before any job
    checks       argument checks shared by every stage (seeds, counts)
    tables       tidy TSV input/output, atomic writes
"""

__version__ = "0.1.0"
