"""lrtheory.core.stats: line and power-law fits, checked against numpy, scipy and exact cases."""
import math

import numpy as np
import pytest
from scipy import stats as st

from lrtheory.core.stats import GridArgmin, LogLogFit, argmin_on_grid, linear_fit, loglog_fit, ols_lines

# Tolerances: OLS in float64 on O(1) data agrees with numpy/scipy to ~1e-13; 1e-10 leaves margin.
TOL = 1e-10


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.5, 3.0, n))
    return x, 0.7 - 1.3 * x + 0.1 * rng.standard_normal(n)


def test_linear_fit_matches_linregress_and_polyfit():
    x, y = _data()
    fit = linear_fit(x, y)
    ref = st.linregress(x, y)
    assert fit.slope == pytest.approx(ref.slope, abs=TOL)
    assert fit.intercept == pytest.approx(ref.intercept, abs=TOL)
    assert fit.slope_se == pytest.approx(ref.stderr, rel=TOL)
    assert fit.ols_se == fit.slope_se
    assert fit.intercept_se == pytest.approx(ref.intercept_stderr, rel=TOL)
    assert fit.r2 == pytest.approx(ref.rvalue ** 2, abs=TOL)
    assert np.allclose([fit.slope, fit.intercept], np.polyfit(x, y, 1), atol=TOL)
    t = st.t.ppf(0.975, x.size - 2)
    assert fit.ci == pytest.approx((ref.slope - t * ref.stderr, ref.slope + t * ref.stderr), abs=TOL)
    assert fit.n == x.size and fit.method == "ols" and fit.n_boot == 0 and fit.level == 0.95
    assert fit.predict([0.0, 1.0]) == pytest.approx([fit.intercept, fit.intercept + fit.slope])


def test_level_widens_interval():
    x, y = _data()
    a, b = linear_fit(x, y, level=0.68), linear_fit(x, y, level=0.99)
    assert b.ci_low < a.ci_low < a.slope < a.ci_high < b.ci_high
    t = st.t.ppf(0.995, x.size - 2)
    assert b.ci_high - b.slope == pytest.approx(t * b.slope_se, rel=TOL)


def test_exact_line_and_two_points():
    fit = linear_fit([0, 1, 2], [1, 3, 5])  # exact: slope 2, intercept 1, zero residual
    assert fit.slope == pytest.approx(2, abs=1e-14) and fit.intercept == pytest.approx(1, abs=1e-14)
    assert fit.slope_se == pytest.approx(0, abs=1e-14) and fit.r2 == pytest.approx(1.0, abs=1e-14)
    two = linear_fit([1, 3], [0, 4])  # two points: slope exact, no residual dof -> NaN se
    assert two.slope == pytest.approx(2.0) and math.isnan(two.slope_se) and math.isnan(two.ci_low)


def test_loglog_fit_is_linear_fit_on_logs():
    x = np.array([1.0, 2, 4, 8, 16])
    y = 3.0 * x ** -1.5 * np.array([1.01, 0.99, 1.02, 0.98, 1.0])
    fit = loglog_fit(x, y)
    ref = st.linregress(np.log(x), np.log(y))
    assert isinstance(fit, LogLogFit)
    assert fit.slope == pytest.approx(ref.slope, abs=TOL) and fit.slope_se == pytest.approx(ref.stderr, rel=TOL)
    assert fit.prefactor == pytest.approx(math.exp(ref.intercept), rel=TOL)
    assert fit.predict(x) == pytest.approx(np.exp(ref.intercept) * x ** ref.slope, rel=TOL)
    exact = loglog_fit([1, 2, 4, 8], [3, 1.5, 0.75, 0.375])
    assert exact.slope == pytest.approx(-1.0, abs=1e-12) and exact.prefactor == pytest.approx(3.0, rel=1e-12)


def test_propagated_errors():
    # se(slope) of OLS with known point errors: sqrt(sum xc^2 s^2) / Sxx (hand formula);
    # equal errors s give s / sqrt(Sxx).
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.1, 1.0, 2.1, 2.9])
    s = np.array([0.1, 0.2, 0.1, 0.3])
    fit = linear_fit(x, y, y_se=s)
    xc = x - x.mean()
    assert fit.method == "propagated"
    assert fit.slope_se == pytest.approx(math.sqrt((xc ** 2 * s ** 2).sum()) / (xc ** 2).sum(), rel=1e-12)
    eq = linear_fit(x, y, y_se=np.full(4, 0.2))
    assert eq.slope_se == pytest.approx(0.2 / math.sqrt((xc ** 2).sum()), rel=1e-12)
    assert eq.ci_high - eq.slope == pytest.approx(st.norm.ppf(0.975) * eq.slope_se, rel=1e-12)
    # intercept se = se / sqrt(n) at xbar = 0
    xs = xc
    assert linear_fit(xs, y, y_se=np.full(4, 0.2)).intercept_se == pytest.approx(0.2 / 2, rel=1e-12)
    # log-log: se of y becomes se(log y) = se / y
    ll = loglog_fit(np.exp(x), np.exp(y), y_se=s * np.exp(y))
    assert ll.slope_se == pytest.approx(fit.slope_se, rel=1e-12)


def test_bootstrap_points_matches_explicit_loop():
    x, y = _data(n=10, seed=3)
    fit = linear_fit(x, y, n_boot=300, seed=5)
    # the same resamples drawn by hand: group = point, draws[b] = indices
    draws = np.random.default_rng(5).integers(0, x.size, size=(300, x.size))
    slopes = [np.polyfit(x[d], y[d], 1)[0] for d in draws if np.ptp(x[d]) > 0]
    assert fit.method == "bootstrap" and fit.n_boot == len(slopes)
    assert fit.slope_se == pytest.approx(np.std(slopes, ddof=1), rel=1e-9)
    assert fit.ci == pytest.approx(tuple(np.percentile(slopes, [2.5, 97.5])), rel=1e-9)
    assert fit.ols_se == pytest.approx(st.linregress(x, y).stderr, rel=TOL)
    # the bootstrap SE estimates the OLS SE for iid noise (within a factor 2 at n=10)
    assert 0.5 < fit.slope_se / fit.ols_se < 2.0
    assert linear_fit(x, y, n_boot=300, seed=5) == fit  # reproducible
    assert linear_fit(x, y, n_boot=300, seed=6) != fit


def test_bootstrap_resamples_whole_groups():
    # Each seed (group) has an offset shared by all its points and its own slope: a group
    # bootstrap sees the spread of slopes across groups; resampling points breaks it up.
    widths = np.array([1.0, 2.0, 3.0, 4.0])
    slopes_g = np.array([-1.2, -0.8, -1.1, -0.9, -1.0, -1.3])
    X = np.tile(widths, slopes_g.size)
    G = np.repeat(np.arange(slopes_g.size), widths.size)
    Y = slopes_g[G] * X + 5 * np.repeat(np.arange(slopes_g.size), widths.size) % 3
    fit = linear_fit(X, Y, groups=G, n_boot=400, seed=0)
    draws = np.random.default_rng(0).integers(0, slopes_g.size, size=(400, slopes_g.size))
    ref = []
    for d in draws:
        idx = np.concatenate([np.flatnonzero(G == g) for g in d])
        ref.append(np.polyfit(X[idx], Y[idx], 1)[0])
    assert fit.slope_se == pytest.approx(np.std(ref, ddof=1), rel=1e-9)
    assert fit.ci == pytest.approx(tuple(np.percentile(ref, [2.5, 97.5])), rel=1e-9)
    # group labels need not be 0..G-1
    relabeled = linear_fit(X, Y, groups=np.array(["s%d" % g for g in G]), n_boot=400, seed=0)
    assert relabeled.slope_se == pytest.approx(fit.slope_se, rel=1e-12)


def test_drop_nonfinite():
    x = [1.0, 2.0, 3.0, 4.0]
    y = [1.0, 2.0, np.inf, 4.0]
    with pytest.raises(ValueError, match="drop_nonfinite"):
        linear_fit(x, y)
    fit = linear_fit(x, y, drop_nonfinite=True)
    assert fit.n == 3 and fit.slope == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=[1, 2, 3], y=[1, 2]), "y"),
    (dict(x=[1], y=[1]), "x"),
    (dict(x=[2, 2, 2], y=[1, 2, 3]), "x"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], level=1.0), "level"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], n_boot=1), "n_boot"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], n_boot=-3), "n_boot"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], groups=[0, 0, 1]), "groups"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], groups=[0, 1], n_boot=10), "groups"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], y_se=[1, 1, 1], n_boot=10), "y_se"),
    (dict(x=[1, 2, 3], y=[1, 2, 3], y_se=[1, -1, 1]), "y_se"),
    (dict(x=[[1, 2]], y=[[1, 2]]), "x"),
])
def test_linear_fit_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        linear_fit(**kwargs)


def test_loglog_rejects_nonpositive():
    with pytest.raises(ValueError, match="x"):
        loglog_fit([0, 1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="y"):
        loglog_fit([1, 2, 3], [1, -2, 3], drop_nonfinite=True)


def test_ols_lines_matches_polyfit_columnwise():
    rng = np.random.default_rng(1)
    x = np.arange(5.0)
    Y = rng.standard_normal((5, 7))
    s, c = ols_lines(x, Y)
    ref = np.polyfit(x, Y, 1)
    assert np.allclose(s, ref[0], atol=TOL) and np.allclose(c, ref[1], atol=TOL)
    s1, c1 = ols_lines(x, Y[:, 0])
    assert isinstance(s1, float) and s1 == pytest.approx(ref[0, 0], abs=TOL)
    with pytest.raises(ValueError, match="Y"):
        ols_lines(x, Y[:4])
    with pytest.raises(ValueError, match="x"):
        ols_lines([1.0, 1.0], [1.0, 2.0])


def test_argmin_on_grid():
    x = np.arange(6.0)
    y = np.array([5.0, np.nan, 2.0, 1.0, np.inf, 3.0])
    r = argmin_on_grid(x, y)
    assert r == GridArgmin(3.0, 3, 1.0, False)
    # a neighbour is not finite -> the grid point, unrefined
    assert argmin_on_grid(x, y, refine="parabola") == r
    # exact parabola (x - 2.3)^2 + 1 sampled at 0..5: the vertex is recovered (1e-12: polyfit round-off)
    yy = (x - 2.3) ** 2 + 1
    p = argmin_on_grid(x, yy, refine="parabola")
    assert p.refined and p.index == 2 and p.x == pytest.approx(2.3, abs=1e-12) and p.value == yy[2]
    # log_y: a parabola in log y, i.e. y = exp((x - 1.4)^2)
    q = argmin_on_grid(x, np.exp((x - 1.4) ** 2), refine="parabola", log_y=True)
    assert q.x == pytest.approx(1.4, abs=1e-12)
    # edge minimum -> the edge; clipping to the window
    assert argmin_on_grid(x, x, refine="parabola") == GridArgmin(0.0, 0, 0.0, False)
    c = argmin_on_grid([0.0, 1.0, 2.0], [1.0, 0.0, 0.0 + 1e-9], refine="parabola")
    assert 1.0 <= c.x <= 2.0
    with pytest.raises(ValueError, match="y"):
        argmin_on_grid(x, np.full(6, np.nan))
    with pytest.raises(ValueError, match="x"):
        argmin_on_grid([0, 2, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="y"):
        argmin_on_grid([0, 1], [1, 0], refine="parabola")
    with pytest.raises(ValueError, match="refine"):
        argmin_on_grid([0, 1], [1, 0], refine="cubic")


from hypothesis import given, settings, strategies as hs  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(slope=hs.floats(-3, 3), logc=hs.floats(-5, 5), n=hs.integers(3, 12), x0=hs.floats(0.1, 10),
       ratio=hs.floats(1.1, 4))
def test_loglog_fit_recovers_exact_power_laws(slope, logc, n, x0, ratio):
    """For every exact power law y = c x^p on a geometric grid the fit returns p and c (to 1e-9: the log of
    values spanning up to 4^12 loses ~1e-13 relative), r2 = 1 and a zero-width OLS interval."""
    x = x0 * ratio ** np.arange(n)
    y = math.exp(logc) * x ** slope
    fit = loglog_fit(x, y)
    assert fit.slope == pytest.approx(slope, abs=1e-9)
    assert fit.intercept == pytest.approx(logc, abs=1e-8)
    assert fit.slope_se <= 1e-9 and fit.ci_high - fit.ci_low <= 1e-8
    if abs(slope) > 1e-3:  # a flat law has no r2 (all log y equal up to round-off)
        assert fit.r2 == pytest.approx(1.0, abs=1e-9)


def test_propagated_intercept_error_and_interval_off_centre():
    """Known point errors at x away from 0: slope and intercept are linear in y, (a, b) = M y with
    M = (A^T A)^-1 A^T, so their standard errors are sqrt(sum_i M_ji^2 s_i^2) (an explicit matrix, not the
    module's centred formulas); the normal interval is symmetric about the slope."""
    x = np.array([2.0, 3.0, 5.0, 8.0, 9.0])
    y = np.array([1.0, 1.8, 3.1, 5.2, 5.9])
    s = np.array([0.1, 0.3, 0.2, 0.4, 0.1])
    fit = linear_fit(x, y, y_se=s, level=0.9)
    A = np.stack([x, np.ones_like(x)], 1)
    M = np.linalg.solve(A.T @ A, A.T)
    se_slope, se_icpt = np.sqrt((M ** 2 * s ** 2).sum(1))
    assert fit.slope_se == pytest.approx(se_slope, rel=1e-12)
    assert fit.intercept_se == pytest.approx(se_icpt, rel=1e-12)
    z = st.norm.ppf(0.95)
    assert fit.ci == pytest.approx((fit.slope - z * se_slope, fit.slope + z * se_slope), rel=1e-12)
    # the OLS intercept error against linregress at x away from 0
    ols = linear_fit(x, y)
    assert ols.intercept_se == pytest.approx(st.linregress(x, y).intercept_stderr, rel=1e-10)


def test_bootstrap_single_group_is_degenerate_free():
    """One group holding every point: every resample is the data itself, so the bootstrap spread is 0."""
    x, y = _data(n=6)
    fit = linear_fit(x, y, groups=np.zeros(6), n_boot=50)
    assert fit.slope_se == pytest.approx(0.0, abs=1e-12) and fit.n_boot == 50
    assert fit.ci_low == pytest.approx(fit.slope, abs=1e-12) and fit.ci_high == pytest.approx(fit.slope, abs=1e-12)
