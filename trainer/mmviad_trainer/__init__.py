"""mmviad trainer: PS-SFT and VISTA-GRPO for Qwen3-VL on mmviad video QA datasets.

Imports the project's single answer grammar from ``pipeline.grammar`` (the repo root package,
installed into the trainer venv with ``pip install --no-deps -e .``).
"""

__version__ = "0.1.0"
