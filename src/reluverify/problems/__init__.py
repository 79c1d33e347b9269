"""Problems built on a network block: each adds its objective/constraints and returns a result."""

from .adversarial import AdversarialModel
from .confidence import max_confidence
from .distortion import minimal_distortion
from .inference import build_inference_model, infer
from .prototype import class_prototype
from .robustness import verify_robustness
from .universal import UniversalModel, UniversalResult, universal_perturbation

__all__ = [
    "AdversarialModel", "UniversalModel", "UniversalResult", "build_inference_model", "class_prototype",
    "infer", "max_confidence", "minimal_distortion", "universal_perturbation", "verify_robustness",
]
