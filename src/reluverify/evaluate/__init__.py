"""Dataset runs: robustness of a whole test set (issue #17).

* :func:`evaluate_robustness` (:mod:`.run`): every (sample, eps) query, cheapest stage first
  (forward pass, batched attack, batched bounds, then the engine), monotone in eps;
* :mod:`.store`: the SQLite file rows go to as they finish (resumable, refuses mixed settings);
* :mod:`.executors`: serial, a local process pool, any ``concurrent.futures.Executor``, Dask;
* :mod:`.result`: :class:`EvaluationResult` (rows, summaries, ``to_pandas``, ``report``);
* :mod:`.report`: PNG pictures and a Markdown report.

Nothing here imports dask, tqdm, matplotlib or pandas until it is used.
"""

from .result import FIELDS, MISCLASSIFIED, EvaluationResult
from .executors import DASK_WORKER_CONFIG
from .run import evaluate_robustness
from .store import StoreMismatchError

__all__ = ["DASK_WORKER_CONFIG", "EvaluationResult", "FIELDS", "MISCLASSIFIED", "StoreMismatchError", "evaluate_robustness"]
