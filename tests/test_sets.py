"""The input sets (reluverify.sets): hull, membership, fit, projection and MILP encoding of
Box, LinfBall, L1Ball, L0Ball and Intersection, each checked against the definition of the set
(an independent oracle written here), on random sets and points from fixed seeds."""

import itertools

import numpy as np
import pytest

from reluverify import Network
from reluverify.bounds import compute_bounds
from reluverify.domain import Perturbation
from reluverify.engine.milp import NetworkMilp
from reluverify.errors import InputError
from reluverify.results import Status
from reluverify.sets import Box, Intersection, L0Ball, L1Ball, LinfBall, ball, check_norm
from reluverify.sets.box import L1Box, linear_max

NORMS = ("linf", "l1", "l0")
CLASSES = {"linf": LinfBall, "l1": L1Ball, "l0": L0Ball}
SEEDS = range(6)


# --------------------------------------------------------------------------- random sets and points

def random_valid(rng, n):
    lo = rng.uniform(-0.5, 0.5, n)
    return Box(lo, lo + rng.uniform(0.05, 1.5, n))


def random_center(rng, valid, on_bounds=0.15):
    n = valid.size
    c = valid.lower + rng.random(n) * (valid.upper - valid.lower)
    u = rng.random(n)  # some values on a bound: they move one way only
    return np.where(u < on_bounds, valid.lower, np.where(u > 1 - on_bounds, valid.upper, c))


def random_mask(rng, n):
    m = rng.random(n) < 0.7
    m[rng.integers(n)] = True
    return m


def random_radius(rng, norm, n):
    if norm == "l0":
        return int(rng.integers(1, n))
    return float(rng.uniform(0.01, 0.6) if norm == "linf" else rng.uniform(0.02, 1.5))


def make_ball(norm, seed, n=5, masked=True, bounded=True):
    rng = np.random.default_rng(1000 * seed + NORMS.index(norm))
    valid = random_valid(rng, n)
    c = random_center(rng, valid)
    mask = random_mask(rng, n) if masked else None
    r = random_radius(rng, norm, n) if bounded else None
    return ball(norm, c, r, valid=valid, mask=mask)


def candidates(s, rng, m=400):
    """Points around a ball ``s`` (members and not): uniform in a widened valid box, and sparse
    changes of the centre at every scale, mostly respecting the mask and the valid box."""
    if isinstance(s, Intersection):
        s = next(m for m in s.members if hasattr(m, "center"))
    c, valid, n = s.center, s.valid, s.center.size
    width = valid.upper - valid.lower
    out = [valid.lower - 0.1 * width + rng.random((m // 4, n)) * 1.2 * width]
    k = m - m // 4
    scale = 10.0 ** rng.uniform(-3, 0.3, (k, 1))
    change = rng.random((k, n)) < rng.uniform(0.1, 1.0, (k, 1))
    if s.mask is not None:
        keep_mask = rng.random((k, 1)) < 0.85
        change = np.where(keep_mask, change & s.mask, change)
    X = c + np.where(change, rng.normal(size=(k, n)) * scale, 0.0)
    clip = rng.random((k, 1)) < 0.85
    out.append(np.where(clip, np.clip(X, valid.lower, valid.upper), X))
    return np.vstack(out)


def oracle_ball(s, x) -> bool:
    """The definition: in the valid box, masked values unchanged, distance within the radius."""
    x = np.asarray(x, dtype=np.float64)
    c = s.center
    if x.shape != c.shape or not np.all(np.isfinite(x)):
        return False
    if np.any(x < s.valid.lower) or np.any(x > s.valid.upper):
        return False
    if s.mask is not None and np.any(x[~s.mask] != c[~s.mask]):
        return False
    if s.radius is None:
        return True
    d = x - c
    if s.norm == "linf":
        return float(np.max(np.abs(d))) <= s.radius
    if s.norm == "l1":
        return float(np.sum(np.abs(d))) <= s.radius
    return int(np.count_nonzero(d)) <= s.radius


def oracle(s, x) -> bool:
    if isinstance(s, Intersection):
        return all(oracle(m, x) for m in s.members)
    if isinstance(s, Box):
        x = np.asarray(x, dtype=np.float64)
        return bool(x.shape == s.lower.shape and np.all(np.isfinite(x)) and np.all(x >= s.lower)
                    and np.all(x <= s.upper))
    return oracle_ball(s, x)


def members(s, rng, m=400):
    X = candidates(s, rng, m)
    M = np.array([x for x in X if oracle(s, x)])
    assert len(M) >= 20, "too few members sampled: the test would be vacuous"
    return M


def l1_cap_set(seed, n=5):
    """An L1 ball intersected with an L-inf cap (and the valid box, a mask) through Perturbation."""
    rng = np.random.default_rng(77 + seed)
    valid = random_valid(rng, n)
    x0 = random_center(rng, valid)
    mask = random_mask(rng, n)
    cap = float(rng.uniform(0.05, 0.4))
    r = float(rng.uniform(0.1, 1.0))
    s = Perturbation(valid=valid, linf_cap=cap, mask=mask).input_set(x0, "l1", r)
    return s, x0, valid, mask, cap, r


# --------------------------------------------------------------------------- exact optima (oracles)

def knapsack_max(w, x0, lo, hi, radius=np.inf):
    """max w.x over {lo <= x <= hi, |x - x0|_1 <= radius} (lo <= x0 <= hi): a fractional knapsack."""
    room = np.where(w > 0, hi - x0, x0 - lo)
    gain = np.abs(w)
    left, total = radius, float(w @ x0)
    for i in np.argsort(-gain, kind="stable"):
        take = min(room[i], left)
        total += gain[i] * take
        left -= take
    return total


def l0_max(w, x0, lo, hi, k):
    gain = np.maximum(np.maximum(w * (hi - x0), w * (lo - x0)), 0.0)
    return float(w @ x0 + np.sum(np.sort(gain)[::-1][:k]))


def scipy_l1_max(w, x0, lo, hi, radius):
    """The same optimum by an LP over (x, t): t >= |x - x0|, sum t <= radius."""
    linprog = pytest.importorskip("scipy.optimize").linprog
    n = w.size
    eye = np.eye(n)
    A = np.vstack([np.hstack([eye, -eye]), np.hstack([-eye, -eye]), np.hstack([np.zeros(n), np.ones(n)])[None]])
    b = np.concatenate([x0, -x0, [radius]])
    res = linprog(np.concatenate([-w, np.zeros(n)]), A_ub=A, b_ub=b,
                  bounds=list(zip(lo, hi)) + [(0, None)] * n, method="highs")
    assert res.status == 0
    return -res.fun


# --------------------------------------------------------------------------- MILP helpers

def network_milp(s, seed=0):
    n = s.hull().size
    net = Network.random([n, 4, 2], seed=seed)
    bounds = compute_bounds(net, s.bound_domain(), "interval")
    return NetworkMilp(net, bounds, "highs", inputs=s)


def assert_solver_member(s, x, tol=1e-7):
    """A solver's point: in the set up to the solver's tolerance (its fit moves it by at most that)."""
    f = s.fit(x)
    assert s.contains(f), s.problem(f)
    assert np.max(np.abs(f - x)) <= tol, (x, f)


def solve(milp, w, sense):
    cols = milp.arrays.input_cols
    milp.model.set_objective({int(cols[i]): float(w[i]) for i in range(len(cols)) if w[i] != 0}, sense)
    res, x = milp.solve(30)
    assert res.status == Status.OPTIMAL, res.summary()
    return float(np.dot(w, x)), x


ALL_SETS = [pytest.param(norm, id=norm) for norm in NORMS] + [pytest.param("cap", id="l1-cap")]


def any_set(kind, seed):
    if kind == "cap":
        return l1_cap_set(seed)[0]
    return make_ball(kind, seed)


# =========================================================================== 1. hull

@pytest.mark.parametrize("kind", ALL_SETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_members_lie_in_the_hull(kind, seed):
    s = any_set(kind, seed)
    h = s.hull()
    M = members(s, np.random.default_rng(seed))
    assert np.all(M >= h.lower) and np.all(M <= h.upper)


@pytest.mark.parametrize("seed", SEEDS)
def test_linf_hull_is_tight_every_corner_is_a_member(seed):
    s = make_ball("linf", seed)
    h, c, r = s.hull(), s.center, s.radius
    m = s.mask
    assert np.array_equal(h.lower, np.where(m, np.maximum(s.valid.lower, c - r), c))
    assert np.array_equal(h.upper, np.where(m, np.minimum(s.valid.upper, c + r), c))
    for corner in itertools.product(*zip(h.lower, h.upper)):
        corner = np.array(corner)
        assert s.contains(corner), s.problem(corner)
        assert np.max(np.abs(corner - c)) <= r + 1e-15  # the definition, up to one rounding step


@pytest.mark.parametrize("seed", SEEDS)
def test_l1_hull_is_center_plus_minus_min_of_radius_and_valid_range(seed):
    s = make_ball("l1", seed)
    h, c, r, v, m = s.hull(), s.center, s.radius, s.valid, s.mask
    up = np.where(m, np.minimum(r, v.upper - c), 0.0)
    down = np.where(m, np.minimum(r, c - v.lower), 0.0)
    np.testing.assert_allclose(h.upper, c + up, rtol=0, atol=1e-15)
    np.testing.assert_allclose(h.lower, c - down, rtol=0, atol=1e-15)
    # tight: each bound is attained by a member (one value moved), and just beyond it is not
    for i in range(c.size):
        for bound, step in ((h.upper[i], 1e-9), (h.lower[i], -1e-9)):
            x = c.copy()
            x[i] = bound
            assert s.contains(x), s.problem(x)
            x[i] = bound + step
            assert not s.contains(x)


@pytest.mark.parametrize("seed", SEEDS)
def test_l0_hull_is_the_masked_valid_box(seed):
    s = make_ball("l0", seed)
    h, c, m = s.hull(), s.center, s.mask
    assert np.array_equal(h.lower, np.where(m, s.valid.lower, c))
    assert np.array_equal(h.upper, np.where(m, s.valid.upper, c))
    for i in range(c.size):
        for bound in (h.lower[i], h.upper[i]):
            x = c.copy()
            x[i] = bound
            assert s.contains(x)


@pytest.mark.parametrize("seed", SEEDS)
def test_intersection_hull_is_the_intersection_of_hulls(seed):
    s, x0, valid, mask, cap, r = l1_cap_set(seed)
    assert isinstance(s, Intersection) and len(s.members) == 2
    h = s.hull()
    reach = min(cap, r)
    assert np.array_equal(h.lower, np.where(mask, np.maximum(valid.lower, x0 - reach), x0))
    assert np.array_equal(h.upper, np.where(mask, np.minimum(valid.upper, x0 + reach), x0))
    # the bound domain keeps the L1 constraint on the intersection's box
    d = s.bound_domain()
    assert isinstance(d, L1Box) and d.radius == r
    assert np.array_equal(d.lower, h.lower) and np.array_equal(d.upper, h.upper)
    assert s.ball("l1").radius == r and s.ball("linf").radius == cap


def test_box_is_its_own_hull_and_samples_inside():
    rng = np.random.default_rng(3)
    b = random_valid(rng, 6)
    assert b.hull() is b and b.is_box
    S = b.sample(200, seed=4)
    assert all(b.contains(x) for x in S)
    assert np.array_equal(S[0], b.lower) and np.array_equal(S[1], b.upper)


def test_intersection_of_disjoint_sets_and_of_wrong_sizes_is_an_error():
    with pytest.raises(InputError, match="do not intersect"):
        Intersection([Box.uniform(3, 0, 1), Box.uniform(3, 2, 3)])
    with pytest.raises(InputError, match="different sizes"):
        Intersection([Box.uniform(3), Box.uniform(4)])
    with pytest.raises(InputError):
        Intersection([Box.uniform(3), np.zeros(3)])


# =========================================================================== 2. membership

@pytest.mark.parametrize("kind", ALL_SETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_membership_agrees_with_the_definition(kind, seed):
    s = any_set(kind, seed)
    X = candidates(s.members[0] if isinstance(s, Intersection) else s, np.random.default_rng(seed), 600)
    inside = [oracle(s, x) for x in X]
    assert 20 <= sum(inside) <= len(X) - 20, "the points must mix members and non-members"
    for x, want in zip(X, inside):
        p = s.problem(x)
        assert s.contains(x) == want, (x, p)
        assert (p is None) == want
        if p is not None:
            assert isinstance(p, str) and p


@pytest.mark.parametrize("norm", NORMS)
def test_problem_names_what_is_wrong(norm):
    s = ball(norm, [0.5, 0.5, 0.5, 0.5], 0.2 if norm != "l0" else 1, mask=[True, True, True, False])
    c = s.center
    assert s.problem(c) is None
    x = c.copy()
    x[0] = 1.2  # outside the valid box
    assert "value 0" in s.problem(x) and "outside" in s.problem(x)
    x = c.copy()
    x[3] = 0.55  # a masked value changed
    assert "value 3" in s.problem(x)
    x = c.copy()
    x[1] = np.nan
    assert "NaN" in s.problem(x)
    assert "values" in s.problem(np.zeros(3))
    x = c.copy()
    x[:3] += 0.15  # each value within 0.2, but together too far in L1 and L0
    if norm == "linf":
        assert s.problem(x) is None
    else:
        assert f"{norm} distance" in s.problem(x) and "radius" in s.problem(x)


def test_box_problem_names_the_value_outside():
    b = Box([0.0, -1.0, 0.0], [1.0, 1.0, 2.0])
    assert b.problem([0.5, 0.0, 1.0]) is None
    assert "value 1" in b.problem([0.5, -1.5, 1.0])
    assert "value 2" in b.problem([0.5, 0.0, 2.0000001])
    assert "NaN" in b.problem([0.5, np.inf, 1.0])
    assert not b.contains([0.5, -1.5, 1.0]) and b.contains([0.5, -1.5, 1.0], atol=0.5)


AWKWARD = [(0.3, 0.08), (0.1 + 0.2, 0.08), (0.7, 0.1 + 0.2), (1 / 3, 0.1), (0.15, 0.05 + 0.01),
           (0.9 - 0.6, 0.3 - 0.2), (0.45, 1e-3 * 7)]


@pytest.mark.parametrize("c, r", AWKWARD)
def test_linf_corners_with_awkward_floats_are_members(c, r):
    s = ball("linf", [c, 0.5, 1 - c], r)
    for corner in itertools.product(*zip(s.hull().lower, s.hull().upper)):
        assert s.contains(np.array(corner)), s.problem(np.array(corner))


def test_linf_every_hull_corner_is_a_member_for_many_random_centres():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = 3
        valid = random_valid(rng, n)
        c = random_center(rng, valid, on_bounds=0.05)
        r = float(rng.choice([rng.uniform(1e-4, 0.7), 0.1, 0.08, 0.1 + 0.2, 1 / 3]))
        s = ball("linf", c, r, valid=valid)
        for corner in itertools.product(*zip(s.hull().lower, s.hull().upper)):
            assert s.contains(np.array(corner)), (c, r, corner, s.problem(np.array(corner)))


@pytest.mark.parametrize("c, r", AWKWARD)
def test_l1_boundary_points_with_awkward_floats_are_members(c, r):
    s = ball("l1", [c, 0.5, 1 - c], r)
    for i in range(3):
        for sign in (1, -1):
            x = s.center.copy()
            x[i] += sign * r
            assert s.contains(x), s.problem(x)
    x = s.center.copy()  # the radius split over two values
    x[0] += r / 3
    x[1] -= r - r / 3
    assert s.contains(x), s.problem(x)
    x[2] += 1e-9 * r + 1e-12
    assert not s.contains(x)


def test_l0_counts_changed_values_exactly():
    rng = np.random.default_rng(5)
    c = rng.random(6)
    s = ball("l0", c, 2)
    for k in range(7):
        for _ in range(5):
            x = c.copy()
            idx = rng.choice(6, k, replace=False)
            x[idx] = np.where(c[idx] > 0.5, c[idx] - 1e-12, c[idx] + 1e-12)  # tiny changes count too
            assert s.contains(x) == (k <= 2)
            assert s.distance(x) == k


@pytest.mark.parametrize("norm", NORMS)
def test_distance_is_the_norm(norm):
    rng = np.random.default_rng(8)
    s = make_ball(norm, 2, masked=False)
    X = rng.normal(size=(50, 5))
    D = X - s.center
    want = {"linf": np.max(np.abs(D), axis=1), "l1": np.sum(np.abs(D), axis=1),
            "l0": np.count_nonzero(D, axis=1)}[norm]
    np.testing.assert_allclose(s.distance(X), want, rtol=1e-15)
    np.testing.assert_allclose([s.distance(x) for x in X], want, rtol=1e-15)


@pytest.mark.parametrize("norm", NORMS)
def test_unbounded_ball_is_the_masked_valid_box(norm):
    s = make_ball(norm, 3, bounded=False)
    assert s.radius is None
    h = s.hull()
    assert np.array_equal(h.lower, np.where(s.mask, s.valid.lower, s.center))
    assert np.array_equal(h.upper, np.where(s.mask, s.valid.upper, s.center))
    for x in candidates(s, np.random.default_rng(3), 200):
        assert s.contains(x) == h.contains(x)


# =========================================================================== 3. fit

@pytest.mark.parametrize("kind", ALL_SETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_fit_lands_in_the_set_and_keeps_members(kind, seed):
    s = any_set(kind, seed)
    rng = np.random.default_rng(seed)
    base = s.members[-1] if isinstance(s, Intersection) else s
    for x in candidates(base, rng, 300):
        f = s.fit(x)
        assert s.contains(f), (x, f, s.problem(f))
    exact = kind in ("linf", "l0")
    for x in members(s, rng):
        f = s.fit(x)
        if exact:
            assert np.array_equal(f, x)
        else:
            np.testing.assert_allclose(f, x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_l1_fit_pulls_a_point_just_outside_back_in(seed):
    rng = np.random.default_rng(seed)
    c = 0.25 + 0.5 * rng.random(6)
    r = float(rng.uniform(0.05, 0.2))
    s = ball("l1", c, r)
    for _ in range(20):
        d = rng.normal(size=6)
        d *= r / np.sum(np.abs(d))
        x = c + d * (1 + 1e-9)
        assert not s.contains(x)
        f = s.fit(x)
        assert s.contains(f), s.problem(f)
        assert np.sum(np.abs(f - c)) <= r * (1 + 1e-14)
        np.testing.assert_allclose(f, x, rtol=0, atol=1e-8)
    # a batch too
    X = c + rng.normal(size=(30, 6))
    F = s.fit(X)
    assert F.shape == X.shape and all(s.contains(f) for f in F)


def test_l0_fit_keeps_the_largest_changes():
    c = np.full(5, 0.5)
    s = ball("l0", c, 2)
    x = np.array([0.5 + 1e-10, 0.9, 0.5, 0.2, 0.5 - 1e-9])
    np.testing.assert_array_equal(s.fit(x), [0.5, 0.9, 0.5, 0.2, 0.5])


def test_box_fit_and_project_are_the_clip():
    rng = np.random.default_rng(2)
    b = random_valid(rng, 4)
    X = rng.normal(size=(40, 4))
    np.testing.assert_array_equal(b.project(X), np.clip(X, b.lower, b.upper))
    np.testing.assert_array_equal(b.fit(X[0]), np.clip(X[0], b.lower, b.upper))


# =========================================================================== 4. project

def _check_project(s, seed, atol=0.0):
    rng = np.random.default_rng(seed)
    base = s.members[-1] if isinstance(s, Intersection) else s
    X = candidates(base, rng, 300)
    P = s.project(X)
    assert P.shape == X.shape
    for x, p in zip(X, P):
        assert s.contains(p, atol=atol), (x, p, s.problem(p))
    # one point at a time gives the same answer
    np.testing.assert_allclose(s.project(X[0]), P[0], rtol=0, atol=1e-15)
    M = members(s, rng)
    np.testing.assert_allclose(s.project(M), M, rtol=0, atol=1e-12)
    return X, P, M


# A regression: L1Ball.project returned c + project_l1(X - c, lo - c, hi - c, r) unclipped, and c + (lo - c)
# can round one step below lo (the point then lay outside the set).


@pytest.mark.parametrize("kind", [pytest.param("linf", id="linf"), pytest.param("l0", id="l0"),
                                  pytest.param("l1", id="l1"),
                                  pytest.param("cap", id="l1-cap")])
def test_project_lands_exactly_in_the_set(kind):
    for seed in range(12):
        _check_project(any_set(kind, seed), seed)


def test_l1_project_reproducer():
    c = np.array([0.6434642766414633, 0.7450734399030086, 0.3212547402739406, 0.09660799256162905,
                  0.16329359740249866])
    lo = np.array([-0.04185149514152559, 0.2756029105273238, 0.11138918073215026, -0.07779205895930719,
                   0.15998878060612548])
    hi = np.array([0.6642421692845613, 0.9233847387520383, 0.5240982567152739, 0.26516094056735406,
                   0.750212837935408])
    s = ball("l1", c, 0.9828426002097124, valid=Box(lo, hi))
    x = np.array([-0.18239415244768653, 0.9663864495992194, 0.11754247916682974, 0.24981476891690726,
                  0.17073577847249377])
    p = s.project(x)
    assert s.contains(p), s.problem(p)


@pytest.mark.parametrize("seed", SEEDS)
def test_l1_project_is_the_nearest_point(seed):
    """In the set, and no member is closer (up to a rounding step)."""
    s = any_set("l1", seed)
    X, P, M = _check_project(s, seed, atol=1e-12)
    assert np.all(s.distance(P) <= s.radius * (1 + 1e-12))
    dist_p = np.linalg.norm(X - P, axis=1)
    dist_m = np.linalg.norm(X[:, None, :] - M[None, :, :], axis=2).min(axis=1)
    assert np.all(dist_p <= dist_m + 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_l1_project_matches_bisection_on_the_soft_threshold(seed):
    """The projection onto {x in hull, |x - c|_1 <= r}, against bisection on the soft threshold."""
    s = make_ball("l1", seed, masked=False)
    h, c, r = s.hull(), s.center, s.radius
    rng = np.random.default_rng(seed)
    for x in c + rng.normal(size=(20, 5)):
        v = x - c
        proj = lambda tau: np.clip(np.sign(v) * np.maximum(np.abs(v) - tau, 0), h.lower - c, h.upper - c)  # noqa: E731
        if np.sum(np.abs(proj(0.0))) <= r:
            want = c + proj(0.0)
        else:
            a, b = 0.0, float(np.max(np.abs(v)))
            for _ in range(200):
                m = 0.5 * (a + b)
                a, b = (m, b) if np.sum(np.abs(proj(m))) > r else (a, m)
            want = c + proj(b)
        np.testing.assert_allclose(s.project(x), want, rtol=0, atol=1e-12)


# =========================================================================== 5. encode / encode_distance

@pytest.mark.parametrize("kind", ALL_SETS + [pytest.param("box", id="box")])
@pytest.mark.parametrize("seed", range(2))
def test_encode_each_coordinate_reaches_its_hull_bound(kind, seed):
    s = random_valid(np.random.default_rng(seed), 4) if kind == "box" else any_set(kind, seed)
    h = s.hull()
    milp = network_milp(s, seed)
    for i in range(h.size):
        e = np.eye(h.size)[i]
        top, x = solve(milp, e, "max")
        assert top == pytest.approx(h.upper[i], abs=1e-7)
        assert_solver_member(s, x)
        bot, x = solve(milp, e, "min")
        assert bot == pytest.approx(h.lower[i], abs=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_encode_l1_linear_maximum_is_the_knapsack(seed):
    s = make_ball("l1", seed)
    h, c = s.hull(), s.center
    milp = network_milp(s, seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        w = rng.normal(size=c.size)
        want = knapsack_max(w, c, h.lower, h.upper, s.radius)
        assert want == pytest.approx(scipy_l1_max(w, c, h.lower, h.upper, s.radius), abs=1e-9)
        assert float(linear_max(w, 0.0, s.bound_domain())[0]) == pytest.approx(want, abs=1e-12)
        got, x = solve(milp, w, "max")
        assert got == pytest.approx(want, abs=1e-7)
        assert_solver_member(s, x)
        got, x = solve(milp, w, "min")
        assert got == pytest.approx(-knapsack_max(-w, c, h.lower, h.upper, s.radius), abs=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_encode_l1_with_linf_cap_is_the_knapsack_on_the_capped_box(seed):
    s, x0, valid, mask, cap, r = l1_cap_set(seed)
    h = s.hull()
    milp = network_milp(s, seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        w = rng.normal(size=x0.size)
        got, x = solve(milp, w, "max")
        assert got == pytest.approx(knapsack_max(w, x0, h.lower, h.upper, r), abs=1e-7)
        assert_solver_member(s, x)


@pytest.mark.parametrize("seed", range(4))
def test_encode_l0_maximum_is_the_k_largest_gains(seed):
    s = make_ball("l0", seed, n=6)
    h, c, k = s.hull(), s.center, int(s.radius)
    milp = network_milp(s, seed)
    got, x = solve(milp, np.ones(6), "max")
    assert got == pytest.approx(float(c.sum() + np.sum(np.sort(h.upper - c)[::-1][:k])), abs=1e-7)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        w = rng.normal(size=6)
        got, x = solve(milp, w, "max")
        assert got == pytest.approx(l0_max(w, c, h.lower, h.upper, k), abs=1e-7)
        assert s.contains(s.fit(x)) and np.count_nonzero(np.abs(x - c) > 1e-7) <= k


def test_encode_l1_and_l0_together_is_the_best_knapsack_over_k_values():
    rng = np.random.default_rng(21)
    valid = random_valid(rng, 5)
    x0 = random_center(rng, valid, on_bounds=0.0)
    s = Perturbation(valid=valid, l0_limit=2).input_set(x0, "l1", 0.6)
    h = s.hull()
    milp = network_milp(s, 1)
    for _ in range(3):
        w = rng.normal(size=5)
        want = -np.inf
        for S in itertools.combinations(range(5), 2):
            lo, hi = x0.copy(), x0.copy()
            lo[list(S)], hi[list(S)] = h.lower[list(S)], h.upper[list(S)]
            want = max(want, knapsack_max(w, x0, lo, hi, 0.6))
        got, x = solve(milp, w, "max")
        assert got == pytest.approx(want, abs=1e-7)


def _min_distance(s, a, b, fixed_terms=None):
    """min ||x - c|| over x in s.hull() with a.x >= b, exactly (s unbounded)."""
    h, c = s.hull(), s.center
    need = b - float(a @ c)
    if need <= 0:
        return 0.0
    room = np.where(a > 0, h.upper - c, c - h.lower)
    gain = np.abs(a) * room  # the most each value can add
    if s.norm == "l0":
        return int(np.argmax(np.cumsum(np.sort(gain)[::-1]) >= need - 1e-12)) + 1
    if s.norm == "l1":
        cost = 0.0
        for i in np.argsort(-np.abs(a), kind="stable"):
            step = min(room[i], need / abs(a[i])) if a[i] != 0 else 0.0
            cost += step
            need -= abs(a[i]) * step
            if need <= 1e-15:
                break
        return cost
    f = lambda e: float(np.sum(np.abs(a) * np.minimum(room, e)))  # noqa: E731  (the most a.x gains at L-inf e)
    lo, hi = 0.0, float(np.max(room))
    for _ in range(200):
        m = 0.5 * (lo + hi)
        lo, hi = (m, hi) if f(m) < need else (lo, m)
    return hi


@pytest.mark.parametrize("norm", NORMS)
def test_encode_distance_is_exact_at_the_optimum(norm):
    rng = np.random.default_rng(31 + NORMS.index(norm))
    n = 5
    valid = Box.uniform(n)
    c = rng.uniform(0.1, 0.6, n)
    c[3] = 1.0  # moves down only
    c[4] = 0.0  # moves up only
    s = ball(norm, c, None, valid=valid, mask=[True, True, True, True, True])
    # x_0 >= c_0 + 0.1: the distance is 0.1 (one change for L0)
    milp = network_milp(s)
    milp.minimise_distance(s)
    milp.model.add_rows(c[0] + 0.1, np.inf, [([int(milp.arrays.input_cols[0])], [1.0])])
    res, x = milp.solve(30)
    assert res.status == Status.OPTIMAL
    assert res.objective == pytest.approx(1.0 if norm == "l0" else 0.1, abs=1e-7)
    assert float(s.distance(s.fit(np.where(np.abs(x - c) > 1e-7, x, c)))) == pytest.approx(res.objective, abs=1e-7)
    # random half-spaces a.x >= b, against the exact minimum
    for _ in range(4):
        a = rng.normal(size=n)
        b = float(a @ c + rng.uniform(0.05, 0.6) * np.sum(np.abs(a) * np.where(a > 0, 1 - c, c)))
        milp = network_milp(s)
        milp.minimise_distance(s)
        milp.model.add_rows(b, np.inf, [([int(j) for j in milp.arrays.input_cols], a.tolist())])
        res, x = milp.solve(30)
        assert res.status == Status.OPTIMAL
        assert res.objective == pytest.approx(_min_distance(s, a, b), abs=1e-6)
        assert float(a @ x) >= b - 1e-6


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_encode_distance_cutoff_excludes_farther_points(norm):
    s = ball(norm, [0.5, 0.5, 0.5], None)
    milp = network_milp(s)
    milp.minimise_distance(s, cutoff=0.05)
    milp.model.add_rows(0.6, np.inf, [([int(milp.arrays.input_cols[0])], [1.0])])
    res, _ = milp.solve(30)
    assert res.status == Status.INFEASIBLE


# =========================================================================== 6. max_radius, with_radius, check_norm

# A regression: max_radius() returned r = c - lower, and the hull max(lower, c - r) can round above lower,
# so with_radius(max_radius()) missed a corner of the valid box (e.g. centre 0.3 in [0.01, 0.4]).


def _corners_of_masked_valid_box(s):
    lo = np.where(s.mask, s.valid.lower, s.center) if s.mask is not None else s.valid.lower
    hi = np.where(s.mask, s.valid.upper, s.center) if s.mask is not None else s.valid.upper
    return [np.array(k) for k in itertools.product(*zip(lo, hi))]


def _max_radius_balls(norm, count=100):
    for seed in range(count):
        s = make_ball(norm, seed, n=3, bounded=False)
        if seed % 2:  # one free value: the radius is that value's own range, where rounding shows
            s = ball(norm, s.center, None, valid=s.valid, mask=np.eye(3, dtype=bool)[seed % 3])
        yield s


@pytest.mark.parametrize("norm", ["linf",
                                  "l1"])
def test_with_max_radius_reproducer(norm):
    s = ball(norm, [0.3], None, valid=Box([0.01], [0.4]))
    big = s.with_radius(s.max_radius())
    assert big.contains([0.01]), big.problem([0.01])


@pytest.mark.parametrize("norm", ["linf",
                                  "l1",
                                  "l0"])
def test_with_max_radius_holds_every_corner_of_the_masked_valid_box(norm):
    for s in _max_radius_balls(norm):
        big = s.with_radius(s.max_radius())
        for corner in _corners_of_masked_valid_box(s):
            assert big.contains(corner), (s.center, corner, big.problem(corner))


@pytest.mark.parametrize("norm", NORMS)
def test_with_max_radius_holds_every_corner_up_to_rounding(norm):
    """Every corner within one rounding step of the ball (and, above, exactly in it)."""
    for s in _max_radius_balls(norm):
        big = s.with_radius(s.max_radius())
        for corner in _corners_of_masked_valid_box(s):
            assert big.contains(corner, atol=1e-15), (s.center, corner, big.problem(corner))


@pytest.mark.parametrize("norm", NORMS)
def test_max_radius_is_the_farthest_corner(norm):
    for seed in range(10):
        s = make_ball(norm, seed, n=4)
        lo = np.where(s.mask, s.valid.lower, s.center)
        hi = np.where(s.mask, s.valid.upper, s.center)
        far = max(float(s.distance(np.array(k))) for k in itertools.product(*zip(lo, hi)))
        assert s.max_radius() == pytest.approx(far, rel=1e-15)
        if far >= (2 if norm == "l0" else 1e-9):
            smaller = s.with_radius(far - 1 if norm == "l0" else 0.9 * far)
            assert not all(smaller.contains(np.array(k)) for k in itertools.product(*zip(lo, hi)))


@pytest.mark.parametrize("norm", NORMS)
def test_with_radius_keeps_centre_valid_and_mask(norm):
    s = make_ball(norm, 4)
    t = s.with_radius(2)
    assert type(t) is type(s) and t.radius == 2
    assert np.array_equal(t.center, s.center) and t.valid == s.valid and np.array_equal(t.mask, s.mask)


def test_check_norm_accepts_spellings_and_rejects_others():
    assert check_norm("L-inf") == "linf"
    assert check_norm("l∞") == "linf"
    assert check_norm("Linf") == "linf"
    assert check_norm("L1") == "l1"
    assert check_norm("L0") == "l0"
    for bad in ("l2", "", None, 1):
        with pytest.raises(InputError):
            check_norm(bad)
    assert isinstance(ball("L∞", [0.5], 0.1), LinfBall)
    with pytest.raises(InputError, match="unknown norm"):
        ball("l2", [0.5], 0.1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(center=[1.5, 0.5], radius=0.1), "outside its valid box"),
    (dict(center=[0.5, 0.5], radius=0.0), "positive"),
    (dict(center=[0.5, 0.5], radius=np.inf), "positive"),
    (dict(center=[0.5, 0.5], radius="a"), "number"),
    (dict(center=[0.5, np.nan], radius=0.1), "finite"),
    (dict(center=[0.5, 0.5], radius=0.1, mask=[False, False]), "no value"),
    (dict(center=[0.5, 0.5], radius=0.1, mask=[True]), "entries"),
    (dict(center=[0.5, 0.5], radius=0.1, mask=[2, 0]), "boolean"),
])
def test_ball_rejects_bad_arguments(kwargs, match):
    for norm in NORMS:
        kw = dict(kwargs)
        if norm == "l0" and kw["radius"] == 0.1:
            kw["radius"] = 1
        with pytest.raises(InputError, match=match):
            ball(norm, kw.pop("center"), kw.pop("radius"), **kw)
    with pytest.raises(InputError, match="whole"):
        L0Ball([0.5, 0.5], 1.5)


# =========================================================================== 7. Perturbation.input_set

def _perturbation_oracle(p, x0, norm, r, x):
    x = np.asarray(x, dtype=np.float64)
    valid = p.valid if p.valid is not None else Box.uniform(x0.size)
    d = x - x0
    dist = {"linf": lambda: np.max(np.abs(d)), "l1": lambda: np.sum(np.abs(d)), "l0": lambda: np.count_nonzero(d)}
    ok = bool(np.all(x >= valid.lower) and np.all(x <= valid.upper))
    if p.mask is not None:
        ok &= bool(np.all(d[~p.mask] == 0))
    if p.linf_cap is not None:
        ok &= bool(np.max(np.abs(d)) <= p.linf_cap)
    if p.l0_limit is not None:
        ok &= bool(np.count_nonzero(d) <= p.l0_limit)
    if p.budget is not None:
        ok &= bool(dist[p.budget_norm]() <= p.budget)
    if norm is not None and r is not None:
        ok &= bool(dist[norm]() <= r)
    return ok


PERTURBATIONS = [
    (dict(linf_cap=0.2, budget=0.5, budget_norm="l1"), "l1", 0.4),
    (dict(linf_cap=0.15), "l1", 0.5),
    (dict(l0_limit=2), "linf", 0.3),
    (dict(l0_limit=2, linf_cap=0.1), "l1", 0.25),
    (dict(budget=0.3, budget_norm="L1"), "linf", 0.2),
    (dict(budget=2, budget_norm="l0", linf_cap=0.3), "l1", 0.5),
    (dict(linf_cap=0.25, mask=True), "l0", 3),
    (dict(), "l1", 0.3),
    (dict(linf_cap=0.1, l0_limit=3, budget=0.2), None, None),
    (dict(mask=True), None, None),
]


@pytest.mark.parametrize("i", range(len(PERTURBATIONS)))
def test_perturbation_input_set_is_the_conjunction_of_its_limits(i):
    kwargs, norm, r = PERTURBATIONS[i]
    rng = np.random.default_rng(50 + i)
    n = 5
    valid = random_valid(rng, n)
    x0 = random_center(rng, valid)
    kwargs = dict(kwargs, valid=valid)
    if kwargs.get("mask") is True:
        kwargs["mask"] = random_mask(rng, n)
    p = Perturbation(**kwargs)
    s = p.input_set(x0, norm, r)
    n_limits = sum(kwargs.get(k) is not None for k in ("linf_cap", "l0_limit", "budget"))
    if n_limits + (norm is not None) > 1:
        assert isinstance(s, Intersection) and len(s.members) == n_limits + (norm is not None)
    # candidates around x0: sparse changes at every scale, respecting the mask and valid box mostly
    probe = ball("l1", x0, None, valid=valid, mask=p.mask)
    X = candidates(probe, rng, 800)
    want = [_perturbation_oracle(p, x0, norm, r, x) for x in X]
    assert 20 <= sum(want) <= len(X) - 20
    for x, w in zip(X, want):
        assert s.contains(x) == w, (x, s.problem(x))
    # the hull holds every member and is Perturbation.box when only box-shaped limits act
    h = s.hull()
    M = X[np.array(want)]
    assert np.all(M >= h.lower) and np.all(M <= h.upper)
    if norm is None:
        assert np.array_equal(h.lower, p.box(x0).lower) and np.array_equal(h.upper, p.box(x0).upper)
    # fit and project land inside
    for x in X[:200]:
        assert s.contains(s.fit(x), atol=1e-12)
    assert all(s.contains(q, atol=1e-12) for q in s.project(X[:200]))


def test_perturbation_limits_are_balls_around_x0():
    x0 = np.array([0.2, 0.4, 0.6])
    p = Perturbation(linf_cap=0.1, l0_limit=1, budget=0.3, budget_norm="l-inf")
    lim = p.limits(x0)
    assert [type(b) for b in lim] == [LinfBall, L0Ball, LinfBall]
    assert [b.radius for b in lim] == [0.1, 1, 0.3]
    assert all(np.array_equal(b.center, x0) for b in lim)
    assert isinstance(Perturbation().input_set(x0), LinfBall) and Perturbation().input_set(x0).radius is None
    with pytest.raises(InputError, match="outside its valid box"):
        p.input_set(np.array([0.2, 1.4, 0.6]), "l1", 0.1)
