"""Decide a VNN-LIB-style property: is some region of the unsafe set reachable?

:func:`check_property` is the engine's question in VNN-COMP's form: it builds a
:class:`~reluverify.engine.query.Query` (the network, the property; every region's input set is its
box) and hands it to :func:`reluverify.engine.decide.decide` (bounds, falsification, input
splitting or ReLU branch and bound, MILP). It answers ``sat`` (with a re-checked counterexample),
``unsat`` (proof), ``timeout`` or ``unknown``. Every ``sat`` is a float32-exact point re-checked by
:func:`reluverify.check.check_counterexample` (float64 forward pass exactly, the reference model
within VNN-COMP's tolerance).
"""

from __future__ import annotations

from ..solvers import DEFAULT_SOLVER
from ..tolerances import DEFAULT_TIME_LIMIT
from ..engine.decide import decide
from ..engine.query import Query
from ..model import Network
from ..results import PropertyResult
from ..spec import Property
from ..threads import limit_blas
from .common import resolve_reference
from .dispatch import by_model


@limit_blas
@by_model
def check_property(
    network: Network,
    prop: Property,
    *,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    reference=None,
    split: str | bool = "auto",
    bound_method: str = "lp",
    threads: int | None = None,
    seed: int = 0,
    attack: bool = True,
    branch: str | bool = "auto",
    tuning=None,
) -> PropertyResult:
    """Decide whether some input in ``prop`` reaches its unsafe set (see :mod:`reluverify.spec`).

    ``reference(x) -> y`` re-checks counterexamples with the original model (e.g. onnxruntime via
    :func:`reluverify.io.onnx.onnxruntime_forward`; a Keras model or a PyTorch module is run as it
    is). ``split``: ``"auto"`` splits input boxes of networks with at most ``SPLIT_MAX_INPUTS``
    inputs, ``True``/``False`` force it.
    ``bound_method`` is the strategy whose bounds the MILP uses (``"lp"``: symbolic, then LP on
    still-unstable neurons). ``attack=False`` skips the falsification stage (counterexamples then
    come only from splitting or the MILP). ``branch``: ``"auto"`` runs ReLU branch and bound
    (:mod:`reluverify.engine.branch`) where the input box is not split, ``True``/``False``
    force it. ``tuning``: the engine's speed-ups (:class:`~reluverify.engine.options.Tuning`; for
    ablations). Returns a :class:`~reluverify.results.PropertyResult`.
    """
    query = Query(network, prop, reference=resolve_reference(reference, None, network))
    return decide(query, solver=solver, time_limit=time_limit, split=split, bound_method=bound_method,
                  threads=threads, seed=seed, attack=attack, branch=branch,
                  **({} if tuning is None else {"tuning": tuning}))
