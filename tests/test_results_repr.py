"""Every result type prints as one short line, its summary() (issue #13, item 10)."""

import numpy as np
import pytest

import reluverify as rv
from reluverify import Network
from reluverify.problems import (
    class_prototype, max_confidence, minimal_distortion, universal_perturbation, verify_robustness,
)
from reluverify.runner import Score
from reluverify.spec import Property, Region

NET = Network.random([64, 12, 10], seed=0)
X = np.random.default_rng(0).random(64)
C = int(np.argmax(NET.forward(X)))
OTHER = (C + 1) % 10


def _property():
    a_y = np.zeros((1, 10))
    a_y[0, C], a_y[0, OTHER] = 1.0, -1.0
    return Property(64, 10, (Region(np.clip(X - 0.01, 0, 1), np.clip(X + 0.01, 0, 1), np.zeros((1, 64)), a_y,
                                     np.zeros(1)),))


RESULTS = {
    "infer": lambda: rv.infer(NET, X),
    "solve": lambda: rv.infer(NET, X).solve,
    "bounds": lambda: rv.compute_bounds(NET, rv.Box.uniform(64), "symbolic"),
    "verify_robustness": lambda: verify_robustness(NET, X, 0.01),
    "minimal_distortion": lambda: minimal_distortion(NET, X, "linf", time_limit=30),
    "max_confidence": lambda: max_confidence(NET, X, OTHER, eps=1.0),
    "universal_perturbation": lambda: universal_perturbation(NET, [X, X[::-1].copy()], eps=0.01),
    "class_prototype": lambda: class_prototype(NET, OTHER, time_limit=30),
    "check_property": lambda: rv.check_property(NET, _property(), time_limit=30),
    "property": _property,
    "region": lambda: _property().regions[0],
    "score": lambda: Score(3, 0, 1, 0, 30, [], {}),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_repr_is_one_short_line(name):
    res = RESULTS[name]()
    text = repr(res)
    assert "\n" not in text and len(text) < 400, text
    assert "array(" not in text
    if hasattr(res, "summary"):
        assert res.summary() in text
