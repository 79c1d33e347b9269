"""Gurobi (``gurobipy``) through Pyomo's ``gurobi_direct`` interface; its pip licence is size-limited."""

from __future__ import annotations

from ..tolerances import CAREFUL_BIG_M
from .base import Backend, _default_tolerances

# Gurobi's pip package comes with a restricted licence for models up to this size.
GUROBI_LIMITED_MAX_VARIABLES = 2000
GUROBI_LIMITED_MAX_CONSTRAINTS = 2000


class GurobiBackend(Backend):
    """Gurobi: tolerances as ``IntFeasTol``/``FeasibilityTol``, ``MIPFocus 3`` for proofs,
    ``NumericFocus 3`` above :data:`~reluverify.tolerances.CAREFUL_BIG_M`; a model larger than the
    size-limited pip licence allows raises :class:`~reluverify.errors.LicenseLimitError`."""

    name = "gurobi"
    install_hint = "pip install 'reluverify[gurobi]'  (gurobipy; its pip licence is size-limited)"
    module = "gurobipy"
    contrib_name = "gurobi_direct"
    proof_emphasis = {"MIPFocus": 3}
    max_licensed_size = (GUROBI_LIMITED_MAX_VARIABLES, GUROBI_LIMITED_MAX_CONSTRAINTS)

    def licence_limited(self, availability) -> bool:
        return "Limited" in str(availability)

    def tolerance_options(self) -> dict:
        return _default_tolerances("IntFeasTol", "FeasibilityTol")

    def careful_options(self, big_m_value: float = 0.0) -> dict | None:
        return {"NumericFocus": 3} if big_m_value > CAREFUL_BIG_M else None

    def licence_error(self, size: dict):
        from ..errors import LicenseLimitError

        return LicenseLimitError(
            f"this model has {size['variables']} variables and {size['constraints']} constraints, more than "
            f"Gurobi's size-limited pip licence allows ({GUROBI_LIMITED_MAX_VARIABLES} variables, "
            f"{GUROBI_LIMITED_MAX_CONSTRAINTS} constraints); use solver='highs' (or 'cbc'), or install a full "
            "Gurobi licence"
        )

    def is_licence_failure(self, exc: Exception) -> bool:
        text = f"{type(exc).__name__}: {exc}"
        return "size-limited" in text or "10010" in text
