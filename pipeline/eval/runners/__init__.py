"""Model runners: baselines (random, prior, no-defect), a predictions file, an OpenAI-compatible API
client and a local transformers runner (batched; on the GPU when there is one)."""

from .base import Prediction, Runner
from .baselines import NoDefectRunner, PriorRunner, RandomRunner

RUNNERS = ("random", "prior", "no-defect", "predictions", "openai", "transformers")

__all__ = ["Prediction", "Runner", "RandomRunner", "PriorRunner", "NoDefectRunner", "RUNNERS"]
