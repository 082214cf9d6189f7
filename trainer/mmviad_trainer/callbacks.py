"""Trainer callbacks: the per-stage ``log.jsonl`` and evaluation during training.

Both write from the main process only. Rows of ``<stage>/log.jsonl``:

* TRL's log dicts (``loss``, ``grad_norm``; GRPO ``reward``, ``rewards/<name>/mean|std``, ``kl``, …);
* evaluation rows ``{"step": N, "eval/avg": …, "eval/q1_acc": …, "eval/q2_acc": …, "eval/q3_acc": …,
  "eval/q4_miou": …}`` every ``eval.every_steps`` steps and at the start of the stage.

``python -m mmviad_trainer plot --run-dir RUN`` draws both (the paper's Appendix F curves).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

from transformers import TrainerCallback

from . import dist


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON row to ``path`` (main process only)."""
    if not dist.is_main():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


class JsonlLog(TrainerCallback):
    """Append every numeric log dict to ``log.jsonl`` and echo the key numbers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not dist.is_main():
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        append_row(self.path, row)
        keys = [k for k in row if k in ("loss", "kl", "reward", "grad_norm")
                or k.startswith("rewards/") and k.endswith("/mean")]
        print(f"[{self.path.parent.name} step {state.global_step}] "
              + " ".join(f"{k}={row[k]:.4g}" for k in keys), flush=True)


class EvalDuringTraining(TrainerCallback):
    """Every ``every`` optimizer steps (and when training starts), evaluate the current policy with
    ``evaluate(model) -> metrics`` on every rank (the evaluation is sharded, so all ranks must call
    it) and append an ``eval/…`` row to the stage's ``log.jsonl``.

    Set :attr:`trainer` after building the trainer so the model is unwrapped for generation (DDP,
    ZeRO-3 parameter gathering, FSDP); without it the callback's ``model`` argument is used.
    """

    def __init__(self, evaluate: Callable[[Any], dict[str, Any]], every: int, log_path: Path) -> None:
        self.evaluate = evaluate
        self.every = int(every)
        self.log_path = Path(log_path)
        self.trainer: Optional[Any] = None
        self.history: list[dict[str, Any]] = []
        self._last_step: Optional[int] = None

    def _run(self, state, model) -> None:
        if self._last_step == state.global_step:
            return
        self._last_step = state.global_step
        import torch

        t = time.time()
        if self.trainer is not None:
            from trl.models.utils import unwrap_model_for_generation

            ctx = unwrap_model_for_generation(self.trainer.model_wrapped, self.trainer.accelerator,
                                              gradient_checkpointing_kwargs=self.trainer.args.gradient_checkpointing_kwargs)
        else:
            from contextlib import nullcontext

            ctx = nullcontext(model)
        with ctx as m:
            was_training = m.training
            m.eval()
            try:
                with torch.no_grad():
                    metrics = self.evaluate(m)
            finally:
                m.train(was_training)
        from .eval_adapter import flat_metrics

        row = {"step": state.global_step, **flat_metrics(metrics), "eval/seconds": round(time.time() - t, 2)}
        self.history.append(row)
        append_row(self.log_path, row)
        if dist.is_main():
            state.log_history.append(dict(row))
            keys = [k for k in ("eval/avg", "eval/q1_acc", "eval/q2_acc", "eval/q3_acc", "eval/q4_miou") if k in row]
            print(f"[{self.log_path.parent.name} step {state.global_step}] "
                  + " ".join(f"{k}={row[k]:.3f}" for k in keys), flush=True)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._run(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self._run(state, model)
