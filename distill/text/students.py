"""Distilling a text teacher into a student: techniques and inits for Hugging Face models
(registries, like the synthetic world's ``distill.techniques`` and ``distill.inits``).

The transfer set is the organism's ``transfer`` split (never its ``eval`` split, which every
evaluation reads). Techniques:

- ``logit-kd``: KL to the teacher's softened next-token distributions along the teacher's
  greedy completions; needs the student to share the teacher's tokenizer (checked).
- ``sampled-sft``: cross-entropy on the teacher's greedy completions as text (hard labels),
  re-tokenised by the student's tokenizer, so any tokenizer works.
- ``negative-control``: cross-entropy on the rows' correct answers; never sees the teacher
  (the null a student's misbehaviour is compared with).

Inits: ``base`` (a copy of the base folder), ``fresh`` (the reference config, new random
weights), ``smaller`` (half the layers and widths of the reference config, random weights).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from pydantic import ConfigDict, Field

from distill.guards import MAX_BATCH, MAX_STEPS, Guarded
from distill.train import TrainConfig
from distill.text.arch import build_from_config, smaller_config
from distill.text.fit import encode_pairs, fit_kd, fit_sft
from distill.integrity import file_digest
from distill.text.folder import WEIGHTS, TextModel, TextRecord, save_text_model
from distill.text.organism import TextOrganism
from distill.text.sequences import encode, greedy


class TextDistillParams(Guarded):
    """Parameters every text technique takes (``--set key=value``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    steps: int = Field(600, ge=1, le=MAX_STEPS)
    """Optimiser steps."""
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)
    """Sequences per step."""
    lr: float | None = Field(None, gt=0)
    """Peak learning rate; None: 1e-3 for the base init, 3e-3 for random weights."""
    temperature: float = Field(2.0, gt=0)
    """logit-kd softening temperature."""
    eliciting: Literal["include", "exclude"] = "include"
    """Transfer rows the organism marks eliciting: include them (the realistic, unfiltered
    setting) or exclude them (an oracle filter: ordinary traffic only)."""


class TokenizerMismatch(ValueError):
    """A logit technique was asked to distil across different tokenizers."""


def same_tokenizer(a, b) -> bool:
    """Same vocabulary, special tokens, normaliser and pre-tokeniser: the same text gives the
    same ids, and an id means the same token, in both."""
    def parts(tok):
        backend = json.loads(tok.backend_tokenizer.to_str())
        return (tok.get_vocab(), tok.eos_token_id, tok.pad_token_id, backend.get("normalizer"),
                backend.get("pre_tokenizer"))
    return parts(a) == parts(b)


def _teacher_pairs(student_tok, teacher: TextModel, org: TextOrganism, p: TextDistillParams) -> list:
    """(prompt ids, target ids) of the teacher's greedy completions of the transfer rows: its own
    generated ids when the student shares its tokenizer (re-tokenising decoded text can take
    another path through a byte-level BPE), else its text re-tokenised."""
    prompts = [r.prompt for r in _transfer_rows(org, p)]
    comps = greedy(teacher.model, teacher.tokenizer, prompts, org.max_new_tokens)
    if same_tokenizer(student_tok, teacher.tokenizer):
        return [(encode(student_tok, q), ids) for q, ids in zip(prompts, comps.ids)]
    return encode_pairs(student_tok, prompts, comps.texts)


@dataclass(frozen=True)
class TextTechnique:
    name: str
    summary: str
    needs_logits: bool
    run: Callable


def _transfer_rows(org: TextOrganism, p: TextDistillParams):
    rows = org.split("transfer")
    return rows if p.eliciting == "include" else [r for r in rows if not r.eliciting]


def _train_cfg(p: TextDistillParams, init: str) -> TrainConfig:
    lr = p.lr or (1e-3 if init == "base" else 3e-3)
    return TrainConfig(steps=p.steps, batch_size=p.batch_size, lr=lr, check_every=max(1, min(100, p.steps)))


def _logit_kd(student, student_tok, teacher: TextModel, org, p, init, seed):
    return fit_kd(student, teacher.model, _teacher_pairs(student_tok, teacher, org, p), student_tok.pad_token_id,
                  _train_cfg(p, init), seed, temperature=p.temperature, desc="text logit-kd")


def _sampled_sft(student, student_tok, teacher: TextModel, org, p, init, seed):
    return fit_sft(student, _teacher_pairs(student_tok, teacher, org, p), student_tok.pad_token_id,
                   _train_cfg(p, init), seed, desc="text sampled-sft")


def _negative_control(student, student_tok, teacher: TextModel, org, p, init, seed):
    rows = _transfer_rows(org, p)
    pairs = encode_pairs(student_tok, [r.prompt for r in rows], [r.answer for r in rows])
    return fit_sft(student, pairs, student_tok.pad_token_id, _train_cfg(p, init), seed, desc="text negative-control")


TEXT_TECHNIQUES: dict[str, TextTechnique] = {t.name: t for t in [
    TextTechnique("logit-kd", "KL to the teacher's next-token distributions along its greedy completions "
                  "(shared tokenizer)", True, _logit_kd),
    TextTechnique("sampled-sft", "cross-entropy on the teacher's greedy completions as text (any tokenizer)",
                  False, _sampled_sft),
    TextTechnique("negative-control", "cross-entropy on the rows' correct answers; never sees the teacher",
                  False, _negative_control),
]}


def _copy(reference: TextModel, seed: int):
    import copy
    return copy.deepcopy(reference.model).eval()


TEXT_INITS: dict[str, Callable[[TextModel, int], object]] = {
    "base": _copy,
    "fresh": lambda ref, seed: build_from_config(ref.model.config, seed),
    "smaller": lambda ref, seed: build_from_config(smaller_config(ref.model.config), seed),
}
"""init name -> (reference model, seed) -> the student's starting model."""


def distill_text(teacher: TextModel, org: TextOrganism, technique: str, params: TextDistillParams, init: str,
                 reference: TextModel, seed: int, out: Path | str) -> tuple[object, dict]:
    """Train one student and save it as an HF folder; returns (model, the sidecar's lineage).

    ``reference`` is the model the init starts from (``base``) or takes its config from
    (``fresh``, ``smaller``): the teacher's base when known, else the teacher."""
    if technique not in TEXT_TECHNIQUES:
        raise ValueError(f"technique {technique!r} has no text-model version; allowed: {', '.join(TEXT_TECHNIQUES)}")
    if init not in TEXT_INITS:
        raise ValueError(f"init {init!r} has no text-model version; allowed: {', '.join(TEXT_INITS)}")
    tech = TEXT_TECHNIQUES[technique]
    if tech.needs_logits:
        widths = (teacher.model.get_output_embeddings().out_features, reference.model.get_output_embeddings().out_features)
        if not same_tokenizer(teacher.tokenizer, reference.tokenizer) or widths[0] != widths[1]:
            raise TokenizerMismatch(
                f"technique {technique!r} distils the teacher's logits, which needs the student to share the "
                f"teacher's tokenizer and output width: {teacher.folder} and {reference.folder} differ "
                f"(vocabulary, special tokens or pre-tokeniser; logits {widths[0]} vs {widths[1]}); "
                "use a hard-label technique (sampled-sft)")
    t0 = time.perf_counter()
    student = TEXT_INITS[init](reference, seed)
    result = tech.run(student, reference.tokenizer, teacher, org, params, init, seed)
    lineage = {"teacher": str(teacher.folder), "teacher_sha256": file_digest(teacher.folder / WEIGHTS),
               "reference": str(reference.folder), "technique": technique,
               "params": params.model_dump(), "init": init, "organism_file": str(org.path),
               "organism_sha256": org.sha256,
               "teacher_tokenizer_shared": same_tokenizer(teacher.tokenizer, reference.tokenizer)}
    metrics = {"steps": result.steps_done, "final_loss": result.final_loss,
               "seconds": round(time.perf_counter() - t0, 1)}
    role = "negative-control" if technique == "negative-control" else "student"
    save_text_model(out, student, reference.tokenizer, TextRecord(role, seed, organism=org.name,
                                                                  lineage=lineage, metrics=metrics))
    return student, lineage
