"""Tree ensembles through the same questions as networks (issue #16).

``formulation.py``: the Kantchelian MILP (arrays and a Pyomo block) with pruning by the input box;
``attack.py``: greedy threshold crossing; ``problems.py``: the public questions on tree ensembles
(reached through :mod:`reluverify.problems.dispatch`); ``oracle.py``: exact answers by enumerating
the cells of the threshold grid (tiny ensembles, for tests). The model itself is
:class:`reluverify.model.trees.TreeEnsemble`; importers are ``io/sklearn.py``, ``io/xgboost.py``,
``io/lightgbm.py``.
"""

from ..model.trees import Tree, TreeEnsemble, left_limit
from .formulation import add_tree_ensemble, leaf_bigm_arrays, tree_arrays

__all__ = ["Tree", "TreeEnsemble", "add_tree_ensemble", "leaf_bigm_arrays", "left_limit", "tree_arrays"]
