"""Differential soundness on tiny convolutional networks (issue #15): reluverify against the
brute-force oracle (tests/oracle.py, which writes a convolution's matrix from its definition and
enumerates activation patterns), with the checks of tests/test_soundness_differential.py:
minimal distortion (L1 / L-inf, targeted or not, capped, masked), verify_robustness at radii
around the exact one, max_confidence.

Networks: a 1x4x4 (or 2x4x4) input, one or two Conv2D layers (2 channels, kernels 2-3, strides
1-2, zero padding 0-1, Gaussian or quantised kernels), ReLU, then a dense ReLU layer (sometimes)
and 2-3 logits. A few examples run by default; ``pytest -m slow`` runs
``$RELUVERIFY_CONV_SOUNDNESS_CASES`` (default 200).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import oracle
from reluverify import Network
from reluverify.model.layers import Conv2D, Dense
from test_soundness_differential import (
    EPS_FACTORS,
    Case,
    ask_oracle,
    check_confidence,
    check_minimal_distortion,
    check_verify,
)

FAST_CASES = 5
SLOW_CASES = int(os.environ.get("RELUVERIFY_CONV_SOUNDNESS_CASES", "200"))


MAX_RELUS = 12  # the oracle enumerates activation patterns: keep the networks tiny


def tiny_cnn(rng: np.random.Generator) -> Network:
    while True:
        net = _draw_cnn(rng)
        if net.n_relu <= MAX_RELUS:
            return net


def _draw_cnn(rng: np.random.Generator) -> Network:
    c_in = int(rng.integers(1, 3))
    quantised = rng.random() < 0.3
    layers, shape = [], (c_in, 4, 4)
    for _ in range(int(rng.integers(1, 3))):
        while True:
            k = int(rng.integers(2, 4))
            stride = int(rng.integers(1, 3))
            pad = int(rng.integers(0, 2))
            out = (shape[1] + 2 * pad - k) // stride + 1
            if out >= 1:
                break
        K = rng.normal(0, 1 / np.sqrt(shape[0] * k * k), (2, shape[0], k, k))
        b = rng.normal(0, 0.2, 2)
        if quantised:  # ties, zero taps
            K, b = np.round(2 * K) / 2, np.round(4 * b) / 4
        conv = Conv2D(K, b, shape, stride, pad, "relu")
        layers.append(conv)
        shape = conv.output_shape
        if conv.n_out <= 8 or len(layers) == 2:
            break
    n = layers[-1].n_out
    if rng.random() < 0.5:
        layers.append(Dense(rng.normal(0, 1 / np.sqrt(n), (4, n)), rng.normal(0, 0.2, 4), "relu"))
        n = 4
    classes = int(rng.integers(2, 4))
    layers.append(Dense(rng.normal(0, 1 / np.sqrt(n), (classes, n)), rng.normal(0, 0.3, classes), "linear"))
    return Network(tuple(layers), input_shape=(c_in, 4, 4))


def shift_last_bias(rng, net: Network, x: np.ndarray) -> Network:
    """Raise one wrong logit's bias so that it wins somewhere in the box but not at ``x``."""
    c = int(np.argmax(net.forward(x)))
    last = net.layers[-1]
    for _ in range(8):
        out = net.forward(rng.random(net.n_inputs))
        j = int(np.argmax(np.where(np.arange(out.size) == c, -np.inf, out)))
        need = float(out[c] - out[j])
        if need <= 0:
            return net
        bias = last.bias.copy()
        bias[j] += need + float(rng.uniform(0.0, 0.5)) * min(need, max(1e-2, float(np.ptp(out))))
        shifted = Network(net.layers[:-1] + (Dense(last.weight, bias, "linear"),), input_shape=net.input_shape)
        if int(np.argmax(shifted.forward(x))) == c:
            return shifted
    return net


def run_cases(n: int, seed: int) -> Counter:
    stats = Counter()
    rng0 = np.random.default_rng(seed)
    for _ in range(n):
        rng = np.random.default_rng(int(rng0.integers(2**32)))
        net = tiny_cnn(rng)
        x = rng.integers(0, 5, net.n_inputs) / 4.0 if rng.random() < 0.3 else rng.random(net.n_inputs)
        net = shift_last_bias(rng, net, x)
        c = int(np.argmax(net.forward(x)))
        limit = str(rng.choice(["none", "none", "cap", "mask"]))
        target_pick = None if rng.random() < 0.7 or net.n_outputs == 2 else 0
        case = Case(seed=0, sizes=(), style="conv", x_style="", norm=str(rng.choice(["l1", "linf"])),
                    target_pick=target_pick, limit=limit, eps_factor=float(rng.choice(EPS_FACTORS)),
                    attack=bool(rng.random() < 0.5), bound_method=str(rng.choice(["symbolic", "interval"])),
                    with_confidence=bool(rng.random() < 0.3))
        truth = check_minimal_distortion(case, net, x, c, rng, stats)
        if case.target_pick is None and case.limit == "none":
            radius = truth.value
        else:
            radius = ask_oracle(oracle.min_distortion, net, x, c, case.norm, lo=np.zeros(x.size),
                                hi=np.ones(x.size)).value
        check_verify(case, net, x, c, stats, radius)
        if case.with_confidence:
            check_confidence(case, net, x, c, rng, stats)
        stats["examples"] += 1
    return stats


def test_oracle_matrix_of_a_conv_is_its_forward_pass():
    """The oracle's own convolution matrix (from the definition) reproduces the layer's forward."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        net = tiny_cnn(rng)
        conv = net.layers[0]
        h = rng.random((5, conv.n_in))
        np.testing.assert_allclose(h @ oracle.layer_matrix(conv).T + conv.bias, conv.preactivation(h), atol=1e-12)


def test_conv_differential_fast(record_property):
    stats = run_cases(FAST_CASES, seed=15)
    record_property("soundness", dict(stats))
    assert stats["examples"] == FAST_CASES
    assert stats["md_found"] >= 1 and stats["verify_cases"] == FAST_CASES, stats


@pytest.mark.slow
def test_conv_differential_slow(record_property):
    stats = run_cases(SLOW_CASES, seed=1515)
    record_property("soundness", dict(stats))
    assert stats["examples"] == SLOW_CASES
    assert stats["verify_robust"] >= SLOW_CASES // 20 and stats["verify_not_robust"] >= SLOW_CASES // 10, stats
    assert stats["verify_unknown_avoidable"] <= max(2, SLOW_CASES // 50), stats
