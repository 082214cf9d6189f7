"""Disjoint PS-SFT and VISTA-GRPO clip sets drawn from the training split (the paper trains the two
stages on separate QA sets, 6k each).

Clips are ranked by ``sha256(f"{seed}/{clip_id}/sft-grpo")`` (:func:`pipeline.seeds.derive_seed`):
the first ``sft_clips`` go to SFT, the next ``grpo_clips`` to GRPO. The ranking does not depend on
the sizes, so growing one set never moves a clip from one stage to the other's earlier members,
and the same seed always gives the same sets.
"""

from __future__ import annotations

from typing import Any, Optional

from pipeline.seeds import derive_seed

PURPOSE = "sft-grpo"


def rank_clips(records: list[dict[str, Any]], seed: int, purpose: str = PURPOSE) -> list[dict[str, Any]]:
    """``records`` ordered by their seeded sha256 rank (ties impossible in practice; broken by id)."""
    return sorted(records, key=lambda r: (derive_seed(seed, r["clip_id"], purpose), r["clip_id"]))


def draw_stage_sets(records: list[dict[str, Any]], sft_clips: Optional[int], grpo_clips: Optional[int],
                    seed: int, where: str = "data") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(sft_records, grpo_records)``, disjoint, each in the training split's original order.

    ``None`` for both: SFT takes ``ceil(n / 2)``, GRPO the rest; ``None`` for one: it takes what the
    other leaves. Asking for more clips than the split holds is an error naming both sizes.
    """
    n = len(records)
    if sft_clips is None and grpo_clips is None:
        sft_clips = (n + 1) // 2
    if sft_clips is None:
        sft_clips = n - int(grpo_clips)  # type: ignore[arg-type]
    if grpo_clips is None:
        grpo_clips = n - sft_clips
    if sft_clips < 0 or grpo_clips < 0 or sft_clips + grpo_clips > n:
        raise ValueError(f"{where}: sft_clips={sft_clips} + grpo_clips={grpo_clips} exceeds the {n} clips "
                         "of the training split")
    ranked = rank_clips(records, seed)
    sft_ids = {r["clip_id"] for r in ranked[:sft_clips]}
    grpo_ids = {r["clip_id"] for r in ranked[sft_clips:sft_clips + grpo_clips]}
    return ([r for r in records if r["clip_id"] in sft_ids], [r for r in records if r["clip_id"] in grpo_ids])


def heldout_slice(records: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded slice of ``n`` records (for evaluation during training), in their original order."""
    ids = {r["clip_id"] for r in rank_clips(records, seed, "heldout")[:n]}
    return [r for r in records if r["clip_id"] in ids]
