"""Which implementation answers a question, by the kind of model: the one place that looks at it.

Every public question (:func:`~reluverify.verify_robustness`, :func:`~reluverify.minimal_distortion`,
:func:`~reluverify.class_prototype`, :func:`~reluverify.universal_perturbation`,
:func:`~reluverify.max_confidence`, :func:`~reluverify.check_property`, :func:`~reluverify.infer`) is decorated with :func:`by_model`:
a :class:`~reluverify.model.trees.TreeEnsemble` goes to the function of the same name in
:mod:`reluverify.trees.problems`, anything else (a :class:`~reluverify.model.Network`) to the
network implementation below the decorator.
"""

from __future__ import annotations

import functools

from ..model.trees import TreeEnsemble


def by_model(func):
    """Send a tree ensemble to ``reluverify.trees.problems.<func.__name__>``."""

    @functools.wraps(func)
    def wrapper(model, *args, **kwargs):
        if isinstance(model, TreeEnsemble):
            from ..trees import problems

            return getattr(problems, func.__name__)(model, *args, **kwargs)
        return func(model, *args, **kwargs)

    return wrapper
