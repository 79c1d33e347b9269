"""The public API: every question at the top level, one name for one thing, one default time limit,
one verdict vocabulary with its VNN-COMP mapping, and the source model (``reference=``) confirming
witnesses on every question that reports one."""

import inspect
import warnings

import numpy as np
import pytest

import reluverify as rv
from reluverify import Network, Verdict
from reluverify.results import PropertyVerdict
from reluverify.tolerances import DEFAULT_TIME_LIMIT

QUESTIONS = ["verify_robustness", "minimal_distortion", "max_confidence", "universal_perturbation",
             "class_prototype", "check_property", "infer"]


def test_every_question_and_set_type_is_at_the_top_level():
    from reluverify import problems, sets
    from reluverify.problems.verification import check_property

    for name in QUESTIONS[:-2]:
        assert getattr(rv, name) is getattr(problems, name), name
    assert rv.check_property is check_property
    for name in ("InputSet", "Intersection", "L0Ball", "L1Ball", "LinfBall", "ball"):
        assert getattr(rv, name) is getattr(sets, name), name
    for name in ("Verdict", "PropertyVerdict", "AdversarialResult", "PropertyResult", "UniversalResult",
                 "Perturbation", "Box", "Tuning"):
        assert name in rv.__all__ and hasattr(rv, name), name
    assert all(hasattr(rv, name) for name in rv.__all__)


@pytest.mark.parametrize("name", QUESTIONS)
def test_one_default_time_limit(name):
    assert inspect.signature(getattr(rv, name)).parameters["time_limit"].default == DEFAULT_TIME_LIMIT


@pytest.mark.parametrize("name", ["verify_robustness", "minimal_distortion", "max_confidence", "class_prototype",
                                  "check_property"])
def test_the_source_model_is_called_reference_everywhere(name):
    params = inspect.signature(getattr(rv, name)).parameters
    assert "reference" in params and params["reference"].default is None


@pytest.mark.parametrize("name", ["verify_robustness", "max_confidence", "universal_perturbation", "class_prototype"])
def test_the_size_of_the_change_is_eps_in_norm(name):
    params = inspect.signature(getattr(rv, name)).parameters
    assert "eps" in params and "norm" in params


def test_verdict_vocabularies_map_both_ways_on_what_they_claim():
    assert Verdict.ROBUST.vnncomp() is PropertyVerdict.UNSAT
    assert Verdict.NOT_ROBUST.vnncomp() is PropertyVerdict.SAT
    assert Verdict.FOUND.vnncomp() is PropertyVerdict.SAT
    assert Verdict.UNKNOWN.vnncomp() is PropertyVerdict.UNKNOWN
    assert PropertyVerdict.SAT.verdict() is Verdict.NOT_ROBUST
    assert PropertyVerdict.UNSAT.verdict() is Verdict.ROBUST
    assert PropertyVerdict.TIMEOUT.verdict() is Verdict.UNKNOWN
    assert PropertyVerdict.UNKNOWN.verdict() is Verdict.UNKNOWN
    for v in PropertyVerdict:  # a round trip never turns an answer into a different claim
        assert v.verdict().vnncomp() in (v, PropertyVerdict.UNKNOWN)


def test_a_robustness_answer_and_the_property_answer_agree():
    net = Network.random([4, 8, 3], seed=3)
    x = np.array([0.4, 0.5, 0.6, 0.3])
    c = net.predict_class(x)
    for eps in (0.01, 0.5):
        res = rv.verify_robustness(net, x, eps, time_limit=30)
        region_rows = []
        for j in range(3):
            if j != c:
                a_y = np.zeros((1, 3))
                a_y[0, c], a_y[0, j] = 1.0, -1.0
                region_rows.append(rv.Region(np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1), np.zeros((1, 4)),
                                             a_y, np.zeros(1)))
        prop = rv.check_property(net, rv.Property(4, 3, tuple(region_rows)), time_limit=30)
        assert res.verdict.vnncomp() == prop.verdict or res.verdict == Verdict.UNKNOWN, (eps, res, prop)


# --------------------------------------------------------------------------- reference=
def _net_and_point():
    net = Network.random([4, 8, 3], seed=5)
    x = np.array([0.45, 0.5, 0.55, 0.5])
    return net, x, net.predict_class(x)


def _lying_reference(net, c):
    """A source model that always answers class ``c``: it confirms no class change."""
    def ref(x):
        out = np.zeros(net.n_outputs)
        out[c] = 1.0
        return out
    return ref


def _honest_reference(net):
    return lambda x: net.forward(np.asarray(x, dtype=np.float64))


def test_reference_confirms_or_rejects_the_witness_of_each_question():
    net, x, c = _net_and_point()
    t = (c + 1) % 3
    calls = {
        "verify_robustness": lambda ref: rv.verify_robustness(net, x, 1.0, reference=ref, time_limit=30),
        "minimal_distortion": lambda ref: rv.minimal_distortion(net, x, "linf", reference=ref, time_limit=30),
        "max_confidence": lambda ref: rv.max_confidence(net, x, t, eps=2.0, reference=ref, time_limit=30),
        "class_prototype": lambda ref: rv.class_prototype(net, t, reference=ref, time_limit=30),
    }
    for name, call in calls.items():
        honest = call(_honest_reference(net))
        assert honest.verdict in (Verdict.FOUND, Verdict.NOT_ROBUST), (name, honest)
        if name == "class_prototype":  # the prototype's "reference" must agree that t wins
            liar = call(_lying_reference(net, (t + 1) % 3))
        else:
            liar = call(_lying_reference(net, c))
        assert liar.verdict not in (Verdict.FOUND, Verdict.NOT_ROBUST, Verdict.ROBUST), (name, liar)


def test_old_keras_model_name_still_works_and_says_the_new_one():
    net, x, c = _net_and_point()

    class FakeKeras:  # anything with predict() is taken for a Keras model
        def predict(self, *a, **k):  # pragma: no cover - never called: keras_logits calls the model
            raise AssertionError

        def __call__(self, batch, training=False):
            return net.forward(np.asarray(batch, dtype=np.float64).reshape(-1, 4))

    with pytest.warns(DeprecationWarning, match="reference="):
        res = rv.verify_robustness(net, x, 1.0, keras_model=FakeKeras(), time_limit=30)
    assert res.verdict == Verdict.NOT_ROBUST and res.checks["keras"] is True
    with pytest.raises(rv.InputError, match="once"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rv.verify_robustness(net, x, 1.0, keras_model=FakeKeras(), reference=FakeKeras())
    with pytest.raises(rv.InputError, match="reference must be"):
        rv.max_confidence(net, x, (c + 1) % 3, eps=1.0, reference="model.h5")


def test_every_python_block_of_the_architecture_page_runs(tmp_path):
    """docs/architecture.md: its examples (two layer kinds, a norm, a solver backend) run as written,
    in order, in a fresh process (a kind registers itself once per process)."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tests)!r})\n"
        "from test_docs_examples import code_blocks, compiled\n"
        "ns = {'__name__': '__main__'}\n"
        "n = 0\n"
        "for b in code_blocks('docs/architecture.md'):\n"
        "    if b.lang == 'python':\n"
        "        exec(compiled(b), ns)\n"
        "        n += 1\n"
        "print('blocks run:', n)\n"
    )
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "blocks run: 6" in out.stdout, out.stdout[-2000:]
    assert "not_robust {'highs_plain'}" in out.stdout  # the new backend answered the engine's MILPs
