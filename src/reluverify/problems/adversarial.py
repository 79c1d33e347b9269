"""The network's big-M block in a Pyomo model around one input, with distance expressions and
swappable goals (:class:`AdversarialModel`): for users who add their own constraints, and for
:func:`~reluverify.problems.prototype.class_prototype`. The library's own adversarial questions
(:mod:`~reluverify.problems.distortion`, :mod:`~reluverify.problems.confidence`,
:mod:`~reluverify.problems.robustness`) run on the engine's array MILPs.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ..bounds import compute_bounds
from ..bounds.base import big_m
from ..check import SolverProof, distances, solver_proof
from ..domain import Box, L1Box, Perturbation
from ..formulation import add_network, linear_expr
from ..model import Network
from ..results import AdversarialResult, SolveResult, Status
from ..solvers import solve, solver_options
from ..tolerances import BUDGET_CHECK_REL_TOLERANCE


# --------------------------------------------------------------------------- the model
class AdversarialModel:
    """A network block over a perturbation's box, with distance expressions and swappable goals.

    Exposed so that users can add their own constraints before solving (``.model``, ``.net``).
    """

    def __init__(self, network: Network, x0: np.ndarray, perturbation: Perturbation, norms=(), bound_method="symbolic",
                 domain: Box | None = None):
        self.network = network
        self.x0 = x0
        self.pert = perturbation
        self.box = perturbation.box(x0)
        if domain is not None:  # a smaller domain (e.g. an L1 ball of the best distance so far)
            self.box = Box(np.maximum(self.box.lower, domain.lower), np.minimum(self.box.upper, domain.upper))
            if isinstance(domain, L1Box):
                domain = L1Box(self.box.lower, self.box.upper, center=domain.center, radius=domain.radius)
            else:
                domain = self.box
        self.bounds = compute_bounds(network, domain if domain is not None else self.box, bound_method)
        self.model = pyo.ConcreteModel(name="adversarial")
        self.net = add_network(self.model, network, self.bounds)
        self.xs = self.net.inputs
        self.free = np.flatnonzero(self.box.upper > self.box.lower)
        for i in np.flatnonzero(self.box.upper <= self.box.lower):
            self.xs[i].fix(float(x0[i]))
        self.dist = {}
        self.l0_binaries = None
        needed = set(norms)
        if perturbation.budget is not None:
            needed.add(perturbation.budget_norm)
        if perturbation.l0_limit is not None:
            needed.add("l0")
        for norm in sorted(needed):
            self.dist[norm] = self._add_distance(norm)
        if perturbation.budget is not None and perturbation.budget_norm != "linf":  # linf: in the box
            self.model.budget = pyo.Constraint(expr=self.dist[perturbation.budget_norm] <= perturbation.budget)
        if perturbation.l0_limit is not None:
            self.model.l0_limit = pyo.Constraint(expr=self.dist["l0"] <= perturbation.l0_limit)
        self._goal_count = 0

    # distance of the free inputs from x0, with as few variables as possible: a value that can only
    # move up (x0 at its lower bound) has |d| = x - x0, one that can only move down |d| = x0 - x.
    def _add_distance(self, norm: str):
        m, x0, lo, hi = self.model, self.x0, self.box.lower, self.box.upper
        free = self.free.tolist()
        up = [i for i in free if x0[i] <= lo[i]]
        down = [i for i in free if x0[i] >= hi[i]]
        both = [i for i in free if lo[i] < x0[i] < hi[i]]
        if norm == "l1":
            t = pyo.Var(both, bounds=lambda b, i: (0.0, float(max(hi[i] - x0[i], x0[i] - lo[i]))))
            m.add_component("abs_l1", t)
            m.add_component("abs_l1_pos", pyo.Constraint(both, rule=lambda b, i: t[i] >= self.xs[i] - float(x0[i])))
            m.add_component("abs_l1_neg", pyo.Constraint(both, rule=lambda b, i: t[i] >= float(x0[i]) - self.xs[i]))
            coefs = [1.0] * len(up) + [-1.0] * len(down) + [1.0] * len(both)
            vars_ = [self.xs[i] for i in up] + [self.xs[i] for i in down] + [t[i] for i in both]
            const = -float(np.sum(x0[up])) + float(np.sum(x0[down]))
            return linear_expr(coefs, vars_, const)
        if norm == "linf":
            m.eps_linf = pyo.Var(bounds=(0.0, float(np.max(hi - lo)) if free else 0.0))
            e = m.eps_linf
            ups, downs = up + both, down + both
            m.linf_pos = pyo.Constraint(ups, rule=lambda b, i: self.xs[i] - float(x0[i]) <= e)
            m.linf_neg = pyo.Constraint(downs, rule=lambda b, i: float(x0[i]) - self.xs[i] <= e)
            return e
        # l0: one binary per free value; it must be 1 for the value to move
        s = pyo.Var(free, within=pyo.Binary)
        m.add_component("changed", s)
        can_up = [i for i in free if hi[i] > x0[i]]
        can_down = [i for i in free if lo[i] < x0[i]]
        m.l0_up = pyo.Constraint(can_up, rule=lambda b, i: self.xs[i] - float(x0[i]) <= float(hi[i] - x0[i]) * s[i])
        m.l0_down = pyo.Constraint(can_down, rule=lambda b, i: float(x0[i]) - self.xs[i] <= float(x0[i] - lo[i]) * s[i])
        self.l0_binaries = s
        return linear_expr([1.0] * len(free), [s[i] for i in free])

    # ----- goals: a block of constraints replaced between solves
    def set_goal(self, rows) -> None:
        """Replace the goal constraints by ``rows`` (a list of Pyomo relational expressions)."""
        if self.model.component("goal") is not None:
            self.model.del_component("goal")
        rows = list(rows)
        self.model.goal = pyo.Constraint(range(len(rows)), rule=lambda b, k: rows[k])

    def gap_expr(self, i: int, j: int, margin: float):
        """The relation ``out_i - out_j >= margin``."""
        out = self.net.outputs
        return linear_expr([1.0, -1.0], [out[i], out[j]]) >= float(margin)

    def ratio_expr(self, c: int, j: int, ratio: float = 0.95):
        """The notebook's rule ``out_c <= ratio * out_j``."""
        out = self.net.outputs
        return linear_expr([float(ratio), -1.0], [out[j], out[c]]) >= 0.0

    def set_objective(self, expr, sense=pyo.minimize) -> None:
        if self.model.component("objective") is not None:
            self.model.del_component("objective")
        self.model.objective = pyo.Objective(expr=expr, sense=sense)

    def set_cutoff(self, norm: str, value: float | None) -> None:
        if self.model.component("cutoff") is not None:
            self.model.del_component("cutoff")
        if value is not None:
            self.model.cutoff = pyo.Constraint(expr=self.dist[norm] <= float(value))

    # ----- reading a point back
    def point(self) -> np.ndarray:
        """The solver's input point, snapped exactly into the allowed set."""
        x = np.array([self.x0[i] if v.fixed else (pyo.value(v) if v.value is not None else self.x0[i])
                      for i, v in enumerate(self.xs)], dtype=np.float64)
        x = np.clip(x, self.box.lower, self.box.upper)
        if self.l0_binaries is not None:
            for i in self.free.tolist():
                if pyo.value(self.l0_binaries[i]) < 0.5:
                    x[i] = self.x0[i]
        return self.fit_budget(x)

    def fit_budget(self, x: np.ndarray) -> np.ndarray:
        """Scale the perturbation down exactly onto an L1 budget it exceeds by solver tolerance."""
        p = self.pert
        if p.budget is not None and p.budget_norm == "l1":
            d = x - self.x0
            l1 = float(np.sum(np.abs(d)))
            if l1 > p.budget:
                x = np.clip(self.x0 + d * (p.budget / l1), self.box.lower, self.box.upper)
        return x

    def budget_problem(self, x: np.ndarray):
        """``None`` when ``x`` respects every limit of the perturbation, else what it breaks."""
        d = distances(x, self.x0)
        p = self.pert
        if p.budget is not None and d[p.budget_norm] > p.budget * (1 + BUDGET_CHECK_REL_TOLERANCE):
            return f"{p.budget_norm} distance {d[p.budget_norm]:.9g} exceeds the budget {p.budget}"
        if p.l0_limit is not None and d["l0"] > p.l0_limit:
            return f"{d['l0']} values changed, more than the limit {p.l0_limit}"
        return None

    def proof(self, sres: SolveResult) -> SolverProof:
        """What a solve of this model proves, by the one trust rule (:func:`reluverify.check.solver_proof`)."""
        return solver_proof(sres, big_m(self.bounds))

    def solve(self, solver, time_limit, threads, mip_gap=None, emphasis=None) -> SolveResult:
        if time_limit is not None and time_limit <= 0.01:  # the clock ran out while building
            return SolveResult(Status.TIME_LIMIT, solver, 0.0, message="no time left for the solver")
        opts = solver_options(solver, big_m(self.bounds))
        sres = solve(self.model, solver, time_limit=time_limit, threads=threads, mip_gap=mip_gap, emphasis=emphasis,
                     options=opts)
        return sres


def fill_witness(res: AdversarialResult, network: Network, x_adv: np.ndarray, norm: str | None):
    res.x_adv = x_adv
    res.adv_logits = network.forward(x_adv)
    res.adversarial_class = int(np.argmax(res.adv_logits))
    res.distances = distances(x_adv, res.x)
    res.distance = res.distances[norm] if norm else None
