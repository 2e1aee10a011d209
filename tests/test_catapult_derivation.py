"""Independent checks of chapter 02's derivations (lrtheory/results/catapult/derivation.py and
limits.py), fast enough for mutation testing (``[tool.mutmut.modules]`` lists this file for both).

Every derived expression is compared with something its derivation does not use: one GD step
computed numerically on a concrete model (numpy, or torch autograd), a root or a limit found
numerically, a Monte Carlo average, a value worked out by hand (written in the test, never read
off the code), or the maps the paper states (Lewkowycz et al. 2020, Theorem 1:
``f' = (1 - eta lambda + eta^2 f^2 / n) f``, ``lambda' = lambda + (eta f^2 / n)(eta lambda - 4)``).
The limit maps of limits.py are checked against the exact finite-width dynamics at a large width,
written here from the models' definitions.

Tolerances: ``RTOL = 1e-10`` for one float64 step (a few roundings of O(1) numbers); the others
are stated where they are used.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.results.catapult import derivation as D
from lrtheory.results.catapult import limits as L

RTOL = 1e-10


def _num(expr, subs):
    return float(sp.N(expr.subs(subs)))


# ----------------------------------------------------------------------------------- uv model
def _uv_step(n, x, y, eta, seed):
    """One GD step of f = v.u x / sqrt(n) on (f - y)^2 / 2, numpy: (f, lam, f', lam')."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=n), rng.normal(size=n)
    f = v @ u * x / math.sqrt(n)
    lam = x * x * (u @ u + v @ v) / n
    r = f - y
    u1, v1 = u - eta * r * x * v / math.sqrt(n), v - eta * r * x * u / math.sqrt(n)
    return f, lam, v1 @ u1 * x / math.sqrt(n), x * x * (u1 @ u1 + v1 @ v1) / n


def _paper_uv(f, lam, eta, n):
    """The maps of Lewkowycz et al. 2020, Theorem 1 (x = 1, y = 0), typed from the paper."""
    return f * (1 - eta * lam + eta ** 2 * f ** 2 / n), lam + eta * f ** 2 / n * (eta * lam - 4)


@pytest.mark.parametrize("n, x, y, eta, seed", [(7, 0.7, 0.3, 0.45, 0), (3, 1.9, -1.2, 0.2, 1), (12, 0.4, 2.0, 1.3, 2)])
def test_uv_updates_against_a_numeric_step(n, x, y, eta, seed):
    f, lam, f1, lam1 = _uv_step(n, x, y, eta, seed)
    upd = D.derive_uv_updates()
    subs = {D.eta_s: eta, D.n_s: n, D.x_s: x, D.y_s: y, D.f_s: f, D.lam_s: lam, D.r_s: f - y}
    assert _num(upd.f_next, subs) == pytest.approx(f1, rel=RTOL)
    assert _num(upd.lam_next, subs) == pytest.approx(lam1, rel=RTOL)
    assert _num(upd.residual_next, subs) == pytest.approx(f1 - y, rel=RTOL)
    assert _num(upd.delta_lam, subs) == pytest.approx(lam1 - lam, rel=1e-8)
    # residual_next and delta_lam are written in r (no f left); the others in f
    assert D.f_s not in upd.residual_next.free_symbols and D.f_s not in upd.delta_lam.free_symbols
    for e in (upd.f_next, upd.lam_next):
        assert e.free_symbols == {D.eta_s, D.n_s, D.x_s, D.y_s, D.f_s, D.lam_s}


def test_uv_simple_maps_are_the_papers():
    upd = D.derive_uv_updates()
    for n, eta, seed in ((5, 0.3, 3), (9, 0.8, 4)):
        f, lam, f1, lam1 = _uv_step(n, 1.0, 0.0, eta, seed)
        subs = {D.eta_s: eta, D.n_s: n, D.f_s: f, D.lam_s: lam}
        assert _num(upd.f_next_simple, subs) == pytest.approx(f1, rel=RTOL)
        assert _num(upd.lam_next_simple, subs) == pytest.approx(lam1, rel=RTOL)
        assert _num(upd.delta_lam_simple, subs) == pytest.approx(lam1 - lam, rel=1e-8)
        pf, pl = _paper_uv(f, lam, eta, n)
        assert (f1, lam1) == pytest.approx((pf, pl), rel=RTOL)
    for e in (upd.f_next_simple, upd.lam_next_simple, upd.delta_lam_simple):
        assert not e.free_symbols & {D.x_s, D.y_s, D.r_s}


def test_sum_over_components_rejects_what_is_not_a_symmetric_quadratic_form():
    a, b = sp.symbols("a b", real=True)
    S2, C = sp.symbols("S C")
    # 3 a^2 + 3 b^2 - 2 a b sums to 3 S - 2 C (by hand)
    assert sp.expand(D._sum_over_components(3 * a**2 + 3 * b**2 - 2 * a * b, a, b, S2, C) - (3 * S2 - 2 * C)) == 0
    with pytest.raises(AssertionError, match="^not a homogeneous quadratic form in a, b: "):
        D._sum_over_components(a**2 + b**2 + a, a, b, S2, C)
    with pytest.raises(AssertionError, match="^the update is not symmetric under u <-> v$"):
        D._sum_over_components(a**2 + 2 * b**2, a, b, S2, C)


# --------------------------------------------------------------------------------- uv phases
def test_uv_phases_against_numeric_steps_and_roots():
    ph = D.derive_uv_phases()
    f, lam, f1, lam1 = _uv_step(6, 1.0, 0.0, 0.7, 5)
    subs = {D.eta_s: 0.7, D.n_s: 6, D.f_s: f, D.lam_s: lam}
    assert _num(ph.growth, subs) == pytest.approx(f1 / f, rel=RTOL)
    assert _num(ph.delta_lam, subs) == pytest.approx(lam1 - lam, rel=1e-8)
    # n -> oo by hand: 1 - eta lambda; its edge |1 - eta lambda| = 1 at eta = 2 / lambda
    assert sp.expand(ph.growth_inf_width - (1 - D.eta_s * D.lam_s)) == 0
    assert _num(ph.eta_lazy, {D.lam_s: 1.7}) == pytest.approx(2 / 1.7, rel=1e-15)
    # delta_lam vanishes at eta_max for any f, n; negative just below, positive just above
    em = _num(ph.eta_max, {D.lam_s: 1.3})
    assert em == pytest.approx(4 / 1.3, rel=1e-15)
    for e, sign in ((em, 0), (0.99 * em, -1), (1.01 * em, 1)):
        lam_next = _paper_uv(0.9, 1.3, e, 5)[1]
        assert np.sign(round(lam_next - 1.3, 14)) == sign
    assert ph.lower == 2 and ph.upper == 4


@pytest.mark.parametrize("a", [1e-3, 0.02, 0.08, 0.125])
def test_uv_lower_edge_is_the_numeric_root(a):
    # the smaller root of 1 - w + a w^2 = -1 (np.roots), where the loss starts to grow at step 1
    root = min(np.roots([a, -1.0, 2.0]).real)
    ph = D.derive_uv_phases()
    assert _num(ph.lower_edge_finite_width, {D.a_s: a}) == pytest.approx(root, rel=1e-7)
    assert _num(ph.lower_edge_stable, {D.a_s: a}) == pytest.approx(root, rel=1e-7)


def test_uv_lower_edge_series_and_its_stable_form():
    ph = D.derive_uv_phases()
    a = D.a_s
    # by hand: sqrt(1 - 8a) = 1 - 4a - 8a^2 - 32a^3 - 160a^4, so w_c = 2 + 4a + 16a^2 + 80a^3 + ...
    assert sp.expand(ph.lower_edge_series - (2 + 4 * a + 16 * a**2)) == 0
    wc = sp.lambdify(a, ph.lower_edge_finite_width, "mpmath")
    import mpmath

    mpmath.mp.dps = 40
    x = mpmath.mpf("1e-6")
    assert float((wc(x) - (2 + 4 * x + 16 * x**2)) / x**3) == pytest.approx(80, rel=1e-3)
    # the stable form keeps every digit at a = 1e-12 in float64 (the plain one loses them)
    stable = sp.lambdify(a, ph.lower_edge_stable, "numpy")
    assert float(stable(1e-12)) == pytest.approx(2 + 4e-12, rel=1e-15)


def test_uv_lower_edge_on_a_finite_net():
    """A finite uv net (n = 16): its first step grows |f| just above w_c and shrinks it just below."""
    rng = np.random.default_rng(11)
    n = 16
    u, v = rng.normal(size=n), rng.normal(size=n)
    f0, lam0 = v @ u / math.sqrt(n), (u @ u + v @ v) / n
    wc = float(D.finite_width_lower_edge(f0, lam0, n))
    assert wc > 2.0 + 1e-6  # the finite-width shift is visible here
    for w, grows in ((wc - 1e-4, False), (wc + 1e-4, True)):
        eta = w / lam0
        u1, v1 = u - eta * f0 * v / math.sqrt(n), v - eta * f0 * u / math.sqrt(n)
        assert (abs(v1 @ u1 / math.sqrt(n)) > abs(f0)) == grows


def test_finite_width_lower_edge_values_shapes_and_errors():
    f0 = np.array([0.5, -1.0, 3.0])
    lam0, n = np.array([[2.0], [1.5]]), 64
    got = D.finite_width_lower_edge(f0, lam0, n)
    assert got.shape == (2, 3) and got.dtype == np.float64
    for i in range(2):
        for j in range(3):
            a = f0[j] ** 2 / (n * lam0[i, 0] ** 2)
            assert got[i, j] == pytest.approx(min(np.roots([a, -1.0, 2.0]).real), rel=1e-9)
    # a = 1/8 exactly: the double root 1 / (2a) = 4; beyond it no root (NaN)
    assert float(D.finite_width_lower_edge(1.0, 2.0, 2)) == pytest.approx(4.0, rel=1e-12)
    assert np.isnan(D.finite_width_lower_edge(1.0001, 2.0, 2))
    out = D.finite_width_lower_edge([1e-3, 10.0], 1.0, [1, 1])
    assert out[0] == pytest.approx(2.0 + 4e-6, rel=1e-9) and np.isnan(out[1])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="^lam0: must be positive"):
            D.finite_width_lower_edge(1.0, [1.0, bad], 4)
        with pytest.raises(ValueError, match="^n: must be positive"):
            D.finite_width_lower_edge(1.0, 1.0, [4, bad])


# -------------------------------------------------------------------------- quadratic model
def _dense(N, seed, lo=0.8, hi=1.2):
    """A rotated psi with eigenvalues +-s (s ~ U(lo, hi)) and theta ~ N(0, 1)^N (numpy)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(lo, hi, N // 2)
    s = np.concatenate([s, -s])
    q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    return q @ np.diag(s) @ q.T, rng.normal(size=N), s


def _moments(psi, th):
    return [th @ np.linalg.matrix_power(psi, p) @ th for p in range(5)]


def _quad_subs(psi, th, zeta, eta, y):
    mom = _moments(psi, th)
    z, lam = 0.5 * zeta * mom[1], zeta**2 * mom[2]
    return {D.eta_s: eta, D.zeta_s: zeta, D.r_s: z - y, D.z_s: z, D.lam_s: lam, D.Q_s: mom[0],
            **{D.M[p]: mom[p] for p in range(5)}}, z - y


@pytest.mark.parametrize("y", [0.0, 0.35])
def test_quadratic_updates_against_a_numeric_step(y):
    N, eta = 6, 0.3
    psi, th, _ = _dense(N, 0)
    zeta = (N / 2) ** -0.5
    subs, r = _quad_subs(psi, th, zeta, eta, y)
    th1 = th - eta * r * zeta * (psi @ th)
    m1 = _moments(psi, th1)
    q = D.derive_quadratic_updates()
    assert _num(q.z_next, subs) == pytest.approx(0.5 * zeta * m1[1], rel=RTOL)
    assert _num(q.lam_next, subs) == pytest.approx(zeta**2 * m1[2], rel=RTOL)
    assert _num(q.norm_next, subs) == pytest.approx(m1[0], rel=RTOL)
    assert len(q.moments_next) == 3
    for p in range(3):
        assert _num(q.moments_next[p], subs) == pytest.approx(m1[p], rel=RTOL)
        assert q.moments_next[p].free_symbols <= {D.eta_s, D.r_s, D.zeta_s, *D.M}


def test_weight_norm_change_against_numeric_steps():
    wn = D.derive_weight_norm_change()
    N, eta = 8, 0.25
    psi, th, _ = _dense(N, 1)
    zeta = (N / 2) ** -0.5
    for y in (0.0, -0.6):
        subs, r = _quad_subs(psi, th, zeta, eta, y)
        th1 = th - eta * r * zeta * (psi @ th)
        change = th1 @ th1 - th @ th
        assert _num(wn.exact, subs) == pytest.approx(change, rel=1e-8)
        assert _num(wn.expanded_in_r, {**subs, D.y_s: y}) == pytest.approx(change, rel=1e-8)
        if y == 0.0:
            assert _num(wn.y0, subs) == pytest.approx(change, rel=1e-8)
    # by hand: eta r (eta lambda r - 4 (r + y)) has r^2 coefficient eta (eta lambda - 4), root 4 / lambda
    eta, lam = D.eta_s, D.lam_s
    assert sp.expand(wn.large_loss - eta * (eta * lam - 4)) == 0
    assert sp.expand(wn.eta_max - 4 / lam) == 0
    assert D.y_s in wn.expanded_in_r.free_symbols and D.z_s not in wn.expanded_in_r.free_symbols


def _gd_quadratic(psi, th, zeta, eta, steps):
    """GD from th at y = 0: the squared norms and the last |z|."""
    norms = [th @ th]
    for _ in range(steps):
        z = 0.5 * zeta * th @ psi @ th
        th = th - eta * z * zeta * (psi @ th)
        norms.append(th @ th)
    return np.array(norms), abs(0.5 * zeta * th @ psi @ th)


def test_quadratic_range_kappa_and_the_theorem_on_a_dense_model():
    rng_ = D.derive_quadratic_range()
    assert rng_.lower == 2 and rng_.upper_unit == 4
    N = 40
    psi, th, s = _dense(N, 2, 0.9, 1.1)
    zeta = (N / 2) ** -0.5
    lam0, Q, mu_max = zeta**2 * th @ psi @ psi @ th, th @ th, np.max(s**2)
    subs = {D.lam_s: lam0, D.zeta_s: zeta, D.mu_max_s: mu_max, D.Q_s: Q}
    kappa = lam0 / (zeta**2 * mu_max * Q)
    assert _num(rng_.kappa, subs) == pytest.approx(kappa, rel=1e-12)
    assert _num(rng_.upper, subs) == pytest.approx(4 * kappa, rel=1e-12)
    assert 2.0 < 4 * kappa < 4.0
    # the theorem: inside (2, 4 kappa_0) the norm never grows and GD converges; the loss grows first
    norms, z_end = _gd_quadratic(psi, th, zeta, 0.98 * 4 * kappa / lam0, 4000)
    assert np.all(np.diff(norms) <= 1e-12 * norms[0]) and z_end < 1e-8


def test_spread_kappa_by_hand_and_by_monte_carlo():
    # E[s^2] / hi^2 = (hi^3 - lo^3) / (3 (hi - lo) hi^2)
    for lo, hi in ((0.8, 1.2), (0.5, 1.5), (0.25, 2.0)):
        by_hand = (hi**3 - lo**3) / (3 * (hi - lo) * hi**2)
        assert float(D.derive_spread_kappa(lo, hi)) == pytest.approx(by_hand, rel=1e-12)
    assert D.derive_spread_kappa(0.7, 0.7) == 1
    # kappa_0 of sampled models (N = 2^17, 2 seeds): law of large numbers, error ~ 3e-3
    rng = np.random.default_rng(0)
    for _ in range(2):
        s, t = rng.uniform(0.5, 1.5, 2**17), rng.normal(size=2**17)
        mc = np.sum(s**2 * t**2) / (1.5**2 * np.sum(t**2))
        assert mc == pytest.approx(float(D.derive_spread_kappa(0.5, 1.5)), abs=1e-2)


def test_uv_quadratic_match_against_a_dense_unit_model():
    m = D.derive_uv_quadratic_match()
    assert m.z_diff == 0 and m.lam_diff == 0
    # psi^2 = 1: a rotated diag(+-1); one step with y != 0
    N, eta, y = 6, 0.4, 0.3
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    psi = q @ np.diag([1.0, 1.0, 1.0, -1.0, -1.0, -1.0]) @ q.T
    th = rng.normal(size=N)
    zeta = 0.7
    z, lam = 0.5 * zeta * th @ psi @ th, zeta**2 * th @ th
    th1 = th - eta * (z - y) * zeta * (psi @ th)
    subs = {D.eta_s: eta, D.zeta_s: zeta, D.r_s: z - y, D.z_s: z, D.lam_s: lam, D.Q_s: th @ th}
    assert _num(m.z_next_unit, subs) == pytest.approx(0.5 * zeta * th1 @ psi @ th1, rel=RTOL)
    assert _num(m.lam_next_unit, subs) == pytest.approx(zeta**2 * th1 @ th1, rel=RTOL)
    assert not m.z_next_unit.free_symbols & set(D.M)


# ---------------------------------------------------------------------- homogeneous net
def test_homogeneous_norm_change_against_autograd_steps():
    h = D.derive_homogeneous_range()
    g = torch.Generator().manual_seed(5)
    for slope, y in ((0.0, 0.4), (0.5, -0.3), (1.0, 0.0)):
        n, eta = 9, 0.7
        u = torch.randn(n, generator=g, dtype=torch.float64, requires_grad=True)
        v = torch.randn(n, generator=g, dtype=torch.float64, requires_grad=True)
        f = (v * torch.nn.functional.leaky_relu(u, slope)).sum() / math.sqrt(n)
        gu, gv = torch.autograd.grad(f, (u, v))
        lam, fv = float(gu @ gu + gv @ gv), float(f.detach())
        u, v = u.detach(), v.detach()
        u1, v1 = u - eta * (fv - y) * gu, v - eta * (fv - y) * gv
        change = float(u1 @ u1 + v1 @ v1 - u @ u - v @ v)
        sub = {D.eta_s: eta, D.r_s: fv - y, D.lam_s: lam, D.f_s: fv}
        assert _num(h.norm_change, sub) == pytest.approx(change, rel=1e-10)
        if y == 0.0:
            assert _num(h.y0, sub) == pytest.approx(change, rel=1e-10)
        Q = float(u @ u + v @ v)
        assert lam <= Q / n * (1 + 1e-12)  # the step taken by hand (slopes <= 1)
        assert _num(h.upper, {D.n_s: n, D.lam_s: lam, D.Q_s: Q}) == pytest.approx(4 * n * lam / Q, rel=1e-12)


@pytest.mark.parametrize("slope", [0.0, 0.3, 1.0])
def test_homogeneous_kappa_inf_by_monte_carlo(slope):
    """kappa_0 = n lambda_0 / |theta_0|^2 of sampled nets (n = 2^18; error ~ 2e-3, tolerance 1e-2)."""
    h = D.derive_homogeneous_range()
    kappa = _num(h.kappa_inf, {D.slope_s: slope})
    assert kappa == pytest.approx((1 + slope**2) / 2, rel=1e-12)  # by hand: half the units on each side
    assert _num(h.upper_inf, {D.slope_s: slope}) == pytest.approx(2 * (1 + slope**2), rel=1e-12)
    rng = np.random.default_rng(int(10 * slope))
    u, v = rng.normal(size=2**18), rng.normal(size=2**18)
    s = np.where(u > 0, 1.0, slope)
    lam = np.sum((s * u) ** 2 + (s * v) ** 2) / u.size
    assert u.size * lam / np.sum(u**2 + v**2) == pytest.approx(kappa, abs=1e-2)


def _leaky_gd(u, v, slope, eta, steps, stop=1e6):
    """GD on f = n^-1/2 sum v sigma(u) at y = 0 (numpy): (diverged, norms, final f, final lambda, u)."""
    n = u.size
    norms = [u @ u + v @ v]
    for _ in range(steps):
        s = np.where(u > 0, 1.0, slope)
        f = v @ (s * u) / math.sqrt(n)
        if not abs(f) < stop:
            return True, np.array(norms), f, math.nan, u
        c = eta * f / math.sqrt(n)
        u, v = u - c * s * v, v - c * s * u
        norms.append(u @ u + v @ v)
    s = np.where(u > 0, 1.0, slope)
    return False, np.array(norms), v @ (s * u) / math.sqrt(n), np.sum(s * s * (u * u + v * v)) / n, u


def test_homogeneous_guaranteed_range_on_a_finite_net():
    """Inside 2 < eta lambda_0 < 4 kappa_0 the norm never grows and GD converges (n = 256, slope 0.5)."""
    rng = np.random.default_rng(4)
    u, v = rng.normal(size=256), rng.normal(size=256)
    s = np.where(u > 0, 1.0, 0.5)
    lam0 = np.sum(s * s * (u * u + v * v)) / 256
    kappa0 = 256 * lam0 / (u @ u + v @ v)
    w = 0.97 * 4 * kappa0
    assert w > 2.0
    div, norms, f, _, _ = _leaky_gd(u, v, 0.5, w / lam0, 3000)
    assert not div and abs(f) < 1e-8 and np.all(np.diff(norms) <= 1e-12 * norms[0])


# ----------------------------------------------------------------------- model with bias
def _bias_start(N, Fd, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    psi = q @ np.diag(np.r_[np.ones(N // 2), -np.ones(N // 2)]) @ q.T
    return psi, rng.normal(size=Fd) / math.sqrt(Fd), rng.normal(size=Fd), rng.normal(size=N)


def test_bias_model_against_numeric_steps():
    b = D.derive_bias_model()
    N, Fd, eta, zeta = 8, 3, 0.3, 0.5
    psi, phi, a, th = _bias_start(N, Fd, 2)
    F = phi @ phi
    for y in (0.25, 0.0):
        p, q = a @ phi, 0.5 * zeta * th @ psi @ th
        z, lam = p + q, F + zeta**2 * th @ psi @ psi @ th
        r = z - y
        a1, th1 = a - eta * r * phi, th - eta * r * zeta * (psi @ th)
        p1, q1 = a1 @ phi, 0.5 * zeta * th1 @ psi @ th1
        assert _num(b.p_next, {D.p_s: p, D.eta_s: eta, D.r_s: r, D.F_s: F}) == pytest.approx(p1, rel=1e-12)
        V0, V1 = th @ th + 2 * p * p / F, th1 @ th1 + 2 * p1 * p1 / F
        dv = _num(b.lyapunov_change, {D.eta_s: eta, D.r_s: r, D.lam_s: lam, D.F_s: F, D.z_s: z})
        assert dv == pytest.approx(V1 - V0, rel=1e-9)
    # the width-free map at y = 0 against the same step
    sub = {D.P_s: eta * zeta * p, D.R_s: eta * zeta * q, D.l_s: eta * (lam - F), D.Ft_s: eta * F, D.Z_s: eta * zeta * z}
    lq1 = zeta**2 * th1 @ psi @ psi @ th1
    got = [_num(e, sub) for e in b.width_free]
    np.testing.assert_allclose(got, [eta * zeta * p1, eta * zeta * q1, eta * lq1], rtol=1e-9)


def test_bias_upper_edge_by_hand_and_the_theorem():
    b = D.derive_bias_model()
    # 4 lambda / (2 F + zeta^2 mu (Q + 2 p^2 / F)) at lambda = 5, F = 2, mu = 2, zeta = 1/2, Q = 4, p = 3:
    # 20 / (4 + (1/4) 2 (4 + 9)) = 20 / 10.5 = 40 / 21
    assert b.upper.subs({D.lam_s: 5, D.F_s: 2, D.mu_max_s: 2, D.zeta_s: sp.Rational(1, 2), D.Q_s: 4, D.p_s: 3}) \
        == sp.Rational(40, 21)
    rho = sp.Symbol("rho", positive=True)
    assert sp.simplify(b.upper_unit_inf - 4 / (1 + rho)) == 0
    # on a model (psi^2 = 1, N = 4096, features phi of norm^2 F): V falls at every step below the edge and
    # GD converges; the edge itself tends to 4 / (1 + rho) as N grows (here within 2e-3: the 2 zeta^2 p^2/F term)
    N, zeta = 4096, (4096 / 2) ** -0.5
    rng = np.random.default_rng(7)
    th = rng.normal(size=N)
    sgn = np.r_[np.ones(N // 2), -np.ones(N // 2)]
    phi, a = np.ones(4) * 0.5, rng.normal(size=4) * 0.2
    F = phi @ phi
    lam0 = F + zeta**2 * th @ th
    p0 = a @ phi
    edge = _num(b.upper, {D.lam_s: lam0, D.F_s: F, D.mu_max_s: 1.0, D.zeta_s: zeta, D.Q_s: th @ th, D.p_s: p0})
    assert edge == pytest.approx(4 / (1 + F / lam0), abs=2e-3)
    eta = 0.98 * edge / lam0
    Vs = []
    for _ in range(3000):
        p, q = a @ phi, 0.5 * zeta * np.sum(sgn * th**2)
        Vs.append(th @ th + 2 * p * p / F)
        z = p + q
        a, th = a - eta * z * phi, th - eta * z * zeta * sgn * th
    assert np.all(np.diff(Vs) <= 1e-12 * Vs[0]) and abs(z) < 1e-8 and eta * lam0 > 2


# --------------------------------------------------------------------------- limits: uv
def _paper_uv_run(w0, g0, steps):
    """Lewkowycz et al.'s maps from f0 = 1, lambda0 = 2 at n = eta^2 / g0: the g_t = eta^2 f_t^2 / n."""
    eta, f, lam = w0 / 2.0, 1.0, 2.0
    n = eta**2 / g0
    gs, ws = [g0], [w0]
    for _ in range(steps):
        f, lam = _paper_uv(f, lam, eta, n)
        gs.append(eta**2 * f * f / n)
        ws.append(eta * lam)
    return np.array(gs), np.array(ws)


@pytest.mark.parametrize("w0", [2.4, 3.0, 3.6])
def test_uv_peak_against_the_papers_maps(w0):
    p = L.derive_uv_peak(w0)
    gs, _ = _paper_uv_run(w0, 1e-14, 400)
    assert p.w0 == w0 and p.peak_slope == 1.0
    assert p.g_star == pytest.approx(gs.max(), rel=1e-6)
    # the peak's step: t* = ln(1/g0) / (2 ln(w0 - 1)) + const; its slope against ln(1/g0) (2 %: t* is an integer)
    t1, t2 = np.argmax(_paper_uv_run(w0, 1e-8, 600)[0]), np.argmax(_paper_uv_run(w0, 1e-40, 600)[0])
    assert (t2 - t1) / math.log(1e32) == pytest.approx(p.time_slope, rel=0.05)
    assert p.time_slope == pytest.approx(1 / (2 * math.log(w0 - 1)), rel=1e-12)
    # g0 -> (w0 - 1)^2 g0 starts the same run one step later (the linear stage): the same peak, so max_t g_t
    # is log-periodic in g0, bounded, and L* ~ g* n grows like n on average (slope 1)
    later = L.derive_uv_peak(w0, g0=1e-14 * (w0 - 1) ** 2).g_star
    assert later == pytest.approx(p.g_star, rel=1e-6)
    assert L.derive_uv_peak(w0, g0=1e-20).g_star == pytest.approx(p.g_star, rel=0.1)


def test_uv_peak_errors_and_step_cap():
    for w0 in (2.0, 4.0, 1.0, 4.5):
        with pytest.raises(ValueError, match="^w0: expected 2 < w0 < 4"):
            L.derive_uv_peak(w0)
    # with 3 steps the peak is the largest of g_0 .. g_3 (g is still growing), by the maps
    gs, _ = _paper_uv_run(3.0, 1e-6, 3)
    assert L.derive_uv_peak(3.0, g0=1e-6, max_steps=3).g_star == pytest.approx(gs[:4].max(), rel=1e-9)
    assert L.derive_uv_peak(3.0, g0=1e-6, max_steps=0).g_star == 1e-6


@pytest.mark.parametrize("w0", [2.2, 2.4, 2.6])
def test_uv_final_eta_lam_against_the_papers_maps(w0):
    """The end point at g0 -> 0 against the paper's maps at g0 = 1e-13 (5e-4: at these w0 the end point moves
    by ~1e-4 between g0 = 1e-10 and 1e-18; from w0 ~ 3 on it has no limit: 0.19-0.22 at 3.0, 0.32-0.87 at 3.4);
    Theorem 1: lambda_final <= 2 / eta."""
    _, ws = _paper_uv_run(w0, 1e-13, 20000)
    got = L.uv_final_eta_lam(w0)
    assert got == pytest.approx(ws[-1], abs=5e-4) and got < 2.0


def test_uv_final_eta_lam_lazy_divergent_and_unsettled():
    assert L.uv_final_eta_lam(1.5) == pytest.approx(1.5, abs=1e-12)
    assert L.uv_final_eta_lam(1.5, g0=1e-4) == pytest.approx(_paper_uv_run(1.5, 1e-4, 3000)[1][-1], abs=1e-10)
    assert math.isnan(L.uv_final_eta_lam(4.5)) and math.isnan(L.uv_final_eta_lam(4.01))
    assert math.isnan(L.uv_final_eta_lam(2.6, max_steps=20))  # not settled in 20 steps
    # a start below g = 1e-30 still catapults (only a settled run with w < 2 stops)
    assert L.uv_final_eta_lam(2.6, g0=1e-35) == pytest.approx(L.uv_final_eta_lam(2.6), abs=1e-3)
    assert math.isnan(L.uv_final_eta_lam(1.9, g0=1e-12, max_steps=1))


def test_bracket_edge_on_a_known_threshold():
    calls = []

    def div(w):
        calls.append(w)
        if len(calls) > 1000:  # a bisection that does not stop fails here (instead of filling the memory)
            raise RuntimeError("the bisection does not stop")
        return w > 3.14159

    got = L.bracket_edge(div, 2.0, 6.0, 0.1, tol=1e-4)
    assert abs(got - 3.14159) < 1e-4 and calls[:3] == [2.0, 2.1, 2.2]
    assert abs(L.bracket_edge(lambda w: w > 3.14159, 2.0, 6.0, 0.1) - 3.14159) < 1e-3
    assert L.bracket_edge(lambda w: w >= 3.0, 2.0, 6.0, 0.5, tol=1e-12) == pytest.approx(3.0, abs=1e-12)
    assert math.isnan(L.bracket_edge(lambda w: True, 2.0, 6.0, 0.1))
    assert math.isnan(L.bracket_edge(lambda w: False, 2.0, 6.0, 0.1))
    assert L.bracket_edge(lambda w: w > 5.95, 2.0, 6.0, 0.1) == pytest.approx(5.95, abs=1e-3)  # hi is on the grid
    assert math.isnan(L.bracket_edge(lambda w: w > 6.05, 2.0, 6.0, 0.1))  # nothing beyond hi is tried


def _quadratic_spread_gd(w0, N, seed, steps=3000):
    """GD of the pure quadratic model in psi's eigenbasis (eigenvalues +-s, s ~ U(0.8, 1.2)), zeta = (N/2)^-1/2,
    y = 0: True if it diverges."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.8, 1.2, N // 2)
    s = np.concatenate([s, -s])
    t2 = rng.normal(size=N) ** 2
    zeta = (N / 2) ** -0.5
    eta = w0 / (zeta**2 * np.sum(s * s * t2))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            z = 0.5 * zeta * np.sum(s * t2)
            t2 = t2 * (1 - eta * z * zeta * s) ** 2
            if not np.all(np.isfinite(t2)) or t2.max() > 1e12:
                return True
    return False


def _spread_limit_midpoint(lo, hi, w0, K=4000, steps=2000, seed=1e-9):
    """The N -> oo map of the spread model on K midpoint nodes of U(lo, hi) (a quadrature other than the
    module's Gauss-Legendre), theta_0^2 = 1 + seed sign(s): True if it diverges."""
    s = lo + (hi - lo) * (np.arange(K) + 0.5) / K
    S = np.r_[s, -s]
    th = 1 + seed * np.sign(S)
    eta = w0 / (2 * np.mean(S * S * th))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            th = th * (1 - eta * np.mean(S * th) * S) ** 2
            if not np.isfinite(th).all() or th.max() > 1e12:
                return True
    return False


@pytest.mark.parametrize("lo, hi", [(0.8, 1.2), (0.5, 1.5)])
def test_spread_upper_edge_against_another_quadrature(lo, hi):
    """The same limit on 4000 midpoint nodes: bounded 0.004 below the edge, divergent 0.004 above (the edge is
    the midpoint of a 0.005 grid step: within 0.0025 of the boundary)."""
    edge = L.derive_spread_upper_edge(lo, hi)
    assert not _spread_limit_midpoint(lo, hi, edge - 0.004) and _spread_limit_midpoint(lo, hi, edge + 0.004)
    # the midpoint of two neighbours of the grid 3.5025 : 0.005 : 4.5 (not a grid point)
    k = (edge - 3.5025) / 0.005 - 0.5
    assert abs(k - round(k)) < 1e-6


def test_spread_upper_edge_against_a_large_model_and_its_edges():
    """The N -> oo edge for s ~ U(0.8, 1.2) against GD of the model at N = 2^15 (2 seeds), 0.04 either side
    (the finite-N spread of the edge at N = 8192 is ~0.01)."""
    edge = L.derive_spread_upper_edge(0.8, 1.2)
    assert 3.85 < edge < 4.0
    for seed in (0, 1):
        assert not _quadratic_spread_gd(edge - 0.04, 2**15, seed) and _quadratic_spread_gd(edge + 0.04, 2**15, seed)
    assert L.derive_spread_upper_edge(1.0, 1.0) == pytest.approx(4.0, abs=3e-3)
    assert L.derive_spread_upper_edge(2.0, 2.0) == pytest.approx(4.0, abs=3e-3)  # scale-free
    assert math.isnan(L.derive_spread_upper_edge(1.0, 1.0, hi_w=3.9))  # none diverges on the grid
    assert math.isnan(L.derive_spread_upper_edge(1.0, 1.0, lo_w=4.1))  # the first diverges
    for lo, hi in ((0.0, 1.0), (1.2, 0.8), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="^lo, hi: expected 0 < lo <= hi"):
            L.derive_spread_upper_edge(lo, hi)


# -------------------------------------------------------------------- limits: homogeneous
def test_homogeneous_limit_at_slope_one_is_the_uv_model():
    """Slope 1 is the uv model: edge 4 (Theorem 1) and the uv end points (2e-3: K = 4096 directions)."""
    lim = L.homogeneous_limit(1.0, (2.3, 2.7))
    assert lim.slope == 1.0 and lim.upper == pytest.approx(4.0, abs=2e-3)
    assert lim.w0.tolist() == [2.3, 2.7] and lim.w0.dtype == np.float64
    for w, wf in zip(lim.w0, lim.final_eta_lam):
        assert wf == pytest.approx(L.uv_final_eta_lam(w), abs=2e-3)
    np.testing.assert_allclose(lim.dead, 0.5, atol=0.02)  # at slope 1 no side is special: units move little


def _homogeneous_quantile_grid(slope, w0, M=256, steps=4000, eps=1e-9):
    """The mean-field map on M^2 units at the Gaussian quantiles (u_i, v_j) = (q_i, q_j) (the radius not
    integrated out: a discretization other than the module's directions), seeded as there: (eta lambda, dead)."""
    from scipy.stats import norm

    q = norm.ppf((np.arange(M) + 0.5) / M)
    u, v = np.repeat(q, M), np.tile(q, M)
    s = np.where(u > 0, 1.0, slope)
    u, v = u + eps * s * v, v + eps * s * u
    lam = lambda u, v: np.mean(np.where(u > 0, 1.0, slope) ** 2 * (u * u + v * v))  # noqa: E731
    eta = w0 / lam(u, v)
    for _ in range(steps):
        s = np.where(u > 0, 1.0, slope)
        c = eta * np.mean(v * s * u)
        if abs(c) < 1e-13 and eta * lam(u, v) < 2:
            break
        u, v = u - c * s * v, v - c * s * u
    return eta * lam(u, v), np.mean(u < 0)


@pytest.mark.parametrize("slope, w0", [(0.0, 2.75), (0.5, 3.0)])
def test_homogeneous_limit_against_another_discretization(slope, w0):
    """The end point and dead fraction against 65536 units on a Gaussian quantile grid (within 0.01 and 0.005:
    the two discretizations agree to 4e-3 and 1e-4 here, while the seed moves the end point by ~0.01)."""
    lim = L.homogeneous_limit(slope, (w0,))
    wf, dead = _homogeneous_quantile_grid(slope, w0)
    assert lim.final_eta_lam[0] == pytest.approx(wf, abs=0.01)
    assert lim.dead[0] == pytest.approx(dead, abs=0.005)


def test_homogeneous_limit_against_wide_relu_and_leaky_nets():
    """The mean-field ReLU net (slope 0) against GD on a wide net, n = 16384, 2 seeds: the change of the dead
    fraction within 0.02 (spread ~ 1/sqrt(n)), the final eta lambda within 0.05 (it converges slowly in the seed);
    the leaky net's edge (slope 0.5) bracketed by a wide net (n = 4096) 0.15 either side."""
    lim = L.homogeneous_limit(0.0, (2.75,))
    assert math.isnan(lim.upper)  # the ReLU net does not diverge below eta lambda_0 = 6 in the limit
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        u, v = rng.normal(size=16384), rng.normal(size=16384)
        lam0 = np.sum((u > 0) * (u * u + v * v)) / u.size
        div, _, _, lam, u1 = _leaky_gd(u, v, 0.0, 2.75 / lam0, 3000)
        assert not div
        assert np.mean(u1 < 0) - np.mean(u < 0) == pytest.approx(lim.dead[0] - 0.5, abs=0.02)
        assert 2.75 / lam0 * lam == pytest.approx(lim.final_eta_lam[0], abs=0.05)
    edge = L.homogeneous_limit(0.5).upper
    assert 4 * 0.625 < edge < 6.0  # above the guaranteed 4 kappa_inf = 2 (1 + a^2)
    for seed in (2, 3):
        rng = np.random.default_rng(seed)
        u, v = rng.normal(size=4096), rng.normal(size=4096)
        s = np.where(u > 0, 1.0, 0.5)
        lam0 = np.sum(s * s * (u * u + v * v)) / u.size
        assert not _leaky_gd(u, v, 0.5, (edge - 0.15) / lam0, 3000)[0]
        assert _leaky_gd(u, v, 0.5, (edge + 0.15) / lam0, 3000)[0]
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="^slope: expected 0 <= slope <= 1"):
            L.homogeneous_limit(bad)
    assert L.homogeneous_limit(1.0, (2,)).w0.dtype == np.float64  # an integer eta lambda_0 is stored as float


# ---------------------------------------------------------------------- limits: with bias
def _bias_exact(rho, w0, N=10**12, steps=4000):
    """The model with bias at psi^2 = 1 from its definition, reduced exactly to A = |theta_+|^2, B = |theta_-|^2,
    p = a.phi (the quadratic part's modes are multiplied by 1 -+ eta z zeta): (diverged, final eta lambda)."""
    zeta = (N / 2) ** -0.5
    A, B = N / 2 + 0.7 * math.sqrt(N), N / 2 - 0.4 * math.sqrt(N)  # theta_0 ~ N(0, 1): fluctuations ~ sqrt(N)
    lq = zeta**2 * (A + B)
    F = rho / (1 - rho) * lq
    eta = w0 / (F + lq)
    p = 0.3
    for _ in range(steps):
        z = p + 0.5 * zeta * (A - B)
        if not abs(eta * zeta * z) < 1e4:
            return True, math.nan
        p, A, B = p - eta * z * F, A * (1 - eta * z * zeta) ** 2, B * (1 + eta * z * zeta) ** 2
    return False, eta * (F + zeta**2 * (A + B))


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6])
def test_bias_limits_against_the_exact_model_at_large_width(rho):
    """The width-free edge and end point against the exact (A, B, p) dynamics at N = 1e12: the exact model's
    first divergent eta lambda_0 on a 0.02 grid within 0.06 of the edge (the edge depends on the infinitesimal
    seed: 3.50-3.56 at rho = 0.3 for eps = 1e-6..1e-15 or N = 1e8..1e16, and convergent islands lie just above
    it); the end point near the lower edge within 1e-3."""
    edge = L.bias_upper_edge(rho)
    first = next(w for w in np.arange(edge - 0.12, edge + 0.2, 0.02) if _bias_exact(rho, w)[0])
    assert abs(first - edge) < 0.06
    assert edge > 4 / (1 + rho) - 1e-3  # the guaranteed range is inside (a sufficient condition)
    w = 2.0 + 0.3 * (edge - 2.0)
    div, final = _bias_exact(rho, w)
    assert not div and L.bias_final_eta_lam(rho, w) == pytest.approx(final, abs=1e-3)
    assert math.isnan(L.bias_final_eta_lam(rho, edge + 0.3))
    if rho == 0.0:
        assert edge == pytest.approx(4.0, abs=2e-3)  # the uv edge


def test_bias_upper_edge_errors_and_the_linear_limit():
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="^rho: expected 0 <= rho < 1"):
            L.bias_upper_edge(bad)
    assert 2.0 < L.bias_upper_edge(0.95) < 2.3  # the linear part takes over: the edge tends to 2
    assert L.bias_final_eta_lam(0.5, 1.5) == pytest.approx(1.5, abs=1e-6)  # lazy


@pytest.mark.parametrize("w0", [2.4, 3.0, 3.6])
def test_uv_peak_phase_mean_against_random_starts(w0):
    # Monte Carlo: runs of the paper's maps from g0 log-uniform over five periods of ln g0 (a whole number of
    # periods, so the phase is uniform); 400 runs: the peak's standard deviation over the phase is 1.3, 6.8 and
    # 14 % of its mean at these w0 (256 phases by hand), so the mean's standard error is below 0.75 % and 2 % is
    # nearly three of them
    rng = np.random.default_rng(3)
    period = 2 * math.log(w0 - 1)
    peaks = [_paper_uv_run(w0, math.exp(math.log(1e-14) + period * 5 * u), 400)[0].max() for u in rng.random(400)]
    assert L.uv_peak_phase_mean(w0) == pytest.approx(np.mean(peaks), rel=0.02)
    # the mean sits strictly inside the peak's range over the phase, which has no g0 -> 0 limit
    one = [L.derive_uv_peak(w0, g0=1e-14 * (w0 - 1) ** (2 * k / 16)).g_star for k in range(16)]
    assert min(one) < L.uv_peak_phase_mean(w0) < max(one) and max(one) - min(one) > 0.03 * max(one)
    # the same mean starting the period anywhere, and at a smaller g0 (the limit of the mean exists)
    assert L.uv_peak_phase_mean(w0, g0=1e-20) == pytest.approx(L.uv_peak_phase_mean(w0), abs=2e-3)


def test_uv_peak_phase_mean_at_three_and_errors():
    # at w0 = 3 by the maps (run by hand over 64 and 256 phases): the peak spans 0.659-0.831, mean 0.770
    assert L.uv_peak_phase_mean(3.0) == pytest.approx(0.770, abs=1e-3)
    assert L.uv_peak_phase_mean(3.0, nodes=1) == L.derive_uv_peak(3.0, g0=1e-14 * 4 ** 0.5).g_star
    for w0 in (2.0, 4.0):
        with pytest.raises(ValueError, match="^w0: expected 2 < w0 < 4"):
            L.uv_peak_phase_mean(w0)
    for nodes in (0, 2.5):
        with pytest.raises(ValueError, match="^nodes: expected a positive integer"):
            L.uv_peak_phase_mean(3.0, nodes=nodes)


# ------------------------------------------------------ written from the mutation run of session 5
def test_limit_runs_from_a_seed_below_the_stop_threshold_still_catapult():
    """A seed 1e-15 puts the first step's |c| (homogeneous net) and |Z| (model with bias) below the stop rule's
    1e-13: only a run that has settled below eta lambda = 2 may stop, so these runs still catapult and end where
    the 1e-9 seed does (the end point's limit as the seed -> 0; within 0.01 for the net, whose end point moves by
    ~0.004 between these seeds, and 1e-6 for the model with bias, 1e-7 here), below 2; at rho = 0 the model with
    bias is the uv model (its end point from the uv maps)."""
    for slope, w0 in ((0.0, 2.75), (0.5, 3.0)):
        tiny, usual = L._homogeneous_run(slope, w0, 4096, 4000, 1e-15), L._homogeneous_run(slope, w0, 4096, 4000, 1e-9)
        assert not tiny[0] and tiny[1] < 2.0 and tiny[1] == pytest.approx(usual[1], abs=0.01)
        assert tiny[2] == pytest.approx(usual[2], abs=0.005)
    for rho in (0.0, 0.3, 0.6):
        tiny = L.bias_final_eta_lam(rho, 2.45, eps=1e-15)
        assert tiny < 2.0 and tiny == pytest.approx(L.bias_final_eta_lam(rho, 2.45), abs=1e-6)
    assert L.bias_final_eta_lam(0.0, 2.45, eps=1e-15) == pytest.approx(L.uv_final_eta_lam(2.45), abs=1e-5)


def test_uv_peak_loss_grows_like_the_width():
    """peak_slope = 1: the mean peak loss f*^2 / 2 of the paper's maps over random starts (f0 log-uniform over
    five periods of the phase, 300 runs each) at n = 1e4 and 1e8 (eta lambda_0 = 3): its log-log slope in n is 1
    within 0.03 (each mean has a standard error below 0.5 %)."""
    w0, rng, means = 3.0, np.random.default_rng(4), []
    period = 2 * math.log(w0 - 1)
    for n in (1e4, 1e8):
        eta = w0 / 2.0
        peaks = []
        for u in rng.random(300):
            g0 = math.exp(math.log(1e-3 * eta**2 / n) + period * 5 * u)
            gs, _ = _paper_uv_run(w0, g0, 400)
            peaks.append(gs.max() * n / eta**2 / 2)  # f*^2 / 2 with f^2 = g n / eta^2
        means.append(np.mean(peaks))
    slope = math.log(means[1] / means[0]) / math.log(1e4)
    assert slope == pytest.approx(L.derive_uv_peak(w0).peak_slope, abs=0.03)


def test_grids_end_at_the_grid_point_nearest_hi():
    """An upper end off the grid: the last point tried is the grid point nearest it (worked by hand). bracket_edge
    on 2.0 : 0.1 : 2.56 tries 2.6 (a threshold at 2.57 is found), on 2.0 : 0.1 : 2.54 stops at 2.5 (NaN). The
    uv edge 4 (lo == hi, Theorem 1) lies between the spread grid's points 3.9975 and 4.0025 (3.5025 + 0.005 k):
    hi_w = 4.0005 (99.6 steps) ends at 4.0025 and finds it, hi_w = 3.9995 (99.4 steps) ends at 3.9975 (NaN)."""
    assert L.bracket_edge(lambda w: w > 2.57, 2.0, 2.56, 0.1) == pytest.approx(2.57, abs=1e-3)
    assert math.isnan(L.bracket_edge(lambda w: w > 2.57, 2.0, 2.54, 0.1))
    assert L.derive_spread_upper_edge(1.0, 1.0, hi_w=4.0005) == pytest.approx(4.0, abs=3e-3)
    assert math.isnan(L.derive_spread_upper_edge(1.0, 1.0, hi_w=3.9995))


def test_bracket_edge_bisects_until_the_bracket_is_at_most_tol():
    """By hand, with dyadic numbers (exact in floating point): grid 2.0, 2.5, 3.0, 3.5 (the first above 3.3),
    then [3.0, 3.5] -> 3.25 bounded -> [3.25, 3.5] -> 3.375 divergent -> [3.25, 3.375], of width 0.125 = tol:
    done, the midpoint 3.3125 after 6 calls. A bisection that does not stop raises (at 100 calls)."""
    calls = []

    def div(w):
        calls.append(w)
        if len(calls) > 100:
            raise RuntimeError("the bisection does not stop")
        return w > 3.3

    assert L.bracket_edge(div, 2.0, 6.0, 0.5, tol=0.125) == 3.3125
    assert calls == [2.0, 2.5, 3.0, 3.5, 3.25, 3.375]
    calls.clear()
    # grid 2.0 .. 3.4 (3.3 itself is not above 3.3): 15 calls, then 7 halvings (0.1 / 2^7 < 1e-3 < 0.1 / 2^6)
    assert abs(L.bracket_edge(div, 2.0, 6.0, 0.1) - 3.3) < 1e-3 and len(calls) == 15 + 7
