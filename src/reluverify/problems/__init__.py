"""Problems built on a network block: each adds its objective/constraints and returns a result."""

from .adversarial import AdversarialModel, max_confidence, minimal_distortion, verify_robustness
from .inference import build_inference_model, infer

__all__ = ["AdversarialModel", "build_inference_model", "infer", "max_confidence", "minimal_distortion", "verify_robustness"]
