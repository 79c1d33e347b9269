"""Universal perturbations and class prototypes, checked against brute-force sampling.

Sampling can only give lower bounds of a maximum (or upper bounds of a minimum), so every test
states the direction it checks: the MILP answer must be at least as good as the best sample, and
the solver's proven bound must not be beaten by any sample.
"""

import warnings

import numpy as np
import pytest

from reluverify import Box, InputError, Network
from reluverify.check import target_gap
from reluverify.errors import DatasetError
from reluverify.problems.prototype import class_prototype
from reluverify.problems.universal import UniversalResult, delta_box, universal_perturbation
from reluverify.results import Status, Verdict
from reluverify.tolerances import DEFAULT_MARGIN

SIZES = [4, 6, 5, 3]


def tiny(seed):
    return Network.random(SIZES, seed=seed)


def images(seed, k=4, lo=0.1, hi=0.9):
    return np.random.default_rng(100 + seed).uniform(lo, hi, (k, SIZES[0]))


def fooled_matrix(net, X, labels, D, margin=DEFAULT_MARGIN):
    """``(m, K)`` booleans: does perturbation ``D[i]`` fool image ``k`` (by ``margin``, float64)."""
    out = np.zeros((len(D), len(X)), dtype=bool)
    for k in range(len(X)):
        logits = net.forward(X[k][None, :] + D)
        c = int(labels[k])
        gap = np.max(np.delete(logits, c, axis=1), axis=1) - logits[:, c]
        out[:, k] = (gap > 0) & (gap >= margin)
    return out


def sample_box(lo, hi, m, seed):
    """Uniform samples of the box plus random vertices (where L-inf optima tend to sit)."""
    rng = np.random.default_rng(seed)
    uni = lo + rng.random((m, lo.size)) * (hi - lo)
    ver = np.where(rng.random((m, lo.size)) < 0.5, lo, hi)
    return np.vstack([uni, ver])


def sample_l1(lo, hi, budget, m, seed):
    """Points of the L1 ball of radius ``budget`` inside ``[lo, hi]``: dense directions and the
    single-coordinate vertices (clipping only shrinks a point, so all stay in the ball)."""
    rng = np.random.default_rng(seed)
    n = lo.size
    w = rng.dirichlet(np.ones(n), m) * rng.uniform(0.5, 1.0, (m, 1)) * budget
    dense = np.clip(w * rng.choice([-1.0, 1.0], (m, n)), lo, hi)
    axes = np.clip(np.vstack([budget * np.eye(n), -budget * np.eye(n)]), lo, hi)
    return np.vstack([dense, axes])


def assert_consistent(net, X, r: UniversalResult, valid=None):
    """The reported numbers are exactly what a float64 forward pass of the perturbation gives."""
    valid = valid or Box.uniform(X.shape[1])
    assert r.n_images == len(X)
    assert r.fooled.shape == (len(X),)
    if r.delta is None:
        assert r.n_fooled == 0 and not r.fooled.any()
        return
    adv = X + r.delta[None, :]
    assert np.all(adv >= valid.lower) and np.all(adv <= valid.upper), "delta pushes an image out of its box"
    assert np.all(r.delta >= r.delta_lower) and np.all(r.delta <= r.delta_upper)
    np.testing.assert_array_equal(r.x_adv, adv)
    recount = fooled_matrix(net, X, r.labels, r.delta[None, :], r.margin)[0]
    np.testing.assert_array_equal(recount, r.fooled)
    assert r.n_fooled == int(recount.sum())
    np.testing.assert_array_equal(r.adv_classes, np.argmax(net.forward(adv), axis=1))
    ordn = np.inf if r.norm == "linf" else 1
    assert r.distance == pytest.approx(float(np.linalg.norm(r.delta, ord=ordn)), rel=0, abs=1e-15)
    if r.eps is not None:
        assert np.max(np.abs(r.delta)) <= r.eps
    if r.budget is not None:
        assert np.sum(np.abs(r.delta)) <= r.budget * (1 + 1e-12)


# --------------------------------------------------------------------------- universal, max_fooled
@pytest.mark.parametrize("seed", [1, 3, 9, 34])
@pytest.mark.parametrize("attack", [True, False], ids=["attack", "milp-only"])
def test_universal_linf_beats_sampling(seed, attack):
    net, X, eps = tiny(seed), images(seed), 0.2
    r = universal_perturbation(net, X, eps=eps, attack=attack)
    assert_consistent(net, X, r)
    lo, hi = delta_box(X, Box.uniform(4), eps)
    best_sampled = int(fooled_matrix(net, X, r.labels, sample_box(lo, hi, 10000, seed)).sum(axis=1).max())
    assert best_sampled >= 1  # these seeds were picked so that there is something to find
    assert r.verdict == Verdict.FOUND
    assert r.n_fooled >= best_sampled
    assert r.upper_bound >= r.n_fooled
    assert r.upper_bound >= best_sampled  # the proven bound is never beaten by a sample
    assert r.n_fooled == r.upper_bound  # tiny networks: solved to optimality
    assert "proven maximum" in r.message


@pytest.mark.parametrize("seed", [1, 27])
def test_universal_l1_beats_sampling(seed):
    net, X, budget = tiny(seed), images(seed), 0.6
    r = universal_perturbation(net, X, norm="l1", eps=budget)
    assert_consistent(net, X, r)
    lo, hi = delta_box(X, Box.uniform(4))
    best_sampled = int(fooled_matrix(net, X, r.labels, sample_l1(lo, hi, budget, 20000, seed)).sum(axis=1).max())
    assert r.n_fooled >= best_sampled
    assert r.upper_bound >= max(r.n_fooled, best_sampled)
    assert r.distance <= budget * (1 + 1e-12)


def test_universal_tiny_eps_is_proven_by_the_bounds():
    net, X = tiny(1), images(1)
    r = universal_perturbation(net, X, eps=1e-5)
    assert r.verdict == Verdict.ROBUST
    assert r.upper_bound == 0 and r.n_fooled == 0
    assert r.solves == []  # label elimination alone: no MILP
    assert "bounds alone" in r.message
    lo, hi = delta_box(X, Box.uniform(4), 1e-5)
    assert not fooled_matrix(net, X, r.labels, sample_box(lo, hi, 2000, 0)).any()


def test_universal_robust_only_from_a_solver_proof():
    # seed 6: the bounds leave classes open, the MILP proves that nothing can be fooled
    net, X = tiny(6), images(6)
    r = universal_perturbation(net, X, eps=0.2)
    assert r.verdict == Verdict.ROBUST
    assert len(r.solves) == 1
    assert r.solves[0].status in (Status.OPTIMAL, Status.INFEASIBLE)
    assert r.upper_bound == 0 and r.n_fooled == 0 and r.delta is None
    lo, hi = delta_box(X, Box.uniform(4), 0.2)
    assert not fooled_matrix(net, X, r.labels, sample_box(lo, hi, 10000, 6)).any()


def test_universal_delta_respects_the_intersection_of_the_image_boxes():
    # one image at 0 and one at 1 in coordinate 0: that coordinate cannot move at all
    net = tiny(3)
    X = images(3)
    X[0, 0], X[1, 0] = 0.0, 1.0
    X[2, 1] = 0.0  # coordinate 1 can only grow
    r = universal_perturbation(net, X, eps=0.3)
    assert r.delta_lower[0] == 0.0 and r.delta_upper[0] == 0.0
    assert r.delta_lower[1] == 0.0
    assert_consistent(net, X, r)
    if r.delta is not None:
        assert r.delta[0] == 0.0 and r.delta[1] >= 0.0


def test_universal_labels_and_already_fooled_images():
    net, X = tiny(1), images(1)
    pred = net.predict_class(X)
    wrong = (pred + 1) % 3
    r = universal_perturbation(net, X, wrong, mode="all")
    assert r.verdict == Verdict.FOUND and r.distance == 0.0 and r.n_fooled == len(X)
    assert_consistent(net, X, r)
    labels = pred.copy()
    labels[0] = wrong[0]
    r = universal_perturbation(net, X, labels, eps=1e-5)
    assert r.verdict == Verdict.FOUND and r.fooled[0] and r.n_fooled >= 1
    assert_consistent(net, X, r)


# --------------------------------------------------------------------------- universal, mode all
VALID_WIDE = Box.uniform(4, -2.0, 3.0)  # room around [0, 1] so that one delta can fool every image


@pytest.mark.parametrize("seed,norm", [(1, "linf"), (3, "l1"), (5, "linf")])
@pytest.mark.parametrize("attack", [True, False], ids=["attack", "milp-only"])
def test_universal_all_fools_every_image_and_beats_sampling(seed, norm, attack):
    net = tiny(seed)
    X = np.random.default_rng(100 + seed).uniform(0.0, 1.0, (3, 4))
    r = universal_perturbation(net, X, mode="all", norm=norm, valid=VALID_WIDE, attack=attack)
    assert r.verdict == Verdict.FOUND
    assert_consistent(net, X, r, VALID_WIDE)
    assert r.fooled.all() and r.n_fooled == 3
    assert r.distance_lower_bound is not None and r.distance_lower_bound <= r.distance
    assert r.distance <= r.distance_lower_bound * (1 + 1e-3) + 1e-9  # solved, up to the margin's push
    lo, hi = delta_box(X, VALID_WIDE)
    D = sample_box(lo, hi, 20000, seed)
    all_fooled = fooled_matrix(net, X, r.labels, D).all(axis=1)
    assert all_fooled.any()
    sampled = np.linalg.norm(D[all_fooled], ord=np.inf if norm == "linf" else 1, axis=1)
    assert sampled.min() >= r.distance_lower_bound  # no sample beats the proven lower bound
    assert r.distance <= sampled.min()


def test_universal_all_proven_impossible():
    # seed 0: no single perturbation inside the wide box fools all three images (solver proof)
    net = tiny(0)
    X = np.random.default_rng(100).uniform(0.0, 1.0, (3, 4))
    r = universal_perturbation(net, X, mode="all", valid=VALID_WIDE)
    assert r.verdict == Verdict.ROBUST
    assert r.delta is None and r.n_fooled == 0
    lo, hi = delta_box(X, VALID_WIDE)
    assert not fooled_matrix(net, X, r.labels, sample_box(lo, hi, 10000, 0)).all(axis=1).any()


# --------------------------------------------------------------------------- prototypes
def margins(net, P, cls):
    out = net.forward(P)
    return out[:, cls] - np.max(np.delete(out, cls, axis=1), axis=1), out


@pytest.mark.parametrize("seed,cls", [(1, 0), (1, 1), (4, 2), (9, 0)])
@pytest.mark.parametrize("objective", ["margin", "logit"])
def test_prototype_beats_sampling(seed, cls, objective):
    net = tiny(seed)
    r = class_prototype(net, cls, objective=objective)
    gaps, out = margins(net, Box.uniform(4).sample(20000, seed=seed), cls)
    if r.verdict == Verdict.ROBUST:  # proven: cls never wins anywhere in the box
        assert (gaps <= 0).all()
        return
    assert r.verdict == Verdict.FOUND and r.found
    assert r.problem == "class_prototype" and r.target == cls
    assert Box.uniform(4).contains(r.x_adv)
    lg = net.forward(r.x_adv)
    assert int(np.argmax(lg)) == cls and target_gap(lg, cls) >= DEFAULT_MARGIN
    value = target_gap(lg, cls) if objective == "margin" else float(lg[cls])
    assert r.objective == value  # recomputed from the point
    sampled = gaps.max() if objective == "margin" else out[gaps >= DEFAULT_MARGIN, cls].max()
    assert r.objective >= sampled
    assert r.objective_bound >= r.objective
    assert r.objective_bound >= sampled
    # tiny nets are solved to optimality, up to HiGHS's default relative gap (1e-4)
    assert r.objective_bound - r.objective <= 1e-4 * max(1.0, abs(r.objective))


@pytest.mark.parametrize("attack", [True, False], ids=["attack", "milp-only"])
def test_prototype_margin_never_wins_is_robust(attack):
    net = tiny(1)
    r = class_prototype(net, 2, attack=attack)
    gaps, _ = margins(net, Box.uniform(4).sample(20000, seed=2), 2)
    assert (gaps < 0).all()
    assert r.verdict == Verdict.ROBUST and r.x_adv is None
    assert r.objective_bound < 0 and r.objective_bound >= gaps.max()


@pytest.mark.parametrize("norm,budget", [("l1", 0.3), ("linf", 0.08), ("l1", 0.05)])
def test_prototype_within_budget_of_a_reference(norm, budget):
    net = tiny(9)
    ref = np.array([0.3, 0.6, 0.55, 0.2])
    cls = 0
    r = class_prototype(net, cls, around=ref, eps=budget, norm=norm)
    assert r.verdict == Verdict.FOUND
    np.testing.assert_array_equal(r.x, ref)
    d = r.x_adv - ref
    size = float(np.sum(np.abs(d))) if norm == "l1" else float(np.max(np.abs(d)))
    assert size == pytest.approx(r.distance, abs=1e-15)
    assert size <= budget * (1 + 1e-12)
    assert Box.uniform(4).contains(r.x_adv)
    assert net.predict_class(r.x_adv) == cls
    lo, hi = np.maximum(-ref, -budget), np.minimum(1 - ref, budget)
    D = sample_box(lo, hi, 10000, 1) if norm == "linf" else sample_l1(lo, hi, budget, 20000, 1)
    gaps, _ = margins(net, ref + D, cls)
    assert r.objective >= gaps.max()
    assert r.objective_bound >= r.objective


# --------------------------------------------------------------------------- typed errors
@pytest.mark.parametrize("xs", [np.zeros((0, 4)), [], np.zeros((2, 5)), np.zeros(3)], ids=["empty", "empty-list", "wide", "short"])
def test_universal_rejects_bad_images(xs):
    with pytest.raises(InputError):
        universal_perturbation(tiny(1), xs, eps=0.1)


@pytest.mark.parametrize("kw", [
    dict(eps=0.0), dict(eps=-0.1), dict(eps=float("nan")), dict(norm="l3", eps=0.1), dict(norm="l0", eps=1),
    dict(norm="l1", eps=-1.0), dict(norm="l1", eps=0.0), dict(norm="linf", eps=0.1, budget=0.5),
    dict(norm="l1", eps=0.5, linf_cap=-0.1), dict(norm="l1", budget=0.5, linf_cap=0.1),
    dict(mode="some", eps=0.1), dict(), dict(norm="l1"), dict(eps=0.1, margin=-1.0),
    dict(eps=0.1, valid=Box.uniform(3)),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "no-size")
def test_universal_rejects_bad_options(kw):
    with pytest.raises(InputError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # budget= is an old name (tested below)
        universal_perturbation(tiny(1), images(1), **kw)


def test_universal_old_l1_names_still_work_and_say_the_new_ones():
    net, X = tiny(1), images(1)
    with pytest.warns(DeprecationWarning, match="eps=B, linf_cap=CAP"):
        old = universal_perturbation(net, X, norm="l1", budget=0.4, eps=0.2, attack=False)
    new = universal_perturbation(net, X, norm="l1", eps=0.4, linf_cap=0.2, attack=False)
    assert old.verdict == new.verdict and old.n_fooled == new.n_fooled
    np.testing.assert_array_equal(old.delta_upper, new.delta_upper)
    assert np.all(new.delta_upper <= 0.2) and new.budget == 0.4


def test_universal_rejects_bad_labels_and_images_outside_the_box():
    net, X = tiny(1), images(1)
    with pytest.raises(InputError):
        universal_perturbation(net, X, [0, 1], eps=0.1)
    with pytest.raises(InputError):
        universal_perturbation(net, X, [0, 1, 2, 3], eps=0.1)
    with pytest.raises(InputError):
        universal_perturbation(net, X * 255, eps=0.1)


@pytest.mark.parametrize("kw", [
    dict(cls=3), dict(cls=-1), dict(cls=1.5), dict(cls=0, norm="l3", around=np.full(4, 0.5), eps=0.1),
    dict(cls=0, norm="l0", around=np.full(4, 0.5), eps=1), dict(cls=0, around=np.full(4, 0.5), eps=-0.1),
    dict(cls=0, eps=0.1), dict(cls=0, objective="prob"), dict(cls=0, around=np.full(5, 0.5)),
    dict(cls=0, around=np.full(4, 2.0), eps=0.1),
], ids=lambda kw: ",".join(f"{k}={v if not isinstance(v, np.ndarray) else 'array'}" for k, v in kw.items()))
def test_prototype_rejects_bad_options(kw):
    cls = kw.pop("cls")
    with pytest.raises(InputError):
        class_prototype(tiny(1), cls, **kw)


def test_prototype_old_names_still_work_and_say_the_new_ones():
    net, ref = tiny(9), np.array([0.3, 0.6, 0.55, 0.2])
    with pytest.warns(DeprecationWarning) as warned:
        old = class_prototype(net, 0, reference=ref, budget=0.3, attack=False)
    said = " ".join(str(w.message) for w in warned)
    assert "around=" in said and "eps=" in said
    new = class_prototype(net, 0, around=ref, eps=0.3, attack=False)
    assert old.verdict == new.verdict and old.objective == new.objective
    np.testing.assert_array_equal(old.x, ref)
    with pytest.warns(DeprecationWarning), pytest.raises(InputError, match="once"):
        class_prototype(net, 0, around=ref, reference=ref, eps=0.3)


# --------------------------------------------------------------------------- the seed network
# The default suite uses short time limits; the runs with the limits of the course notebook's
# follow-up (30 s and 60 s) are marked slow.
def _seed():
    from reluverify.zoo import seed_mlp

    return seed_mlp()


def _three_test_images():
    from reluverify.datasets import load_mnist

    try:
        return load_mnist().x_test[:3]
    except DatasetError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no MNIST data here: {exc}")


def _check_seed_prototype(time_limit):
    net = _seed()
    r = class_prototype(net, 8, time_limit=time_limit)
    assert r.verdict == Verdict.FOUND
    assert net.predict_class(r.x_adv) == 8 and r.adversarial_class == 8
    assert Box.uniform(784).contains(r.x_adv)
    assert r.objective == target_gap(net.forward(r.x_adv), 8)
    assert r.objective_bound is None or r.objective_bound >= r.objective
    return r


def _check_seed_universal(time_limit):
    net = _seed()
    X = _three_test_images().reshape(3, -1)
    r = universal_perturbation(net, X, eps=0.1, time_limit=time_limit)
    assert_consistent(net, X, r)
    recount = fooled_matrix(net, X, r.labels, r.delta[None, :] if r.delta is not None else np.zeros((1, 784)))[0]
    assert int(recount.sum()) == r.n_fooled
    assert r.upper_bound >= r.n_fooled
    assert r.verdict in (Verdict.FOUND, Verdict.UNKNOWN, Verdict.ROBUST)
    if r.verdict == Verdict.FOUND:
        assert r.n_fooled >= 1
    return r


def test_seed_prototype_of_8_short():
    _check_seed_prototype(time_limit=8)


def test_seed_universal_three_images_short():
    _check_seed_universal(time_limit=8)


@pytest.mark.slow
def test_seed_prototype_of_8():
    _check_seed_prototype(time_limit=30)


@pytest.mark.slow
def test_seed_universal_three_images():
    _check_seed_universal(time_limit=60)
