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
    (``benchmarks/portfolio.py`` measures it). ``branch_steps``: gradient steps of the optimised
    bound per domain in ReLU branch and bound (None: :data:`reluverify.engine.branch.OPT_STEPS`);
    fewer steps give each domain a looser bound but bound more domains per second (every value is
    sound: each step's bound is). ``branch_share``: the share of the time left that ReLU branch and
    bound may use (divided by the regions left; None: ``BRANCH_TIME_SHARE`` of
    :mod:`reluverify.engine.decide`, or its portfolio share); the MILP stage gets what it leaves."""

    leave_out_inactive: bool = True
    warm_start: bool = True
    portfolio: bool = False
    branch_steps: int | None = None
    branch_share: float | None = None

    def __post_init__(self):
        from ..errors import InputError

        if self.branch_steps is not None and (isinstance(self.branch_steps, bool) or not isinstance(
                self.branch_steps, int) or self.branch_steps < 0):
            raise InputError(f"branch_steps must be a whole number >= 0 or None, got {self.branch_steps!r}")
        if self.branch_share is not None and not (isinstance(self.branch_share, (int, float))
                                                  and 0 < self.branch_share <= 1):
            raise InputError(f"branch_share must be in (0, 1] or None, got {self.branch_share!r}")


DEFAULT_TUNING = Tuning()
