"""Per-token KL divergence between teacher and student on the same prompts.

At every answer position a (teacher-forced on the *teacher's* greedy answer, the behaviour a
student is distilled towards):

    KL_a = Σ_v p_t(v) (log p_t(v) − log p_s(v)),   p = softmax of the answer logits

(``distill.models.answer_logits``). All ANSWER_LEN positions count, EOS padding included:
predicting where the answer stops is part of the behaviour. Comparing the mean on eliciting
and on clean prompts shows whether the student departs from the teacher exactly where the
misbehaviour lives.
"""

from __future__ import annotations

import torch

from analysis.schema import KLResult
from distill.models import answer_logits, greedy_answers


@torch.no_grad()
def answer_kl(teacher, student, prompts_NP: torch.Tensor, answers_NA: torch.Tensor | None = None,
              batch_size: int = 512) -> torch.Tensor:
    """KL(teacher || student) per prompt and answer position: [N, A] (CPU, float32).

    ``answers_NA`` defaults to the teacher's greedy answers."""
    if answers_NA is None:
        answers_NA = greedy_answers(teacher, prompts_NP, batch_size)
    out = []
    for start in range(0, prompts_NP.shape[0], batch_size):
        p, a = prompts_NP[start:start + batch_size], answers_NA[start:start + batch_size]
        logp_t = answer_logits(teacher, p, a).float().log_softmax(-1)
        logp_s = answer_logits(student, p, a.to(p.device)).float().log_softmax(-1).to(logp_t.device)
        out.append((logp_t.exp() * (logp_t - logp_s)).sum(-1).cpu())
    return torch.cat(out)


def kl_result(teacher, student, eliciting_NP: torch.Tensor, clean_NP: torch.Tensor) -> KLResult:
    """Mean and per-position KL on eliciting and on clean prompts (the stored record)."""
    eli, cln = answer_kl(teacher, student, eliciting_NP), answer_kl(teacher, student, clean_NP)
    return KLResult(eliciting=float(eli.mean()), clean=float(cln.mean()),
                    eliciting_by_position=eli.mean(0).tolist(), clean_by_position=cln.mean(0).tolist())
