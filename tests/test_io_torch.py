"""PyTorch importer (issue #15): rv.from_torch against torch's own forward pass, hostile models,
witnesses confirmed by torch, and ``.pt`` files through ``reluverify evaluate`` (issue #17)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import reluverify as rv
from reluverify.errors import InputError, ModelFileError, NetworkError, UnsupportedLayerError

HAVE_TORCH = importlib.util.find_spec("torch") is not None
# torch 2.13 calls torch.jit.script/save/load deprecated; TorchScript files are still what users have
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (pip install 'reluverify[torch]'); "
                                 "the PyTorch importer is compared with torch's own forward pass")
if HAVE_TORCH:
    import torch
    from torch import nn

    from reluverify.io.torch import torch_forward



def test_importing_reluverify_and_its_torch_importer_does_not_import_torch():
    code = ("import sys\nimport reluverify\nimport reluverify.io\nimport reluverify.io.torch\n"
            "from reluverify import from_torch\nfrom reluverify.io import torch_forward\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    roots = {str(pathlib.Path(p).resolve().parent) for p in rv.__path__}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sorted(roots) + [os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- random architectures
def _randomise_batch_norms(model, rng):
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.as_tensor(rng.normal(0, 0.5, n)))
                m.running_var.copy_(torch.as_tensor(rng.uniform(0.3, 2.0, n)))
                if m.affine:
                    m.weight.copy_(torch.as_tensor(rng.uniform(0.5, 1.5, n)))
                    m.bias.copy_(torch.as_tensor(rng.normal(0, 0.3, n)))
    return model


def random_dense(seed: int):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n = int(rng.integers(2, 9))
    mods, width = [], n
    if rng.random() < 0.3:
        mods.append(nn.BatchNorm1d(n))  # input normalisation: folded into the first Linear
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(2, 9))
        block = [nn.Linear(width, out, bias=bool(rng.random() < 0.8))]
        if rng.random() < 0.5:
            block.append(nn.BatchNorm1d(out, affine=bool(rng.random() < 0.7)))
        block.append(nn.ReLU())
        if rng.random() < 0.3:
            block.append(nn.Dropout(0.5))
        mods.append(nn.Sequential(*block) if rng.random() < 0.4 else block[0])
        if not isinstance(mods[-1], nn.Sequential):
            mods += block[1:]
        width = out
    mods.append(nn.Linear(width, int(rng.integers(2, 5))))
    if rng.random() < 0.3:
        mods.append(nn.Identity())
    return _randomise_batch_norms(nn.Sequential(*mods), rng).double().eval(), (n,)


def random_cnn(seed: int, maxpool: bool = True):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    c, h = int(rng.integers(1, 3)), int(rng.integers(6, 10))
    w = h + int(rng.integers(0, 2))
    shape = (c, h, w)
    mods = []
    for _ in range(int(rng.integers(1, 3))):
        co, k = int(rng.integers(1, 4)), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        choice = rng.integers(0, 4)
        stride = 1 if choice == 3 else int(rng.integers(1, 3))
        padding = [int(rng.integers(0, 2)), (int(rng.integers(0, 2)), int(rng.integers(0, 2))), "valid", "same"][choice]
        mods.append(nn.Conv2d(c, co, k, stride=stride, padding=padding, bias=bool(rng.random() < 0.8)))
        t = torch.zeros((1, c, h, w))
        h, w = mods[-1](t).shape[2:]
        c = co
        if rng.random() < 0.5:
            mods.append(nn.BatchNorm2d(c))
        mods.append(nn.ReLU())
        pool = rng.integers(0, 4)
        if pool == 1 and min(h, w) >= 2:
            mods.append(nn.AvgPool2d(2, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                                     divisor_override=[None, 3][int(rng.integers(0, 2))]))
        elif pool == 2 and maxpool and min(h, w) >= 2:
            mods.append(nn.MaxPool2d(2, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2))))
        elif pool == 3 and h % 2 == 0 and w % 2 == 0:
            mods.append(nn.AvgPool2d(2, ceil_mode=True))  # windows tile the input: ceil_mode changes nothing
        h, w = nn.Sequential(*mods).eval()(torch.zeros((1,) + shape)).shape[2:]
    mods.append(nn.Flatten())
    n = c * h * w
    if rng.random() < 0.5:
        hidden = int(rng.integers(2, 8))
        mods += [nn.Linear(n, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.2)]
        n = hidden
    mods.append(nn.Linear(n, int(rng.integers(2, 5))))
    return _randomise_batch_norms(nn.Sequential(*mods), rng).double().eval(), shape


def random_cnn1d(seed: int):
    """A random 1-D CNN: Conv1d (stride, int/'valid'/'same' padding, bias), BatchNorm1d, ReLU,
    MaxPool1d/AvgPool1d/AdaptiveAvgPool1d, sometimes read from a flat vector through Unflatten."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    c, length = int(rng.integers(1, 4)), int(rng.integers(6, 14))
    flat = bool(rng.random() < 0.3)
    shape = (c * length,) if flat else (c, length)
    mods = [nn.Unflatten(1, (c, length))] if flat else []
    for _ in range(int(rng.integers(1, 3))):
        co, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        choice = rng.integers(0, 3)
        stride = 1 if choice == 2 else int(rng.integers(1, 3))
        padding = [int(rng.integers(0, 2)), "valid", "same"][choice]
        mods.append(nn.Conv1d(c, co, k, stride=stride, padding=padding, bias=bool(rng.random() < 0.8)))
        c = co
        if rng.random() < 0.5:
            mods.append(nn.BatchNorm1d(c))
        relu_first = bool(rng.random() < 0.6)  # conv -> ReLU -> pool, or conv -> pool -> ReLU
        if relu_first:
            mods.append(nn.ReLU())
        length = nn.Sequential(*mods).eval()(torch.zeros((1,) + shape)).shape[2]
        pool = rng.integers(0, 4)
        if pool == 1 and length >= 2:
            mods.append(nn.AvgPool1d(2, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2))))
        elif pool == 2 and length >= 2:
            mods.append(nn.MaxPool1d(int(rng.integers(2, 4)), stride=int(rng.integers(1, 3)), padding=1))
        elif pool == 3 and length % 2 == 0:
            mods.append(nn.AdaptiveAvgPool1d(length // 2))
        if not relu_first:
            mods.append(nn.ReLU())
        length = nn.Sequential(*mods).eval()(torch.zeros((1,) + shape)).shape[2]
    mods.append(nn.Flatten())
    mods.append(nn.Linear(c * length, int(rng.integers(2, 5))))
    return _randomise_batch_norms(nn.Sequential(*mods), rng).double().eval(), shape


def _compare(model, shape, seed=0):
    net = rv.from_torch(model, shape)
    x = np.random.default_rng(seed).uniform(-1, 1, size=(8, int(np.prod(shape))))
    expected = torch_forward(model, x, shape)
    got = net.forward(x)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-6, (model, net)
    return net


@needs_torch
@pytest.mark.parametrize("seed", range(25))
def test_random_dense_models_match_torch(seed):
    model, shape = random_dense(seed)
    net = _compare(model, shape, seed)
    assert net.input_shape == shape
    assert all(layer.kind == "dense" for layer in net.layers)  # BatchNorm/Dropout leave no layer of their own
    assert len(net.layers) == sum(isinstance(m, nn.Linear) for m in model.modules())


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("seed", range(40))
def test_random_cnns_match_torch(seed):
    model, shape = random_cnn(seed)
    net = _compare(model, shape, seed)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(layer.kind == "conv2d" for layer in net.layers) >= 1 if convs else True


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("seed", range(30))
def test_random_1d_cnns_match_torch(seed):
    model, shape = random_cnn1d(seed)
    net = _compare(model, shape, seed)
    assert net.input_shape == shape
    kinds = [layer.kind for layer in net.layers]
    # Conv1d is a Conv2D of height 1 (as Keras's Conv1D), MaxPool1d a MaxPool2D: never a dense matrix
    n_conv = sum(isinstance(m, nn.Conv1d) for m in model.modules())
    assert kinds.count("conv2d") >= n_conv and kinds[-1] == "dense"
    assert kinds.count("maxpool2d") == sum(isinstance(m, nn.MaxPool1d) for m in model.modules())
    first = next(layer for layer in net.layers if layer.kind == "conv2d")
    assert first.kernel.shape[2] == 1 and first.input_shape[1] == 1  # (C_out, C, 1, k) on (C, 1, L)


@needs_torch
def test_conv1d_is_the_layer_the_keras_conv1d_importer_builds():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.BatchNorm1d(3), nn.ReLU(),
                          nn.MaxPool1d(2), nn.Flatten(), nn.Linear(3 * 3, 2))
    model = _randomise_batch_norms(model, np.random.default_rng(2)).double().eval()
    net = _compare(model, (2, 11))
    conv, pool, dense = net.layers
    assert (conv.kind, pool.kind, dense.kind) == ("conv2d", "maxpool2d", "dense")
    assert conv.input_shape == (2, 1, 11) and conv.kernel.shape == (3, 2, 1, 3) and conv.stride == (1, 2)
    assert conv.pads == (0, 1, 0, 1) and conv.activation == "relu"  # BatchNorm1d folded into it
    assert pool.kernel == (1, 2) and pool.input_shape == (3, 1, 6)
    scripted = rv.from_torch(torch.jit.script(model), (2, 11))
    x = np.random.default_rng(3).uniform(size=(3, 22))
    assert np.array_equal(scripted.forward(x), net.forward(x))


@needs_torch
def test_scripted_and_float32_models_read_like_the_module():
    model, shape = random_cnn(3)
    net = rv.from_torch(model, shape)
    scripted = rv.from_torch(torch.jit.script(model), shape)
    x = np.random.default_rng(1).uniform(size=(4, net.n_inputs))
    assert np.array_equal(net.forward(x), scripted.forward(x))
    f32 = model.float()  # the weights are read in float64 from a float32 model: it stays as it is
    assert next(f32.parameters()).dtype == torch.float32
    net32 = rv.from_torch(f32, shape)
    assert next(f32.parameters()).dtype == torch.float32
    assert np.max(np.abs(net32.forward(x) - torch_forward(f32, x, shape))) <= 1e-4


@needs_torch
def test_flatten_follows_torch_channels_first_order_and_input_shape_defaults_for_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 2), nn.Flatten(), nn.Linear(3 * 2 * 3, 2)).double().eval()
    net = _compare(model, (2, 3, 4))
    assert net.input_shape == (2, 3, 4) and net.n_inputs == 24
    dense = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2)).double().eval()
    assert rv.from_torch(dense).input_shape == (5,)
    # an image given as (C, H, W) reaches a Linear through Flatten, channel by channel
    x = np.arange(24.0)
    out = torch_forward(model, x, (2, 3, 4))
    assert np.allclose(net.forward(x.reshape(2, 3, 4)), out)


@needs_torch
def test_maxpool_maps_onto_the_maxpool_layer():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=2, padding=1),
                          nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double().eval()
    net = _compare(model, (1, 6, 6))
    assert [layer.kind for layer in net.layers] == ["conv2d", "maxpool2d", "dense"]
    # the common PyTorch order conv -> pool -> ReLU: the ReLU moves onto the conv (relu(max z) = max relu(z))
    swapped = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    net = _compare(swapped.double().eval(), (1, 6, 6))
    assert [layer.kind for layer in net.layers] == ["conv2d", "maxpool2d", "dense"] and net.n_relu > 0


# --------------------------------------------------------------------------- input normalisation
def _normalised(shape, mean, std):
    """``mean``/``std`` (scalars or one value per channel) spread over one flattened input."""
    per = (-1,) + (1,) * (len(shape) - 1)
    m = np.broadcast_to(np.reshape(mean, per) if np.ndim(mean) else mean, shape).reshape(-1)
    s = np.broadcast_to(np.reshape(std, per) if np.ndim(std) else std, shape).reshape(-1)
    return m, s


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("seed", range(12))
def test_mean_std_is_folded_into_the_first_layer(seed):
    """The imported network on raw inputs equals torch on (x - mean) / std: scalar (MNIST's
    0.1307/0.3081) or per-channel values, 2-D and 1-D CNNs and dense models; no layer is added."""
    rng = np.random.default_rng(100 + seed)
    model, shape = (random_cnn, random_cnn1d, random_dense)[seed % 3](seed)
    if seed % 2 and len(shape) > 1:
        mean, std = rng.uniform(-0.5, 0.5, shape[0]), rng.uniform(0.2, 2.0, shape[0])
    else:
        mean, std = 0.1307, 0.3081
    net = rv.from_torch(model, shape, mean=mean, std=std)
    plain = rv.from_torch(model, shape)
    assert [layer.kind for layer in net.layers] == [layer.kind for layer in plain.layers]
    assert any("(x - mean) / std" in note for note in net.notes)
    m, s = _normalised(shape, mean, std)
    x = rng.uniform(0.0, 1.0, size=(8, net.n_inputs))
    expected = torch_forward(model, (x - m) / s, shape)
    assert np.max(np.abs(net.forward(x) - expected)) <= 1e-6
    assert np.max(np.abs(net.forward(x) - plain.forward((x - m) / s))) <= 1e-9


@needs_torch
def test_mean_std_before_a_pooling_the_defaults_and_bad_values():
    torch.manual_seed(0)
    # nothing to fold into before the max pooling: the normalisation stays its own (exact) linear layer
    pooled = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(3, 2)).double()
    mean, std = np.array([0.2, -0.4]), np.array([0.5, 2.0])
    net = rv.from_torch(pooled.eval(), (2, 4, 4), mean=mean, std=std)
    m, s = _normalised((2, 4, 4), mean, std)
    x = np.random.default_rng(0).uniform(size=(5, 32))
    assert np.max(np.abs(net.forward(x) - torch_forward(pooled, (x - m) / s, (2, 4, 4)))) <= 1e-6
    dense = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).double().eval()
    only_std = rv.from_torch(dense, std=4.0)  # mean defaults to 0 (and std to 1), input_shape to (4,)
    assert np.max(np.abs(only_std.forward(x[:, :4]) - torch_forward(dense, x[:, :4] / 4.0, (4,)))) <= 1e-9
    assert np.max(np.abs(rv.io.from_torch(dense, mean=1.0).forward(x[:, :4])
                         - torch_forward(dense, x[:, :4] - 1.0, (4,)))) <= 1e-9
    for kwargs, words in (({"std": 0.0}, "from_torch: std must be nonzero"),
                          ({"mean": np.zeros(3)}, "does not fit the input shape (2, 4, 4)"),
                          ({"std": [1.0, np.inf]}, "std must be finite")):
        with pytest.raises(InputError, match=re.escape(words)):
            rv.from_torch(pooled, (2, 4, 4), **kwargs)


@needs_torch
def test_with_mean_std_a_normalising_reference_confirms_the_witness():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 2)).double().eval()
    net = rv.from_torch(model, (1, 4), mean=0.5, std=0.25)
    x = np.full(4, 0.5)
    c = int(np.argmax(net.forward(x)))
    res = rv.minimal_distortion(net, x, "linf", label=c, time_limit=30,
                                reference=lambda z: torch_forward(model, (z - 0.5) / 0.25, (1, 4)))
    assert str(res.verdict) == "found" and res.x_adv is not None, res
    assert int(np.argmax(torch_forward(model, (res.x_adv - 0.5) / 0.25, (1, 4)))) != c


@needs_torch
def test_with_mean_std_the_module_itself_is_a_normalising_reference():
    """reference=model after from_torch(model, mean=, std=) runs the module on (x - mean) / std (the
    network records the normalisation); a module that normalises by itself is run on raw inputs."""
    from reluverify.io.torch import torch_reference

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 2)).double().eval()
    mean, std = 0.5, 0.25
    net = rv.from_torch(model, (1, 4), mean=mean, std=std)
    assert net.input_normalisation is not None
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(1))
    x = np.full(4, 0.5)
    c = int(np.argmax(net.forward(x)))
    res = rv.minimal_distortion(net, x, "linf", label=c, time_limit=30, reference=model)
    assert str(res.verdict) == "found" and res.x_adv is not None, res
    assert calls and int(np.argmax(torch_forward(model, (res.x_adv - mean) / std, (1, 4)))) != c
    z = np.random.default_rng(1).uniform(0, 1, size=(5, 4))
    assert np.max(np.abs(torch_reference(model, net)(z) - net.forward(z))) <= 1e-9

    class SelfNormalising(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, t):
            return self.inner((t - mean) / std)
    wrapped = torch_reference(SelfNormalising(), net)
    assert wrapped.normalisation is None and np.max(np.abs(wrapped(z) - net.forward(z))) <= 1e-9
    plain = rv.from_torch(model, (1, 4))
    assert plain.input_normalisation is None and torch_reference(model, plain).normalisation is None


# --------------------------------------------------------------------------- hostile models
class _Custom(nn.Module if HAVE_TORCH else object):
    def forward(self, x):  # pragma: no cover - never run
        return x * 2


class _TwiceLinear(nn.Linear if HAVE_TORCH else object):
    def forward(self, x):  # pragma: no cover - never run
        return 2 * super().forward(x)


def _hostile_cases():
    conv = lambda **k: nn.Sequential(nn.Conv2d(1, 2, 3, **k), nn.ReLU(), nn.Flatten())  # noqa: E731
    conv1d = lambda **k: nn.Sequential(nn.Conv1d(1, 2, 3, **k), nn.ReLU(), nn.Flatten())  # noqa: E731
    return {
        "groups": (lambda: nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), (2, 5, 5), UnsupportedLayerError, "groups=2"),
        "dilation": (lambda: conv(dilation=2), (1, 7, 7), UnsupportedLayerError, "dilation=(2, 2)"),
        "padding_mode": (lambda: conv(padding=1, padding_mode="reflect"), (1, 5, 5), UnsupportedLayerError,
                         "padding_mode='reflect'"),
        "tanh": (lambda: nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2)), (3,), UnsupportedLayerError,
                 "Tanh module '1'"),
        "custom": (lambda: nn.Sequential(nn.Linear(3, 2), nn.Sequential(_Custom())), (3,), UnsupportedLayerError,
                   "_Custom module '1.0'"),
        "subclass": (lambda: nn.Sequential(_TwiceLinear(3, 2)), (3,), UnsupportedLayerError, "_TwiceLinear"),
        "softmax_hidden": (lambda: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=1), nn.Linear(2, 2)), (3,),
                           UnsupportedLayerError, "only as the very last module"),
        "avgpool_exclude_pad": (lambda: nn.Sequential(nn.AvgPool2d(2, padding=1, count_include_pad=False)), (1, 4, 4),
                                UnsupportedLayerError, "count_include_pad=False"),
        "avgpool_ceil": (lambda: nn.Sequential(nn.AvgPool2d(2, ceil_mode=True)), (1, 5, 5), UnsupportedLayerError,
                         "ceil_mode=True"),
        "adaptive": (lambda: nn.Sequential(nn.AdaptiveAvgPool2d(2)), (1, 5, 5), UnsupportedLayerError,
                     "does not divide"),
        "no_running_stats": (lambda: nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2, track_running_stats=False)),
                             (3,), UnsupportedLayerError, "track_running_stats=False"),
        "linear_wrong_shape": (lambda: nn.Sequential(nn.Linear(16, 2)), (1, 4, 4), InputError, "nn.Flatten"),
        "conv_wrong_channels": (lambda: conv(), (3, 5, 5), InputError, "1 input channels"),
        "conv_with_batch_dim": (lambda: conv(), (1, 1, 5, 5), InputError, "without the batch dimension"),
        "conv_on_a_vector": (lambda: conv(), (25,), InputError, "(C, H, W)"),
        "kernel_too_big": (lambda: conv(), (1, 2, 2), InputError, "does not fit"),
        "bad_input_shape": (lambda: conv(), (1, -5, 5), InputError, "positive integers"),
        "no_input_shape_for_conv": (lambda: conv(), None, InputError, "needs input_shape"),
        "conv1d_groups": (lambda: nn.Sequential(nn.Conv1d(2, 2, 3, groups=2)), (2, 7), UnsupportedLayerError,
                          "Conv1d module '0' is not supported: groups=2"),
        "conv1d_dilation": (lambda: conv1d(dilation=2), (1, 9), UnsupportedLayerError,
                            "Conv1d module '0' is not supported: dilation=(2,)"),
        "conv1d_padding_mode": (lambda: conv1d(padding=1, padding_mode="circular"), (1, 7), UnsupportedLayerError,
                                "Conv1d module '0' is not supported: padding_mode='circular'"),
        "maxpool1d_ceil": (lambda: nn.Sequential(nn.MaxPool1d(2, ceil_mode=True)), (1, 7), UnsupportedLayerError,
                           "MaxPool1d module '0' is not supported: ceil_mode=True"),
        "avgpool1d_ceil": (lambda: nn.Sequential(nn.AvgPool1d(2, ceil_mode=True)), (1, 7), UnsupportedLayerError,
                           "AvgPool1d module '0' is not supported: ceil_mode=True"),
        "maxpool1d_dilation": (lambda: nn.Sequential(nn.MaxPool1d(2, dilation=2)), (1, 7), UnsupportedLayerError,
                               "MaxPool1d module '0' is not supported: dilation=(2,)"),
        "avgpool1d_exclude_pad": (lambda: nn.Sequential(nn.AvgPool1d(2, padding=1, count_include_pad=False)), (1, 6),
                                  UnsupportedLayerError, "count_include_pad=False"),
        "adaptive1d": (lambda: nn.Sequential(nn.AdaptiveAvgPool1d(3)), (1, 7), UnsupportedLayerError,
                       "does not divide"),
        "conv1d_on_an_image": (lambda: conv1d(), (1, 5, 5), InputError, "(C, L)"),
        "conv1d_wrong_channels": (lambda: conv1d(), (3, 7), InputError, "1 input channels"),
        "conv3d": (lambda: nn.Sequential(nn.Conv3d(1, 1, 1)), (1, 2, 2, 2), UnsupportedLayerError,
                   "Conv3d module '0' is not supported"),
    }


@needs_torch
@pytest.mark.parametrize("case", list(_hostile_cases()) if HAVE_TORCH else [])
def test_hostile_models_give_typed_errors(case):
    make, shape, error, words = _hostile_cases()[case]
    with pytest.raises(error) as info:
        rv.from_torch(make().eval(), shape)
    assert words in str(info.value)


@needs_torch
def test_training_mode_is_refused_with_model_eval_advice_and_the_model_is_unchanged():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 9, 2))
    with pytest.raises(UnsupportedLayerError, match=r"BatchNorm2d module '1' is in training mode.*model\.eval\(\)"):
        rv.from_torch(model, (1, 5, 5))  # a fresh module is in training mode
    drop = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5), nn.Linear(2, 2))
    with pytest.raises(UnsupportedLayerError, match=r"Dropout module '1' is in training mode"):
        rv.from_torch(drop, (3,))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rv.from_torch(model, (1, 5, 5))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32 and not model.training


@needs_torch
def test_maxpool_with_dilation_indices_or_partial_windows_is_a_typed_error():
    conv = [nn.Conv2d(1, 2, 3), nn.ReLU()]
    for pool, words in ((nn.MaxPool2d(2, dilation=2), r"dilation=\(2, 2\)"),
                        (nn.MaxPool2d(2, return_indices=True), "return_indices"),
                        (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode=True")):
        with pytest.raises(UnsupportedLayerError, match=r"MaxPool2d module '2'.*" + words):
            rv.from_torch(nn.Sequential(*conv, pool).eval(), (1, 9, 9))


@needs_torch
def test_a_module_that_does_not_compute_what_its_class_says_is_caught_by_the_cross_check():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double().eval()
    model[1].forward = lambda x: 2 * torch.relu(x)  # an instance patch: the class still says ReLU
    with pytest.raises(NetworkError, match="differs from the PyTorch model's own forward pass"):
        rv.from_torch(model, (3,))
    model[1].register_forward_hook(lambda m, i, o: o)
    with pytest.raises(UnsupportedLayerError, match="forward hooks"):
        rv.from_torch(model, (3,))
    with pytest.raises(NetworkError, match="expects a torch.nn.Module"):
        rv.from_torch(np.zeros(3), (3,))


# --------------------------------------------------------------------------- questions, torch as reference
@needs_torch
def test_witnesses_on_a_torch_cnn_are_confirmed_by_torch():
    """verify_robustness and minimal distortion on a small torch CNN (BatchNorm, pooling) with the
    torch module as the reference that must confirm every witness."""
    model, shape = random_cnn(11)
    model = model.float()  # the module as users have it: float32
    net = rv.from_torch(model, shape)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(1))  # after the import: count torch's re-checks
    x = np.random.default_rng(0).random(net.n_inputs)
    c = int(np.argmax(net.forward(x)))
    res = rv.minimal_distortion(net, x, "linf", label=c, reference=model, time_limit=60)
    assert str(res.verdict) == "found" and res.x_adv is not None, res
    assert calls and int(np.argmax(torch_forward(model, res.x_adv, shape))) != c
    assert res.lower_bound <= np.max(np.abs(res.x_adv - x)) + 1e-9
    robust = rv.verify_robustness(net, x, eps=0.5 * res.lower_bound, label=c, reference=model, time_limit=60)
    assert str(robust.verdict) == "robust", robust

    class Stubborn(nn.Module):  # a "source model" that always answers c: it confirms no witness
        def forward(self, t):
            out = torch.zeros((t.shape[0], net.n_outputs))
            out[:, c] = 1.0
            return out
    liar = rv.verify_robustness(net, x, eps=2.0 * float(np.max(np.abs(res.x_adv - x))), label=c,
                                reference=Stubborn(), time_limit=5)
    assert str(liar.verdict) not in ("not_robust", "robust"), liar


# --------------------------------------------------------------------------- .pt files and the CLI
@needs_torch
def test_pt_files_whole_module_torchscript_and_state_dict(tmp_path):
    model, shape = random_cnn(5)
    torch.save(model, tmp_path / "whole.pt")
    torch.jit.save(torch.jit.script(model), tmp_path / "scripted.pth")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    x = np.random.default_rng(2).uniform(size=(3, int(np.prod(shape))))
    expected = torch_forward(model, x, shape)
    for f in ("whole.pt", "scripted.pth"):
        net = rv.from_torch(tmp_path / f, shape)
        assert np.max(np.abs(net.forward(x) - expected)) <= 1e-6 and net.name == f.split(".")[0]
    with pytest.raises(ModelFileError, match="state_dict.*torch.save\\(model, path\\)"):
        rv.from_torch(tmp_path / "weights.pt", shape)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="could not be loaded"):
        rv.from_torch(tmp_path / "junk.pt", shape)
    with pytest.raises(ModelFileError, match="does not exist"):
        rv.from_torch(tmp_path / "none.pt", shape)


@needs_torch
def test_check_property_takes_the_torch_module_as_reference():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    net = rv.from_torch(model)
    X = np.random.default_rng(0).random((200, 4))
    ys = net.forward(X)
    win = int(np.argmax(np.bincount(np.argmax(ys, axis=1), minlength=2)))  # the class that wins somewhere
    rows = np.zeros((1, 2))
    rows[0, win], rows[0, 1 - win] = -1.0, 1.0  # y[1 - win] - y[win] <= 0: "win" wins
    prop = rv.Property(4, 2, (rv.Region(np.zeros(4), np.ones(4), np.zeros((1, 4)), rows, np.zeros(1)),))
    res = rv.check_property(net, prop, reference=model, time_limit=30)
    assert str(res.verdict) == "sat", res
    assert int(np.argmax(torch_forward(model, res.x, (4,)))) == win

    class Other(nn.Module):  # a source model in which the other class always wins
        def forward(self, t):
            out = torch.zeros((t.shape[0], 2))
            out[:, 1 - win] = 10.0
            return out
    assert str(rv.check_property(net, prop, reference=Other(), time_limit=2).verdict) != "sat"  # unknown/timeout


@needs_torch
def test_evaluate_command_reads_pt_files(tmp_path, capsys):
    from reluverify.cli import main

    model, shape = random_cnn(2)
    model = model.float()
    torch.save(model, tmp_path / "cnn.pt")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    X = np.random.default_rng(3).random((3,) + shape[1:] if shape[0] == 1 else (3,) + shape)
    y = np.argmax(torch_forward(model, X.reshape(3, -1), shape), axis=1)  # the model's own classes
    np.savez(tmp_path / "data.npz", x_test=X, y_test=y)
    argv = ["evaluate", str(tmp_path / "cnn.pt"), "--data", str(tmp_path / "data.npz"), "--eps", "0.001",
            "--workers", "1", "--quiet", "--time-limit", "30"]
    assert main(argv + ["--input-shape", ",".join(map(str, shape))]) == 0
    out = capsys.readouterr().out
    assert "| 0.001 | 3 |" in out
    assert main(argv) == 2  # a convolutional model: the shape of one input is needed
    assert "--input-shape" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "weights.pt"), "--eps", "0.1", "--input-shape", "1,6,6"]) == 2
    assert "state_dict" in capsys.readouterr().err
    assert main(["evaluate", "seed", "--eps", "0.1", "--input-shape", "1,28,28"]) == 2
    assert "--input-shape is for PyTorch" in capsys.readouterr().err
    assert main(argv + ["--input-shape", "1,x"]) == 2
    assert "positive integers" in capsys.readouterr().err


@needs_torch
def test_evaluate_command_checks_counterexamples_with_the_pt_module(tmp_path, capsys):
    """`reluverify evaluate MODEL.pt` hands the loaded module to evaluate_robustness as reference=:
    the same module confirms its counterexamples; a file whose module disagrees with the network
    reluverify reads (a forward that never changes class) leaves them unknown."""
    from reluverify.cli import main
    from reluverify.evaluate.command import load_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).float().eval()
    X = np.random.default_rng(5).random((200, 4))
    y = np.argmax(torch_forward(model, X, (4,)), axis=1)
    k = int(np.bincount(y).argmax())  # six samples of the commonest class
    X, y = X[y == k][:6], y[y == k][:6]
    np.savez(tmp_path / "data.npz", x_test=X, y_test=y)
    torch.save(model, tmp_path / "m.pt")
    net, source = load_model(str(tmp_path / "m.pt"), None, with_source=True)
    assert source is not None and np.allclose(torch_forward(source, X, (4,)), net.forward(X), atol=1e-5)
    argv = ["evaluate", str(tmp_path / "m.pt"), "--data", str(tmp_path / "data.npz"), "--eps", "0.5", "--workers",
            "1", "--quiet", "--time-limit", "20", "--store"]
    assert main(argv + [str(tmp_path / "a.sqlite")]) == 0
    from reluverify.evaluate.store import Store

    first = {r["sample"]: r["verdict"] for r in Store(tmp_path / "a.sqlite").records()}
    assert "not_robust" in first.values()  # eps 0.5 on [0, 1]^4: a class change is within reach
    # the same network, but the module that confirms witnesses keeps the clean class everywhere
    import reluverify.evaluate.command as command

    real = command._load_model

    def stubborn(path, shape, with_source):
        net, _ = real(path, shape, True)

        def never(x):  # class k, the class of every sample, always wins
            return 10.0 * (np.arange(3) == k)
        return (net, never) if with_source else net
    command._load_model = stubborn
    try:
        assert main(argv + [str(tmp_path / "b.sqlite")]) == 0
    finally:
        command._load_model = real
    second = {r["sample"]: r["verdict"] for r in Store(tmp_path / "b.sqlite").records()}
    for s, v in first.items():
        assert second[s] == ("unknown" if v == "not_robust" else v)
    capsys.readouterr()
