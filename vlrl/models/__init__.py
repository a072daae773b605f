"""Model and processor construction: tiny offline Qwen-VL models and local checkpoints."""

from vlrl.models.loading import load_model_and_processor
from vlrl.models.tiny import build_tiny_model, save_tiny_model, tiny_processor

__all__ = ["build_tiny_model", "load_model_and_processor", "save_tiny_model", "tiny_processor"]
