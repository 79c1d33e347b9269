"""Differential soundness on tiny convolutional networks (issue #15): reluverify against the
brute-force oracle (tests/oracle.py, which writes a convolution's matrix from its definition and
enumerates activation patterns), with the checks of tests/test_soundness_differential.py:
minimal distortion (L1 / L-inf, targeted or not, capped, masked), verify_robustness at radii
around the exact one, max_confidence.

Networks: a 1x4x4 (or 2x4x4) input, one or two Conv2D layers (2 channels, kernels 2-3, strides
1-2, zero padding 0-1, Gaussian or quantised kernels), ReLU, then a dense ReLU layer (sometimes)
and 2-3 logits. Max-pooling networks: a conv layer (ReLU or linear) then a MaxPool2D (windows
1-3 by 1-3, strides 1-2, padding 0-1; sometimes a pooling of the input first), a dense ReLU layer
(sometimes) and 2-3 logits, small enough for the oracle to enumerate every ReLU sign and every
window's winner. A few examples of each run by default; ``pytest -m slow`` runs
``$RELUVERIFY_CONV_SOUNDNESS_CASES`` (default 200) of each.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

import oracle
from reluverify import Network
from reluverify.model.layers import Conv2D, Dense, MaxPool2D
from test_soundness_differential import (
    EPS_FACTORS,
    Case,
    ask_oracle,
    check_confidence,
    check_minimal_distortion,
    check_verify,
)

FAST_CASES = 5
POOL_FAST_CASES = 15  # max-pooling networks (about 0.2 s each)
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


MAX_POOL_CHOICES = 10.0  # ReLUs + sum over windows of log2(entries): the oracle's tree stays small


def tiny_pool_cnn(rng: np.random.Generator) -> Network:
    while True:
        net = _draw_pool_cnn(rng)
        relus = sum(L.n_nonlinear for L in net.layers if not isinstance(L, MaxPool2D))
        windows = sum(np.log2(w.size).sum() for L in net.layers if isinstance(L, MaxPool2D)
                      for w in oracle.max_windows(L))
        if relus + windows <= MAX_POOL_CHOICES:
            return net


def _draw_pool(rng: np.random.Generator, shape: tuple) -> MaxPool2D | None:
    for _ in range(20):
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        if kh * kw == 1:
            continue
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        pads = tuple(int(rng.integers(0, 2)) if k > 1 else 0 for k in (kh, kw, kh, kw))
        if shape[1] + pads[0] + pads[2] >= kh and shape[2] + pads[1] + pads[3] >= kw:
            return MaxPool2D((kh, kw), shape, stride, pads)
    return None


def _draw_pool_cnn(rng: np.random.Generator) -> Network:
    c_in = int(rng.integers(1, 3))
    quantised = rng.random() < 0.3
    layers, shape = [], (c_in, 4, 4)
    if rng.random() < 0.2:  # a pooling of the input itself
        pool = _draw_pool(rng, shape)
        if pool is not None:
            layers.append(pool)
            shape = pool.output_shape
    while True:
        k = int(rng.integers(1, 4))
        stride = int(rng.integers(1, 3))
        pad = int(rng.integers(0, 2))
        if (shape[1] + 2 * pad - k) // stride + 1 >= 1 and (shape[2] + 2 * pad - k) // stride + 1 >= 1:
            break
    K = rng.normal(0, 1 / np.sqrt(shape[0] * k * k), (2, shape[0], k, k))
    b = rng.normal(0, 0.2, 2)
    if quantised:  # ties, zero taps
        K, b = np.round(2 * K) / 2, np.round(4 * b) / 4
    conv = Conv2D(K, b, shape, stride, pad, "relu" if rng.random() < 0.7 else "linear")
    layers.append(conv)
    shape = conv.output_shape
    pool = _draw_pool(rng, shape)
    if pool is not None:
        layers.append(pool)
        shape = pool.output_shape
    n = layers[-1].n_out
    if rng.random() < 0.5:
        layers.append(Dense(rng.normal(0, 1 / np.sqrt(n), (3, n)), rng.normal(0, 0.2, 3), "relu"))
        n = 3
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


def run_cases(n: int, seed: int, draw=tiny_cnn) -> Counter:
    stats = Counter()
    rng0 = np.random.default_rng(seed)
    for _ in range(n):
        rng = np.random.default_rng(int(rng0.integers(2**32)))
        net = draw(rng)
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


def test_oracle_windows_are_the_pooling_forward_pass():
    """The oracle's own windows (from the definition) reproduce the MaxPool2D layer's output."""
    rng = np.random.default_rng(1)
    for _ in range(10):
        net = tiny_pool_cnn(rng)
        for L in net.layers:
            if isinstance(L, MaxPool2D):
                h = rng.normal(size=(5, L.n_in))
                want = np.stack([h[:, w].max(axis=1) for w in oracle.max_windows(L)], axis=1)
                np.testing.assert_array_equal(L.forward(h), want)


def test_maxpool_differential_fast(record_property):
    stats = run_cases(POOL_FAST_CASES, seed=16, draw=tiny_pool_cnn)
    record_property("soundness", dict(stats))
    assert stats["examples"] == POOL_FAST_CASES
    assert stats["md_found"] >= 1 and stats["md_robust"] >= 1 and stats["verify_cases"] == POOL_FAST_CASES, stats


@pytest.mark.slow
def test_maxpool_differential_slow(record_property):
    stats = run_cases(SLOW_CASES, seed=1616, draw=tiny_pool_cnn)
    record_property("soundness", dict(stats))
    assert stats["examples"] == SLOW_CASES
    assert stats["verify_robust"] >= SLOW_CASES // 20 and stats["verify_not_robust"] >= SLOW_CASES // 10, stats
    assert stats["verify_unknown_avoidable"] <= max(2, SLOW_CASES // 50), stats
