"""Problems of map files: the error every check raises, and the constants they share."""

from __future__ import annotations

#: Map formats the maps sheet accepts.
FORMATS = ("nifti", "gifti", "table")

#: Column names taken as the region column of a region table, in order.
REGION_COLUMNS = ("region", "Structure", "label", "name", "id")


#: Version of the checks: a cache of :func:`check_map_file` results (keyed by
#: file size and mtime) should include it, so that changed checks rerun.
CHECKS_VERSION = 1

#: Fewest regions with a value a map needs: a correlation over fewer is
#: meaningless (two points always fit a line), and nulls cannot be drawn.
MIN_REGIONS = 3

# examples quoted per problem: enough to see the pattern, short enough to read
_EXAMPLES = 3



class MapInputError(ValueError):
    """A map file cannot be used; the message names the file and the fix.

    Parameters
    ----------
    problems : str or list of str
        One sentence per problem.

    Attributes
    ----------
    problems : list of str
        Every problem found, in the order the checks ran.
    """

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(_join(self.problems))


def _exc(exc):
    """An exception as one line (nibabel's messages span several)."""
    return " ".join(str(exc).split())


def _join(problems):
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _raise_if(problems):
    # the same problem can be found twice (one file given for both hemispheres)
    unique = list(dict.fromkeys(problems))
    if unique:
        raise MapInputError(unique)
