"""Model runners: baselines (random, prior, no-defect), an OpenAI-compatible API client and a local
transformers runner (GPU only)."""

from .base import Prediction, Runner
from .baselines import NoDefectRunner, PriorRunner, RandomRunner

RUNNERS = ("random", "prior", "no-defect", "openai", "transformers")

__all__ = ["Prediction", "Runner", "RandomRunner", "PriorRunner", "NoDefectRunner", "RUNNERS"]
