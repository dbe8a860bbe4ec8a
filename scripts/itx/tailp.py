"""p values beyond the permutation floor: generalised Pareto tail approximation.

With ``N`` null statistics a permutation p value cannot go below
``1 / (N + 1)``, so with thousands of tests the Benjamini-Hochberg q values
cannot become small however strong the effect. Following Knijnenburg et al.
(2009) and Winkler et al. (2016), when few null statistics exceed the
observed one the tail of the null distribution is modelled by a generalised
Pareto distribution (GPD), which by the Pickands-Balkema-de Haan theorem is
the limiting distribution of exceedances over a high threshold, and the p
value is read off the fitted tail.

Method, per test (a gene, a gene set, a cell type):

1. The statistic ``t`` (``|t|`` for two-sided tests, ``t`` for
   ``"greater"``, ``-t`` for ``"less"``, as the permutation p values of
   :func:`itx.association.correlate_genes` and
   :func:`itx.enrichment.spatial_enrichment` count them) and its ``N`` valid
   null values. ``M`` = number of null values at least as extreme
   (``>= t_obs - atol``).
2. ``M >= min_exceedances`` (10, Knijnenburg's rule): the permutation p
   ``(1 + M) / (1 + N)`` is accurate enough and is returned unchanged.
3. Otherwise the ``N_exc`` largest null values, with ``N_exc =
   min(n_tail, N // 4)`` (250 by default), are taken as exceedances of the
   threshold ``u`` = the ``(N_exc + 1)``-th largest null value; a GPD is
   fitted to ``x - u`` by probability-weighted moments (:func:`gpd_fit_pwm`,
   Hosking & Wallis 1987: closed form, vectorised over tests), and
   ``p = (N_exc / N) * (1 - F_GPD(t_obs - u))``.
4. The fit is checked with the Anderson-Darling statistic
   (:func:`anderson_darling_gpd`). Its critical values depend on the shape
   and on the estimator; the tables of Choulakian & Stephens (2001) are for
   maximum-likelihood fits, so for the PWM fits used here they are computed
   by a parametric bootstrap (:func:`ad_critical_value`: GPD samples of the
   same size, refitted by PWM, on a grid of shapes; fixed seed, so p values
   are reproducible). A rejected fit lowers ``N_exc`` by ``step`` (10) and
   refits, as Knijnenburg et al. do; when no ``N_exc >= min_tail`` gives an
   accepted fit, the permutation p is kept (method ``"no_fit"``).
5. A fitted shape ``xi < 0`` bounds the tail at ``u + sigma / |xi|``. An
   observed statistic at or beyond that end point has fitted p 0, which no
   finite number of nulls can support. Such a test gets the p of the
   exponential tail (``xi = 0``, the lightest unbounded member of the GPD
   family) with the same mean excess, ``(N_exc / N) exp(-(t_obs - u) /
   mean(x - u))``, capped at the permutation p (method ``"gpd_bound"``).
   This is larger than the bounded fit's p (0) and is what the fitted
   exceedances give if the tail is not bounded after all; the cap keeps it
   from exceeding what the permutations alone show. The p of such a test is
   thus conservative with respect to the fit, but not monotone in ``t_obs``
   across the end point (just below it the bounded fit's p tends to 0).
6. Optionally (``min_shape``, default off) fits with ``xi`` below a floor
   are replaced by the GPD of that shape with the same mean excess;
   ``min_shape=0`` extrapolates bounded fits as exponential tails.

Calibration (``scripts/tools/validate_tailp.py``; docs/statistics.md). On
independent smooth fields x real genes with ``alexander_bloch`` spins: with
10,000 nulls the tail p rejects 0.081% of null tests at alpha = 0.001
(permutation p: 0.097%) and 0.0010% at 1e-4 (permutation p: 0.0008%); with
1,000 nulls (threshold at the 75th percentile, fitted shapes near -0.33) it
rejects 1.0% at 0.01 (permutation 1.1%) but 0.17% at 0.001 (permutation
0.07%). Against 1,000,000 brute-force nulls, single estimates from 10,000
nulls scatter widely (a factor of 2-3 typically, orders of magnitude when a
fitted end point lies just beyond ``t_obs``); their median over independent
null sets is close to the brute-force p. ``min_shape=0`` is far too
conservative (0.0002% at 0.001 with 1,000 nulls). Tail p values are
estimates: trust their order of magnitude, not their digits, and use
10,000 nulls rather than 1,000.

Every p value is at least the smallest positive float, never 0.

References
----------
Hosking JRM, Wallis JR (1987). Parameter and quantile estimation for the
generalized Pareto distribution. Technometrics 29:339-349.
Choulakian V, Stephens MA (2001). Goodness-of-fit tests for the generalized
Pareto distribution. Technometrics 43:478-484.
Knijnenburg TA, Wessels LFA, Reinders MJT, Shmulevich I (2009). Fewer
permutations, more accurate P-values. Bioinformatics 25:i161-i168.
Winkler AM, Ridgway GR, Douaud G, Nichols TE, Smith SM (2016). Faster
permutation inference in brain imaging. NeuroImage 141:502-516.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "METHODS",
    "TAILS",
    "TailPValues",
    "TopTail",
    "ad_critical_value",
    "anderson_darling_gpd",
    "check_tail",
    "gpd_cdf",
    "gpd_fit_pwm",
    "gpd_pvalues",
    "gpd_sf",
    "tail_size",
    "tail_pvalues",
    "top_values",
]

#: Accepted values of the ``tail`` option of the table functions.
TAILS = ("none", "gpd")
#: Labels of :attr:`TailPValues.method`: which p a test got.
METHODS = ("permutation", "gpd", "gpd_bound", "no_fit", "na")
_ALTERNATIVES = ("two-sided", "greater", "less")

#: Shapes at which the Anderson-Darling critical values are simulated. PWM is
#: recommended for -1/2 < xi < 1/2 (Hosking & Wallis 1987); below -1/2 its
#: fitted end point often falls short of the largest exceedance, A^2 becomes
#: huge and the simulated critical values would accept almost any fit, so
#: estimates below -1/2 get the (stricter) critical value of -1/2.
_AD_SHAPES = np.array([-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.45])
#: Bootstrap samples per shape for the critical values.
_AD_REPS = 2000
#: Seed of the critical-value bootstrap (fixed: p values must be reproducible).
_AD_SEED = 20090601
_TINY = np.finfo(np.float64).tiny


def check_tail(tail: str) -> str:
    """Validate the ``tail`` option of the table functions.

    Parameters
    ----------
    tail : {"none", "gpd"}

    Returns
    -------
    str
        `tail` unchanged.
    """
    if tail not in TAILS:
        raise ValueError(f"unknown tail {tail!r}; expected one of {TAILS} "
                         "(config key nulls.tail)")
    return tail


# ---------------------------------------------------------------------------
# the distribution
# ---------------------------------------------------------------------------


def gpd_sf(x, shape, scale):
    """Survival function ``1 - F(x)`` of the GPD with location 0.

    Parameters
    ----------
    x : array_like
        Excess over the threshold (broadcast with `shape`, `scale`).
    shape : array_like
        ``xi`` (scipy's ``c`` of :data:`scipy.stats.genpareto`).
    scale : array_like
        ``sigma > 0``.

    Returns
    -------
    numpy.ndarray
        ``(1 + xi x / sigma) ** (-1 / xi)`` (``exp(-x / sigma)`` for
        ``xi = 0``); 1 for ``x <= 0``; 0 beyond the end point ``sigma / |xi|``
        of a bounded tail (``xi < 0``). Equals
        ``scipy.stats.genpareto.sf(x, xi, scale=sigma)``.
    """
    x, xi, s = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, shape, scale)))
    z = np.maximum(x, 0.0) / s
    small = np.abs(xi) < 1e-9
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        arg = 1.0 + xi * z
        # log1p keeps precision for small xi z; arg <= 0 is beyond the end point
        out = np.where(arg > 0, np.exp(-np.log1p(xi * z) / np.where(small, 1.0, xi)), 0.0)
        out = np.where(small, np.exp(-z), out)
    return out


def gpd_cdf(x, shape, scale):
    """Distribution function ``F(x) = 1 - gpd_sf(x)`` of the GPD with location 0."""
    return 1.0 - gpd_sf(x, shape, scale)


def gpd_fit_pwm(excess, axis: int = -1):
    """Fit GPDs by probability-weighted moments, one per slice along `axis`.

    Parameters
    ----------
    excess : array_like
        Non-negative exceedances over the threshold, any order.
    axis : int
        Axis holding the sample of one test.

    Returns
    -------
    shape, scale : numpy.ndarray
        ``xi`` and ``sigma`` per test (scipy's ``c`` and ``scale``); NaN where
        the sample is degenerate (all zero, all equal, or ``a0 <= 2 a1``).

    Notes
    -----
    Hosking & Wallis (1987): with ``a0 = mean(x)`` and the unbiased estimate
    ``a1 = 1/n sum_j x_(j) (n - j) / (n - 1)`` (``x_(j)`` ascending) of
    ``E[x (1 - F(x))]``, their ``k = a0 / (a0 - 2 a1) - 2`` and
    ``sigma = 2 a0 a1 / (a0 - 2 a1)``; here ``xi = -k``. The estimator
    exists for ``xi < 1`` and is recommended for ``xi < 1/2``; it is a
    closed form, so thousands of tests are fitted in one pass.
    """
    x = np.sort(np.moveaxis(np.asarray(excess, dtype=np.float64), axis, -1), axis=-1)
    n = x.shape[-1]
    if n < 2:
        raise ValueError(f"need at least 2 exceedances per test to fit a GPD, got {n}")
    w = (n - 1.0 - np.arange(n)) / (n - 1.0)  # (n - j) / (n - 1) for j = 1..n
    a0 = x.mean(axis=-1)
    # an elementwise sum, not a matrix product: each test's fit is then bitwise the
    # same whatever other tests are fitted with it
    a1 = (x * w).sum(axis=-1) / n
    d = a0 - 2.0 * a1
    # a sample of equal values has d = 0 up to rounding (xi -> -inf): no fit
    ok = (a0 > 0) & (d > 1e-9 * a0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = a0 / d - 2.0
        sigma = 2.0 * a0 * a1 / d
    return np.where(ok, -k, np.nan), np.where(ok, sigma, np.nan)


def anderson_darling_gpd(excess, shape, scale, axis: int = -1) -> np.ndarray:
    """Anderson-Darling statistic ``A^2`` of samples against fitted GPDs.

    Parameters
    ----------
    excess : array_like
        Exceedances per test along `axis`.
    shape, scale : array_like
        Fitted parameters, one per test (shape of `excess` without `axis`).
    axis : int
        Axis holding the sample.

    Returns
    -------
    numpy.ndarray
        ``A^2 = -n - 1/n sum_i (2i - 1) [ln z_(i) + ln(1 - z_(n+1-i))]`` with
        ``z = F(x)``; values of ``z`` are clipped to ``[1e-12, 1 - 1e-12]``
        so a point beyond a fitted end point gives a large (finite) ``A^2``.
        NaN where the parameters are NaN.
    """
    x = np.sort(np.moveaxis(np.asarray(excess, dtype=np.float64), axis, -1), axis=-1)
    n = x.shape[-1]
    xi = np.asarray(shape, dtype=np.float64)[..., None]
    s = np.asarray(scale, dtype=np.float64)[..., None]
    z = np.clip(gpd_cdf(x, xi, s), 1e-12, 1.0 - 1e-12)
    i = np.arange(1, n + 1)
    terms = (2 * i - 1) * (np.log(z) + np.log1p(-z[..., ::-1]))
    a2 = -n - terms.sum(axis=-1) / n
    return np.where(np.isfinite(xi[..., 0]) & np.isfinite(s[..., 0]), a2, np.nan)


@lru_cache(maxsize=64)
def _ad_table(n: int, alpha: float) -> np.ndarray:
    """Upper-`alpha` quantile of A^2 of PWM-fitted GPD samples of size n, per grid shape."""
    rng = np.random.default_rng([_AD_SEED, n])
    crit = np.empty(_AD_SHAPES.size)
    for j, xi in enumerate(_AD_SHAPES):  # a dozen shapes; each is vectorised over samples
        u = rng.random((_AD_REPS, n))
        x = np.expm1(-xi * np.log1p(-u)) / xi if xi != 0 else -np.log1p(-u)
        xi_hat, s_hat = gpd_fit_pwm(x)
        a2 = anderson_darling_gpd(x, xi_hat, s_hat)
        # a degenerate fit counts as a rejection in use, so as +inf here
        crit[j] = np.quantile(np.where(np.isfinite(a2), a2, np.inf), 1.0 - alpha)
    return crit


def ad_critical_value(n: int, shape, alpha: float = 0.05) -> np.ndarray:
    """Critical value of :func:`anderson_darling_gpd` for PWM-fitted samples.

    Parameters
    ----------
    n : int
        Sample size (number of exceedances).
    shape : array_like
        Estimated shapes at which the critical value is wanted.
    alpha : float
        Level of the goodness-of-fit test.

    Returns
    -------
    numpy.ndarray
        The ``1 - alpha`` quantile of ``A^2`` when the sample is a GPD of that
        shape and the parameters are estimated by PWM, linearly interpolated
        between the simulated shapes (:data:`_AD_SHAPES`, clamped at the
        ends). Simulated once per ``(n, alpha)`` with a fixed seed
        (2,000 samples per shape, about 0.1 s for n = 250) and cached.

    Notes
    -----
    ``A^2`` with estimated parameters depends on the true shape (not on the
    scale, which PWM estimates equivariantly), as in Choulakian & Stephens
    (2001), whose tables are for maximum-likelihood estimates; simulating
    for the estimator actually used keeps the test at its nominal level.
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"need n >= 2, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return np.interp(np.asarray(shape, dtype=np.float64), _AD_SHAPES, _ad_table(n, float(alpha)))


# ---------------------------------------------------------------------------
# keeping the top of the null distribution
# ---------------------------------------------------------------------------


def tail_size(n_null, n_tail: int = 250):
    """Initial number of exceedances ``N_exc = min(n_tail, n_null // 4)``.

    A quarter of the nulls at most, so the threshold stays in the upper
    quartile however few nulls there are (Knijnenburg et al. 2009 use 250
    with 10,000 permutations and lower it for fewer).
    """
    return np.minimum(int(n_tail), np.asarray(n_null, dtype=np.int64) // 4)


def top_values(stat, k: int, axis: int = 0) -> np.ndarray:
    """The `k` largest values of each test, in descending order.

    Parameters
    ----------
    stat : array_like
        Null statistics, tests along the other axis; NaN = no value.
    k : int
        How many to keep.
    axis : int
        Axis of the null draws.

    Returns
    -------
    numpy.ndarray, shape (n_tests, k)
        Descending; padded with ``-inf`` when a test has fewer than `k`
        values.
    """
    v = np.moveaxis(np.asarray(stat, dtype=np.float64), axis, -1)
    v = np.where(np.isnan(v), -np.inf, v).reshape(-1, v.shape[-1])
    keep = TopTail(v.shape[0], k)
    keep.add(v)
    return keep.sorted()


class TopTail:
    """Streaming store of the `k` largest null values of each test.

    Null statistics arrive in blocks (as in
    :func:`itx.association.correlate_genes`), so the whole
    ``n_tests x n_null`` matrix is never held: memory is ``n_tests x k``.

    Parameters
    ----------
    n_tests : int
    k : int
        Values kept per test (``N_exc + 1`` for a GPD tail of ``N_exc``).
    """

    def __init__(self, n_tests: int, k: int):
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        self.k = int(k)
        self.top = np.full((int(n_tests), self.k), -np.inf)
        # rows that have received values; np.partition is slow on the many
        # equal -inf of an empty row, so a row's first block skips them
        self._seen = np.zeros(int(n_tests), dtype=bool)

    def add(self, values, rows=None) -> None:
        """Merge a block of null values.

        Parameters
        ----------
        values : numpy.ndarray, shape (n_tests, b)
            Null statistics of ``b`` null draws (``-inf`` = no value).
        rows : numpy.ndarray of bool, shape (n_tests,), optional
            Tests the block gives values for (others are left unchanged).
        """
        values = np.asarray(values, dtype=np.float64)
        rows = np.ones(self.top.shape[0], dtype=bool) if rows is None else np.asarray(rows)
        first = rows & ~self._seen
        again = rows & self._seen
        if first.any():
            self.top[first] = self._largest(values[first])
        if again.any():
            cat = np.concatenate([self.top[again], values[again]], axis=1)
            self.top[again] = self._largest(cat)
        self._seen |= rows

    def _largest(self, cat: np.ndarray) -> np.ndarray:
        k = self.k
        if cat.shape[1] <= k:
            return np.pad(cat, ((0, 0), (0, k - cat.shape[1])), constant_values=-np.inf)
        # the k largest, unordered: partitioning is O(n), sorting is left to the end
        return np.partition(cat, cat.shape[1] - k, axis=1)[:, cat.shape[1] - k:]

    def sorted(self) -> np.ndarray:
        """The kept values, descending per test."""
        return -np.sort(-self.top, axis=1)


# ---------------------------------------------------------------------------
# p values
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TailPValues:
    """p values with a GPD tail where permutations run out.

    Attributes
    ----------
    p : numpy.ndarray
        The p value of each test: the permutation p where ``n_exceed >=
        min_exceedances`` or no fit was accepted, else the GPD tail p.
    method : numpy.ndarray of str
        Per test, one of :data:`METHODS`: ``"permutation"`` (enough
        exceedances), ``"gpd"`` (accepted GPD fit), ``"gpd_bound"`` (observed
        statistic beyond the end point of a bounded fitted tail; see the
        module docstring), ``"no_fit"`` (no accepted fit: permutation p kept),
        ``"na"`` (no p: undefined statistic or no null).
    n_exceed : numpy.ndarray of int
        ``M``, null values at least as extreme as the observed one.
    n_null : numpy.ndarray of int
        ``N``, valid null values.
    n_tail : numpy.ndarray of int
        ``N_exc`` of the accepted fit (0 where none).
    shape, scale, threshold : numpy.ndarray
        The accepted fit (NaN where none).
    """

    p: np.ndarray
    method: np.ndarray
    n_exceed: np.ndarray
    n_null: np.ndarray
    n_tail: np.ndarray
    shape: np.ndarray
    scale: np.ndarray
    threshold: np.ndarray

    @property
    def used_gpd(self) -> np.ndarray:
        """True where the p comes from a fitted tail (``gpd`` or ``gpd_bound``)."""
        return np.isin(self.method, ("gpd", "gpd_bound"))


def _check_params(min_exceedances, n_tail, step, min_tail, fit_alpha):
    for name, v in (("min_exceedances", min_exceedances), ("n_tail", n_tail),
                    ("step", step), ("min_tail", min_tail)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if min_tail < 2:
        raise ValueError(f"min_tail must be >= 2 to fit two parameters, got {min_tail}")
    if not 0 < fit_alpha < 1:
        raise ValueError(f"fit_alpha must be in (0, 1), got {fit_alpha!r}")


def gpd_pvalues(observed, top, n_null, n_exceed, perm_p, *, min_exceedances: int = 10,
                n_tail: int = 250, step: int = 10, min_tail: int = 20,
                fit_alpha: float = 0.05, min_shape=None) -> TailPValues:
    """Tail p values from the largest null values of each test.

    The core of :func:`tail_pvalues`, for callers that keep only the top of
    the null distribution (:class:`TopTail`).

    Parameters
    ----------
    observed : array_like, shape (n_tests,)
        Observed statistics, oriented so that large = extreme (``|r|`` for a
        two-sided test).
    top : array_like, shape (n_tests, k)
        The ``k`` largest null statistics of each test, descending, padded
        with ``-inf``; ``k`` must be at least ``min(n_tail, max(n_null) // 4)
        + 1``.
    n_null : array_like of int, shape (n_tests,)
        ``N``, valid null values per test.
    n_exceed : array_like of int, shape (n_tests,)
        ``M``, null values at least as extreme as the observed one (counted
        with the caller's tie tolerance).
    perm_p : array_like, shape (n_tests,)
        The permutation p values (returned unchanged where ``M >=
        min_exceedances`` or no fit is accepted); NaN = no test.
    min_exceedances : int
        ``M`` from which the permutation p is used (10, Knijnenburg et al.).
    n_tail : int
        Largest ``N_exc``; each test starts at ``min(n_tail, N // 4)``.
    step : int
        Decrease of ``N_exc`` after a rejected fit.
    min_tail : int
        Smallest ``N_exc`` tried.
    fit_alpha : float
        Level of the Anderson-Darling goodness-of-fit test.
    min_shape : float or None
        Smallest shape used to extrapolate. An accepted fit with a smaller
        ``xi`` is replaced by the GPD of shape ``min_shape`` with the same
        mean excess (moment estimate ``sigma = mean(x - u) (1 - min_shape)``;
        for ``min_shape = 0`` the exponential tail, whose maximum-likelihood
        scale is the mean excess). ``None`` uses the fitted shape as it is.

    Returns
    -------
    TailPValues
    """
    _check_params(min_exceedances, n_tail, step, min_tail, fit_alpha)
    t = np.asarray(observed, dtype=np.float64)
    top = np.asarray(top, dtype=np.float64)
    n_null = np.asarray(n_null, dtype=np.int64)
    m = np.asarray(n_exceed, dtype=np.int64)
    perm_p = np.asarray(perm_p, dtype=np.float64)
    n_tests = t.shape[0]
    if top.ndim != 2 or top.shape[0] != n_tests:
        raise ValueError(f"top must have shape (n_tests={n_tests}, k), got {top.shape}")
    for name, a in (("n_null", n_null), ("n_exceed", m), ("perm_p", perm_p)):
        if a.shape != (n_tests,):
            raise ValueError(f"{name} must have shape ({n_tests},), got {a.shape}")

    p = perm_p.copy()
    method = np.full(n_tests, "permutation", dtype=object)
    n_used = np.zeros(n_tests, dtype=np.int64)
    shape = np.full(n_tests, np.nan)
    scale = np.full(n_tests, np.nan)
    thr = np.full(n_tests, np.nan)
    defined = np.isfinite(perm_p) & np.isfinite(t) & (n_null > 0)
    method[~defined] = "na"
    start = tail_size(n_null, n_tail)
    need = defined & (m < min_exceedances)
    method[need] = "no_fit"
    cur = np.where(need & (start >= min_tail), start, 0)
    if cur.max(initial=0) + 1 > top.shape[1]:
        raise ValueError(f"top holds {top.shape[1]} values per test; the fit needs "
                         f"{int(cur.max()) + 1} (n_tail + 1)")
    # step-down loop over N_exc values (a few dozen at most), vectorised over tests
    while True:
        pending = cur >= min_tail
        if not pending.any():
            break
        for n_exc in np.unique(cur[pending]):
            idx = np.flatnonzero(pending & (cur == n_exc))
            u = top[idx, n_exc]
            x = top[idx, :n_exc] - u[:, None]
            xi, sigma = gpd_fit_pwm(x)
            a2 = anderson_darling_gpd(x, xi, sigma)
            ok = np.isfinite(a2) & (a2 <= ad_critical_value(int(n_exc), xi, fit_alpha))
            acc = idx[ok]
            cur[idx[~ok]] -= step
            cur[acc] = 0
            if not acc.size:
                continue
            xi, sigma, u, x = xi[ok], sigma[ok], u[ok], x[ok]
            if min_shape is not None:
                low = xi < min_shape
                xi = np.where(low, min_shape, xi)
                sigma = np.where(low, x.mean(axis=1) * (1.0 - min_shape), sigma)
            frac = n_exc / n_null[acc]
            excess = t[acc] - u
            pg = frac * gpd_sf(excess, xi, sigma)
            bound = pg <= 0
            if bound.any():
                mean_excess = x[bound].mean(axis=1)
                pe = frac[bound] * np.exp(-excess[bound] / mean_excess)
                pg[bound] = np.minimum(pe, perm_p[acc][bound])
            p[acc] = np.maximum(pg, _TINY)
            method[acc] = np.where(bound, "gpd_bound", "gpd")
            n_used[acc] = n_exc
            shape[acc], scale[acc], thr[acc] = xi, sigma, u
    return TailPValues(p=p, method=method.astype(str), n_exceed=m, n_null=n_null,
                       n_tail=n_used, shape=shape, scale=scale, threshold=thr)


def tail_pvalues(observed, nulls, alternative: str = "two-sided", *, atol: float = 1e-9,
                 min_exceedances: int = 10, n_tail: int = 250, step: int = 10,
                 min_tail: int = 20, fit_alpha: float = 0.05, min_shape=None) -> TailPValues:
    """Permutation p values, with a GPD tail where few nulls are as extreme.

    Parameters
    ----------
    observed : array_like, shape (n_tests,)
        Observed statistics (e.g. set scores).
    nulls : array_like, shape (n_null, n_tests)
        Null statistics, one row per null draw; NaN = no value (left out).
    alternative : {"two-sided", "greater", "less"}
        ``"two-sided"`` compares ``|null| >= |obs| - atol`` (nulls centred on
        zero, as spin nulls are), ``"greater"`` ``null >= obs - atol``,
        ``"less"`` ``null <= obs + atol``: the counts of
        :func:`itx.enrichment.spatial_enrichment`, whose p values are
        returned unchanged where the permutation p is kept.
    atol : float
        Tie tolerance of the counts.
    min_exceedances, n_tail, step, min_tail, fit_alpha, min_shape
        See :func:`gpd_pvalues`.

    Returns
    -------
    TailPValues
        ``p`` equals the permutation p ``(1 + M) / (1 + N)`` wherever
        ``method`` is ``"permutation"`` or ``"no_fit"``; NaN where the
        observed value is NaN or no null value exists.
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of {_ALTERNATIVES}")
    obs = np.asarray(observed, dtype=np.float64)
    null = np.asarray(nulls, dtype=np.float64)
    if obs.ndim != 1:
        raise ValueError(f"observed must be 1-D (n_tests,), got shape {obs.shape}")
    if null.ndim != 2 or null.shape[1] != obs.shape[0]:
        raise ValueError(f"nulls must have shape (n_null, n_tests={obs.shape[0]}), "
                         f"got {null.shape}")
    if alternative == "two-sided":
        t, s = np.abs(obs), np.abs(null)
    elif alternative == "greater":
        t, s = obs, null
    else:  # the lower tail is the upper tail of the negated statistic
        t, s = -obs, -null
    valid = ~np.isnan(s)
    n_null = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        m = ((s >= t - float(atol)) & valid).sum(axis=0)
    # the same expression as itx.enrichment._tail_p, so kept p values are identical
    perm = (1.0 + m) / (1.0 + n_null)
    perm = np.where(np.isnan(obs) | (n_null == 0), np.nan, perm)
    k = int(tail_size(max(int(n_null.max(initial=0)), 0), n_tail)) + 1
    top = top_values(s, k, axis=0)
    return gpd_pvalues(t, top, n_null, m, perm, min_exceedances=min_exceedances,
                       n_tail=n_tail, step=step, min_tail=min_tail, fit_alpha=fit_alpha,
                       min_shape=min_shape)
