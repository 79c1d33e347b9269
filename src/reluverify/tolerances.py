"""Numbers that decide soundness, in one place, each with the reason for its value.

Change them only with a test that shows the new value is still sound.
"""

# Interval/symbolic bounds are computed in float64. A dot product of length n has a rounding error
# below n * 2**-53 * sum(|w_i x_i|) (about 1e-13 relative for n = 784); we widen every bound by a
# relative amount far above that, plus an absolute floor for values near zero. Widening can only
# turn a stable neuron into an unstable one (more binaries), never make the model wrong.
BOUND_REL_WIDENING = 1e-9
BOUND_ABS_WIDENING = 1e-10

# Solver tolerances. Two ways to be wrong, of very different cost:
# * too tight: a FEASIBLE MILP reported "infeasible" -- a wrong "robust" verdict, unsound;
# * too loose: a point that violates rows / integrality by about the tolerance (times the big-M
#   amplification) accepted -- a spurious witness, which the float64 re-check rejects (a re-solve
#   or "unknown", never a wrong verdict), and MILP outputs further from the forward pass.
#
# Solutions: every solver runs at 1e-9 (CBC integerTolerance / primalTolerance, Gurobi IntFeasTol /
# FeasibilityTol, HiGHS mip_feasibility_tolerance / primal_feasibility_tolerance). With big-M
# constants of magnitude M an integrality violation eps moves a ReLU output by up to M * eps; 1e-9
# keeps outputs within the 1e-6 we promise for inference on networks whose pre-activations stay
# below 1e3 (HiGHS at 1e-7 returned outputs 1.1e-6 off, at 1e-6 1.7e-4 off, big-M <= 1e3).
MIP_INTEGRALITY_TOLERANCE = 1e-9
PRIMAL_FEASIBILITY_TOLERANCE = 1e-9

# Infeasibility: HiGHS at 1e-9 is not trusted to say "infeasible". An "infeasible" from the run
# above is only reported after a second run with mip_feasibility_tolerance raised to
# HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE (HiGHS's own default) and presolve off also says so; if
# that run finds a point instead, that point (refined, below) is returned. Proof runs
# (emphasis="proof", solvers.highs.PROOF_EMPHASIS) use these settings from the start: one run. A looser run
# is a relaxation of the tighter one, so its "infeasible" is the stronger claim. Measured with
# `python tests/test_solver_tolerances.py sweep` (HiGHS 1.16, feasible MILPs: random ReLU nets,
# big-M 1 .. 1e4, binaries free, inputs fixed at box vertices / faces / interior points; false
# "infeasible" counts, primal_feasibility_tolerance 1e-9 .. 1e-7 changed none of them, since HiGHS's
# MIP solver runs its LPs at mip_feasibility_tolerance; docs/solvers.md, "Tolerances and why"):
#
#   mip_feasibility_tolerance   presolve on          presolve off
#   1e-9 (alone, until now)     433 / 7,200          187 / 7,200
#   1e-8                        164 / 7,200            8 / 31,200
#   1e-7                         31 / 31,200           1 / 31,200
#   1e-6 (HiGHS's default)        0 / 31,200           0 / 31,200   <- confirming run, proof runs
#
# CBC and Gurobi at 1e-9 gave no false "infeasible" on such instances (tests/test_solver_tolerances.py).
HIGHS_CONFIRM_MIP_FEASIBILITY_TOLERANCE = 1e-6
HIGHS_CONFIRM_PRESOLVE = "off"
# When the confirming run finds a point (the first run's "infeasible" was wrong), that point is only
# as accurate as 1e-6 allows (outputs up to 1.7e-4 off the forward pass in the sweep); a third run at
# this tolerance with presolve off (4.3e-7 off for big-M <= 1e3, and rarely a false "infeasible":
# 8 of 31,200) replaces it with a more accurate one when it finds one.
HIGHS_POLISH_MIP_FEASIBILITY_TOLERANCE = 1e-8

# An MILP inference result must reproduce the float64 forward pass this closely (absolute).
INFERENCE_TOLERANCE = 1e-6

# Verification: "robust" needs the solver to prove that no point of the domain brings a wrong logit
# within VERIFY_SLACK of the true one. Asking for this much slack makes the proof robust to the
# solvers' feasibility tolerances (1e-9; HiGHS's confirming run 1e-6, see above) and to the rounding
# of the LP; a point whose wrong logit ends between -VERIFY_SLACK and 0 is neither a proof nor a
# counterexample, and gives "unknown" unless a counterexample with a real margin is found.
VERIFY_SLACK = 1e-6

# Adversarial examples must beat the true class by at least this much in the float64 forward pass
# (logit units) before they are reported as found; robust to float32 re-evaluation (Keras).
DEFAULT_MARGIN = 1e-4

# A witness that fails its check is re-solved with its MILP margin multiplied by this factor,
# at most WITNESS_RETRIES times; then the answer is "unknown".
MARGIN_GROWTH = 10.0
WITNESS_RETRIES = 3

# A witness's L1 budget is checked with this relative tolerance. Every witness is first scaled down
# exactly onto its budget (AdversarialModel.fit_budget, the universal checker's fit) whatever the
# solver left, so all that remains is the rounding of the float64 sum of |d_i|: below
# n * 2**-53 relative (about 1e-13 for n = 784), far under 1e-12.
BUDGET_CHECK_REL_TOLERANCE = 1e-12

# A witness found with margin 0 (on the decision boundary) is pushed past it by scaling its change
# by (1 + s) for the first s of these that gives the required margin in float64 (then bisected);
# from a millionth of a relative step up to 1 %, beyond which the point is no longer the MILP's.
REPAIR_SCALES = (1e-9, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2)

# An answer is reported "optimal" when its value is within this relative gap (of max(1, |value|))
# of the proven bound: the "gap <= 1e-4" of the targets in docs/ and the issues. Smaller gaps are
# below what the solvers' own default relative MIP gap (1e-4) promises.
OPTIMAL_REL_GAP = 1e-4

# When a witness fails its float64 check, the next MILP asks for the win by this much more than
# required (then MARGIN_GROWTH times more, see above): a hair, so that the retry loses almost
# nothing of the objective, yet above the 1e-17-level rounding that made the optimum miss the row.
RETRY_MARGIN_STEP = 1e-6

# An MILP bound on a whole number (changed pixels, fooled images) is rounded up / down to the
# next whole number after allowing this much for the solver's feasibility tolerance (a bound of
# 2.9999999 proves at least 3 changed pixels, not 2).
INTEGER_BOUND_TOLERANCE = 1e-6

# Added to every big-M constant of the universal perturbation's "fooled" rows: a larger M only
# loosens a row, so this is always sound, and it keeps the rows valid against the solver's own
# feasibility tolerance.
BIG_M_SLACK = 1e-6

# LP bound tightening (bounds/lp.py) adds a neuron's bias to the LP's optimum in float64; the sum
# is widened by this relative amount of the bias (its rounding error is below 2**-53 relative).
LP_BIAS_REL_WIDENING = 1e-12

# VNN-COMP accepts a counterexample when the ONNX model (onnxruntime, float32) run on it satisfies
# the property within this absolute tolerance. We ask more of ourselves: the float64 forward pass
# must satisfy it exactly (violation <= 0), and onnxruntime within this tolerance.
COUNTEREXAMPLE_TOLERANCE = 1e-4

# Above this magnitude of a pre-activation bound (a big-M constant), solvers were seen "proving"
# infeasible an MILP whose feasible set is a slab thinner than their tolerances (a ReLU pair
# k*relu(x - m) + k*relu(m - x) with k = 1e7..1e8: HiGHS with presolve off, Gurobi with
# MIPFocus 3; tests/test_near_boundary.py). Such a model's infeasibility and dual bounds are not
# taken as proofs: "robust"/"unsat" and MILP lower bounds become "unknown" / bounds-only certificates.
MAX_TRUSTED_BIG_M = 1e6

# Above this big-M, Gurobi runs with NumericFocus 3: on a random network with big-M 1.0e4 its
# default settings returned an "optimal" minimal L-inf distortion 0.0922310 (bound = objective)
# where the exact optimum is 0.0921512 (oracle, HiGHS, CBC; NumericFocus 3 or Presolve 0 agree):
# a certified radius above the truth (tests/test_cross_solver.py, instance 15).
CAREFUL_BIG_M = 1e3

# The default time limit (seconds) of every public question (verify_robustness, minimal_distortion,
# max_confidence, universal_perturbation, class_prototype, check_property, infer): one number, long
# enough for the seed network's questions on a 2-core machine (docs/benchmarks.md), short enough
# that an undecided question comes back as "unknown" within a coffee break.
DEFAULT_TIME_LIMIT = 120.0

# Tree ensembles (trees/problems.py): how far the input set of a proof MILP is widened (L-inf and
# L1 radii, property boxes) and how much is taken off a MILP's dual bound on a distance before it counts as certified. Limits of one
# feature can lie closer together than a solver's feasibility tolerance (scikit-learn's float32
# midpoints on MNIST pixels: 3e-8 apart), so a run may accept a point a tolerance outside its
# cell and, measured, claim an optimum 3e-8 above a checked witness (HiGHS at its proof
# emphasis's 1e-6; benchmarks/trees.py, image 6 of the forest). Tree MILPs therefore run at the
# default tolerance (1e-9, ``MIP_INTEGRALITY_TOLERANCE``), and proofs keep this margin, 100 times
# that tolerance; it is far below ``OPTIMAL_REL_GAP``, so optimal answers stay optimal.
TREE_BOUND_MARGIN = 1e-7

# A radius search's witness re-checked at its own distance d (evaluate's reference check): the ball
# asked about has radius d * (1 + WITNESS_BALL_REL_SLACK) + WITNESS_BALL_ABS_SLACK, so that the point
# that defines d is not refused by the last bit of a recomputed distance
WITNESS_BALL_REL_SLACK = 1e-9
WITNESS_BALL_ABS_SLACK = 1e-12
