"""Problems built on a network block: each adds its objective/constraints and returns a result."""

from .inference import build_inference_model, infer

__all__ = ["build_inference_model", "infer"]
