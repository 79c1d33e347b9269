"""Robustness as an engine query: "does some allowed input change the class?"

:func:`class_change_query` turns a network, an input set and a class into a
:class:`~reluverify.engine.query.Query`: one region per wrong class ``j`` with the row
``out_c - out_j <= 0``, met *strictly* by a witness (a tie is no class change) and ruled out by a
proof only when ``out_j`` provably stays ``VERIFY_SLACK`` below ``out_c`` (the grey zone in between
is neither). A network whose last layer has a monotone activation (a ReLU on the logits, as in
ERAN's MNIST networks) is queried on its pre-activations ``z``: ``j`` wins exactly when
``z_j > z_c`` and ``z_j > 0``, two rows of the same region, so attacks and bounds see the logits'
slopes instead of a flat zero. :func:`verify_robustness` decides the query with the engine.
"""

from __future__ import annotations

import numpy as np

from ..check import class_gap, distances
from ..engine.decide import decide
from ..engine.options import DEFAULT_TUNING
from ..engine.query import Query
from ..errors import InputError
from ..model import Network
from ..results import AdversarialResult, PropertyVerdict, Verdict
from ..sets import ball, check_norm
from ..sets.base import InputSet
from ..spec import Property, Region
from ..threads import limit_blas
from .dispatch import by_model
from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_TIME_LIMIT, VERIFY_SLACK
from .common import check_time, class_index, resolve_reference


def logit_network(network: Network) -> tuple:
    """``(network on the pre-activations of its last layer, whether they differ)``: a monotone
    output activation (ReLU) is dropped; the class-change rows take care of it."""
    last = network.layers[-1]
    if last.affine:
        return network, False
    from dataclasses import replace

    if not last.monotone:  # e.g. a max pooling: an identity layer after it gives affine outputs, the same values
        from ..model.layers import Dense

        n = last.n_out
        return replace(network, layers=network.layers + (Dense(np.eye(n), np.zeros(n), "linear"),)), False
    return replace(network, layers=network.layers[:-1] + (last.without_activation(),),
                   name=network.name + " (pre-activations of the outputs)"), True


def class_change_query(network: Network, label: int, inputs: InputSet, *, target: int | None = None,
                       margin: float = 0.0, ratio: float | None = None, reference=None, extra=None) -> Query:
    """The query "does some input of ``inputs`` change the class ``label``?" (see the module
    docstring): untargeted, one region per wrong class ``j`` (``out_c - out_j <= -margin``); with
    ``target``, one region where ``target`` beats every other class by ``margin``; with ``ratio``
    (the course notebook's rule) the winner must also satisfy ``out_c <= ratio * out_j``. Witnesses
    meet the rows strictly; proofs rule out the rows raised by ``margin + VERIFY_SLACK``.
    ``reference(x)`` gives the source model's outputs (the rows hold on a ReLU-output model's
    outputs too); ``extra(x) -> str | None`` checks anything else (a budget ...)."""
    net, pre = logit_network(network)
    K, n = network.n_outputs, network.n_inputs
    c, e = label, np.eye(K)
    box = inputs.hull()

    def region(rows):
        a_y = np.array(rows)
        return Region(box.lower, box.upper, np.zeros((len(rows), n)), a_y, np.full(len(rows), -margin))

    regions = []
    for j in ([target] if target is not None else [j for j in range(K) if j != c]):
        if target is not None:
            rows = [e[k] - e[j] for k in range(K) if k != j]  # out_k - out_t <= -margin for every k
        else:
            rows = [e[c] - e[j]]  # out_c - out_j <= -margin
        if pre:
            rows.append(-e[j])  # -z_j <= -margin: the winner's output is positive (ReLU outputs)
        regions.append(region(rows))
    if ratio is not None:  # out_c - ratio * out_j <= 0, in the same regions (b stays 0 for this row)
        regions = [Region(r.lower, r.upper, np.vstack([r.a_x, np.zeros((1, n))]),
                          np.vstack([r.a_y, e[c] - ratio * e[j]]), np.append(r.b, 0.0))
                   for r, j in zip(regions, [target] if target is not None else [j for j in range(K) if j != c])]

    def changed(x):  # belt and braces: the class change on the network as given
        problem = extra(x) if extra is not None else None
        if problem:
            return problem
        lg = network.forward(x)
        gap = class_gap(lg, c) if target is None else -class_gap(lg, target)
        return None if gap > 0 and gap >= margin else \
            f"float64 forward pass of the network as given: class margin {gap:.3g} below {margin:.3g}"

    return Query(net, Property(n, K, tuple(regions), name=f"class change of {c}"),
                 inputs=None if inputs.is_box else inputs, strict=True, reference=reference, extra=changed,
                 proof_slack=VERIFY_SLACK + margin, reference_slack=margin)


def robustness_set(network: Network, x0: np.ndarray, eps, norm: str, perturbation) -> tuple:
    """``(input set, eps)``: the ``norm`` ball of radius ``eps`` around ``x0`` within what
    ``perturbation`` allows, with the argument checks of :func:`verify_robustness`."""
    from ..domain import Perturbation

    try:
        eps_value = float(eps)
    except (TypeError, ValueError):
        eps_value = float("nan")
    if not np.isfinite(eps_value) or eps_value <= 0:
        shown = repr(eps) if isinstance(eps, str) else eps
        raise InputError(f"eps must be a positive finite number, got {shown}")
    base = perturbation or Perturbation()
    if norm == "l1" and base.budget is not None:
        raise InputError("give the L1 radius as eps, not also as perturbation.budget")
    if norm == "l0" and eps_value != int(eps_value):
        raise InputError(f"for the L0 norm eps is a number of changed values (whole), got {eps_value}")
    return base.input_set(x0, norm, eps_value), eps_value


@limit_blas
@by_model
def verify_robustness(
    network: Network,
    x,
    eps: float,
    norm: str = "linf",
    *,
    label: int | None = None,
    perturbation=None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    threads: int | None = None,
    reference=None,
    bound_method="lp",
    attack: bool = True,
    split: str | bool = "auto",
    branch: str | bool = "auto",
    keras_model=None,
    tuning=None,
) -> AdversarialResult:
    """Prove that no input within ``eps`` of ``x`` (in ``norm``, inside the valid box and the limits
    of ``perturbation``) changes the class (``robust``), or return a re-checked counterexample
    (``not_robust``), else ``unknown``.

    The question goes through the engine (:func:`reluverify.engine.decide.decide`): label
    elimination by bounds, falsification, ReLU branch and bound (or input splitting for few inputs)
    where the set is a box, then an MILP per remaining class asking for ``out_j >= out_c -
    VERIFY_SLACK``, the input set encoded. ``attack=False`` skips falsification; ``split`` and
    ``branch`` (``"auto"``, True, False) choose the splitting stages as in
    :func:`~reluverify.problems.verification.check_property`; ``tuning``: a
    :class:`~reluverify.engine.options.Tuning` (e.g. ``Tuning(portfolio=True)``: the MILPs race branch
    and bound on a second core); ``bound_method`` is the bound strategy
    of the MILP stage (``"interval"``: of label elimination too). ``robust`` in VNN-COMP's words is ``unsat`` (no
    counterexample), ``not_robust`` is ``sat``.
    """
    from ..solvers import _check_name

    norm = check_norm(norm)
    _check_name(solver)
    check_time(time_limit)
    x0 = network.as_point(x)
    logits = network.forward(x0)
    c = int(np.argmax(logits)) if label is None else class_index(network, label, "label")
    inputs, eps = robustness_set(network, x0, eps, norm, perturbation)
    res = AdversarialResult(verdict=Verdict.UNKNOWN, problem="verify_robustness", norm=norm, x=x0,
                            original_class=c, logits=logits, eps=eps)
    reference = resolve_reference(reference, keras_model, network)
    query = class_change_query(network, c, inputs, reference=reference)
    from ..domain import Perturbation

    base = perturbation or Perturbation()
    norm_ball = ball(norm, x0, None, valid=base.valid_box(x0.size), mask=base.mask)  # measures a witness
    if class_gap(logits, c) > 0:  # the point itself may be a counterexample (a tie is not)
        from ..engine.query import Witnesses

        check = Witnesses(query)
        for region in query.prop.regions:
            chk = check(x0, region)
            if chk is not None:
                _witness(res, network, chk.x, norm_ball, reference is not None)
                res.message = "the input itself is not classified as the given label"
                return res
    out = decide(query, solver=solver, time_limit=time_limit, bound_method=bound_method, threads=threads,
                 attack=attack, split=split, branch=branch, tuning=tuning or DEFAULT_TUNING,
                 screen="interval" if bound_method == "interval" else "symbolic")
    res.time_s = out.time_s
    res.solves = list(out.stats.get("solves", []))
    res.stats = out.stats
    if out.verdict == PropertyVerdict.SAT:
        _witness(res, network, out.x, norm_ball, reference is not None)
        res.message = f"counterexample from the {_STAGE.get(out.method, out.method)}"
    elif out.verdict == PropertyVerdict.UNSAT:
        res.verdict = Verdict.ROBUST
        res.message = ("every wrong class eliminated by the bounds" if out.method == "bounds" else
                       f"every wrong class proven unreachable ({_STAGE.get(out.method, out.method)})")
    else:
        res.verdict = Verdict.UNKNOWN
        res.message = f"not decided ({out.verdict}{': ' + out.message if out.message else ''})"
    res.time_s = out.time_s
    return res


_STAGE = {"attack": "gradient attack", "split": "input splitting", "branch": "ReLU branch and bound",
          "milp": "MILP", "bounds": "bounds"}


def _witness(res: AdversarialResult, network: Network, x: np.ndarray, norm_ball, referenced: bool) -> None:
    res.verdict = Verdict.NOT_ROBUST
    res.x_adv = np.asarray(x, dtype=np.float64)
    res.adv_logits = network.forward(res.x_adv)
    res.adversarial_class = int(np.argmax(res.adv_logits))
    res.distances = distances(res.x_adv, res.x, norm_ball)
    res.distance = res.distances[norm_ball.norm]
    res.checks = {"forward": True, "keras": True if referenced else None}
