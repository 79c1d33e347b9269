"""Options of the staged procedure that change how fast it runs, not what it proves.

They exist for ablations (``benchmarks/branch_vs_milp.py --ablation``) and for tests that check
that each speed-up leaves the bounds unchanged. Pass one to :func:`reluverify.engine.decide.decide`
or :func:`reluverify.check_property` as ``tuning=``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    """``leave_out_inactive``: neurons inactive in every box are left out of back-substitution (and,
    in ReLU branching, neurons inactive at the root out of the optimised bound); the bounds are the
    same either way, it is faster. ``warm_start``: in ReLU branch and bound, split domains start
    their optimised bound from the parent's slopes and multipliers. ``portfolio``: while ReLU
    branch and bound runs, the MILP stage's questions run in a second process
    (:mod:`reluverify.engine.portfolio`), on the second core; same proofs and checks, off by default
    (``benchmarks/portfolio.py`` measures it)."""

    leave_out_inactive: bool = True
    warm_start: bool = True
    portfolio: bool = False


DEFAULT_TUNING = Tuning()
