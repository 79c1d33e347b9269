"""Numbers that decide soundness, in one place, each with the reason for its value.

Change them only with a test that shows the new value is still sound.
"""

# Interval/symbolic bounds are computed in float64. A dot product of length n has a rounding error
# below n * 2**-53 * sum(|w_i x_i|) (about 1e-13 relative for n = 784); we widen every bound by a
# relative amount far above that, plus an absolute floor for values near zero. Widening can only
# turn a stable neuron into an unstable one (more binaries), never make the model wrong.
BOUND_REL_WIDENING = 1e-9
BOUND_ABS_WIDENING = 1e-10

# Solver tolerances we ask for. With big-M constants of magnitude M, an integrality violation of
# eps lets a ReLU output drift by up to M * eps; 1e-9 keeps that far below the 1e-6 we promise for
# inference on networks whose pre-activations stay below 1e3.
MIP_INTEGRALITY_TOLERANCE = 1e-9
PRIMAL_FEASIBILITY_TOLERANCE = 1e-9

# An MILP inference result must reproduce the float64 forward pass this closely (absolute).
INFERENCE_TOLERANCE = 1e-6

# Verification: "robust" needs the solver to prove that no point of the domain brings a wrong logit
# within VERIFY_SLACK of the true one. Asking for this much slack makes the proof robust to the
# solver's own feasibility tolerance (1e-9) and to the rounding of the LP; a point whose wrong logit
# ends between -VERIFY_SLACK and 0 is neither a proof nor a counterexample, and gives "unknown"
# unless a counterexample with a real margin is found.
VERIFY_SLACK = 1e-6

# Adversarial examples must beat the true class by at least this much in the float64 forward pass
# (logit units) before they are reported as found; robust to float32 re-evaluation (Keras).
DEFAULT_MARGIN = 1e-4

# A witness that fails its check is re-solved with its MILP margin multiplied by this factor,
# at most WITNESS_RETRIES times; then the answer is "unknown".
MARGIN_GROWTH = 10.0
WITNESS_RETRIES = 3

# Small outward tolerance when a witness's budget is compared with the allowed budget (the solver
# may use up to its feasibility tolerance on each of 784 rows).
BUDGET_CHECK_TOLERANCE = 1e-6

# VNN-COMP accepts a counterexample when the ONNX model (onnxruntime, float32) run on it satisfies
# the property within this absolute tolerance. We ask more of ourselves: the float64 forward pass
# must satisfy it exactly (violation <= 0), and onnxruntime within this tolerance.
COUNTEREXAMPLE_TOLERANCE = 1e-4
