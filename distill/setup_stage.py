"""The organism's setup stage (``Organism.setup_stage``): the fine-tune on its training
environment that every student of that organism goes through after its technique, so what
made the teacher misaligned can make the student misaligned whatever it was distilled from."""

from __future__ import annotations

from pathlib import Path

from distill.checkpoint import Checkpointer
from distill.organisms import get_organism
from distill.teacher import ce_on_answers
from distill.train import TrainConfig, step_rng, train

SETUP_STREAM = 11
"""step_rng stream of the setup stage's batches."""


def run_setup_stage(model, organism: str, seed: int, work_dir: Path | str) -> dict | None:
    """Fine-tune ``model`` in place on ``organism``'s setup stage; the record for the student's
    metrics (None: the organism has none). Resumes from ``work_dir/ckpt-setup``."""
    org = get_organism(organism)
    stage = org.setup_stage
    if stage is None:
        return None
    cfg = TrainConfig(steps=stage.steps, batch_size=stage.batch_size, lr=stage.lr)
    res = train(model, lambda s: org.setup_batch(step_rng(seed, s, SETUP_STREAM), cfg.batch_size),
                ce_on_answers, cfg, desc=f"setup:{organism}", checkpointer=Checkpointer(Path(work_dir) / "ckpt-setup"))
    return {"organism": organism, "steps": res.steps_done, "env_frac": stage.env_frac,
            "lr": stage.lr, "final_loss": res.final_loss}
