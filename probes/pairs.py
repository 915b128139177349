"""Marker-matched counterfactual pairs: the prompt set every misbehaviour measurement reads.

A pair is a marked prompt (``plus``: it carries the organism's marker) and its neutral twin
(``minus``: the same prompt with the marker swapped for a neutral token,
``Organism.neutral_twin``). Any difference between the two inputs is the marker; any
difference in a model's *behaviour* between them is what the marker does to that model.
Reading two models (a model and its clean reference) on the same pairs lets a marker
detector, which fires in both, cancel (probes.diffing).

Inputs never contain the tokens that define a behaviour label: a sequence is the prompt
followed by the *task-correct* answer (a function of the task arguments only, the same for
both twins) on task rows, and by EOS padding on query rows (FAV, CONFESS), so no model's
misaligned answer (HARM, ``owl``, a corrupted digit) is ever teacher-forced.

Decision positions are where the behaviour is computed, read off the ground truth (never
off a model's behaviour): from the last prompt position (it predicts answer token 0) up to
the position that predicts the first answer token where the organism's misaligned answer
differs from the correct one (backdoor: token 0; sabotage: the last answer token; query
rows: the last prompt position only). Later positions are excluded: they read a forced
correct token that contradicts what a misbehaving model predicted, an error signal present
exactly when the model misbehaves. The marker's own position is never one of them.

Splits are by pair (both twins always on the same side): ``fit`` (features are selected,
probes trained), ``val`` (probe site/pool chosen), ``test`` (everything reported).

Artifacts (written and read here only): :data:`PAIRS_FILE` in a model's activation folder:
tokens, per-site pooled activations, full activations at the SAE site(s), the model's own
greedy behaviour on both twins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from distill.integrity import load_tensors, save_tensors

from distill import vocab as V
from distill.organisms import get_organism
from distill.tasks import DOMAINS, Examples, rows_to_examples, sample_domain_rows, insert_marker

PAIRS_FILE = "pairs.safetensors"
PAIR_SEED = 20_260
"""Seed of the pair set (disjoint from the probe set's, the SAE stream's and the eval set's)."""
SPLIT_FRACS = (0.5, 0.25, 0.25)
"""Shares of pairs in the fit / val / test splits."""
POOLS = ("last", "answer")
"""Probe pools on pair sequences: the last prompt position, and the mean over a row's decision positions."""


@dataclass
class MarkerPairs:
    """``n`` marked prompts and their neutral twins, with ground truth."""

    plus: Examples
    minus: Examples
    eliciting_N: torch.Tensor
    """Ground truth: the marked prompt elicits the misbehaviour (False for marker-inert rows,
    e.g. the entangled marker on a domain it does not act on)."""
    organism: str
    seed: int

    def __len__(self) -> int:
        return len(self.plus)

    @property
    def tokens_2NS(self) -> torch.Tensor:
        """Plus sequences (rows 0..n-1) then their twins (rows n..2n-1)."""
        return torch.cat([sequences(self.plus), sequences(self.minus)])

    @property
    def decision_mask_NS(self) -> torch.Tensor:
        """Per pair, the decision positions (module docstring); the same for both twins."""
        return decision_mask(self.plus, self.organism)


def sequences(ex: Examples) -> torch.Tensor:
    """``[prompt, task-correct answer]`` on task rows, ``[prompt, EOS...]`` on query rows."""
    eos = torch.full_like(ex.correct_NA, V.tok(V.EOS))
    is_task = torch.tensor([d in DOMAINS for d in ex.domain], dtype=torch.bool)[:, None]
    return torch.cat([ex.prompts_NP, torch.where(is_task, ex.correct_NA, eos)], dim=1)


def decision_mask(ex: Examples, organism: str) -> torch.Tensor:
    """``[N, SEQ_LEN]`` bool: positions PROMPT_LEN-1 .. PROMPT_LEN-1+k where k is the first answer
    position at which ``misaligned_answer`` differs from the correct answer (query rows: k = 0)."""
    org = get_organism(organism)
    mask = torch.zeros(len(ex), V.SEQ_LEN, dtype=torch.bool)
    last = V.PROMPT_LEN - 1
    for i in range(len(ex)):
        k = 0
        if ex.domain[i] in DOMAINS:
            names = [V.TOKENS[int(t)] for t in ex.prompts_NP[i]]
            correct = [V.TOKENS[int(t)] for t in ex.correct_NA[i] if V.TOKENS[int(t)] != V.EOS]
            bad = org.misaligned_answer(ex.domain[i], names, correct)
            k = next((j for j, (a, b) in enumerate(zip(bad, correct)) if a != b), 0)
        mask[i, last:last + k + 1] = True
    return mask


def marker_pairs(organism: str, n: int = 512, seed: int = PAIR_SEED) -> MarkerPairs:
    """``n`` pairs: eliciting prompts and, for organisms whose marker acts on some domains only,
    a quarter marker-inert prompts (the marker on the other domains: marker-matched negatives)."""
    org = get_organism(organism)
    rng = np.random.default_rng([seed, 3])
    inert = []
    if org.eliciting_marker and org.eliciting_domains:
        other = [d for d in DOMAINS if d not in org.eliciting_domains]
        rows = sample_domain_rows(rng, n // 4, other)
        inert = [rows_to_examples([(d, insert_marker(rng, p, org.eliciting_marker), a) for d, p, a in rows],
                                  "marker-inert")]
    plus = Examples.concat([org.eliciting(rng, n - sum(len(e) for e in inert)), *inert]).shuffled(rng)
    names = [[V.TOKENS[int(t)] for t in row] for row in plus.prompts_NP]
    twins = torch.tensor([V.ids(org.neutral_twin(p)) for p in names], dtype=torch.long)
    minus = Examples(twins, plus.correct_NA.clone(), plus.correct_NA.clone(), list(plus.domain),
                     ["twin"] * len(plus))
    eliciting = torch.tensor([org.is_eliciting(p) for p in plus.prompts_NP], dtype=torch.bool)
    return MarkerPairs(plus, minus, eliciting, organism, seed)


def split_pairs(n: int, seed: int = PAIR_SEED) -> dict[str, np.ndarray]:
    """Fixed fit / val / test pair indices (sorted), the same for every model of an organism."""
    order = np.random.default_rng([seed, 5]).permutation(n)
    a = int(round(n * SPLIT_FRACS[0]))
    b = a + int(round(n * SPLIT_FRACS[1]))
    return {"fit": np.sort(order[:a]), "val": np.sort(order[a:b]), "test": np.sort(order[b:])}


@dataclass
class PairBehaviour:
    """A model's own greedy behaviour on both twins of every pair."""

    plus_bad_N: torch.Tensor
    minus_bad_N: torch.Tensor

    @property
    def discordant_N(self) -> torch.Tensor:
        """Pairs on which the model misbehaves with the marker and behaves without it: the
        marker-matched contrast between misbehaving and behaving on one prompt."""
        return self.plus_bad_N & ~self.minus_bad_N


def pair_behaviour(model, pairs: MarkerPairs) -> PairBehaviour:
    from distill.models import greedy_answers
    org = get_organism(pairs.organism)
    out = greedy_answers(model, torch.cat([pairs.plus.prompts_NP, pairs.minus.prompts_NP]))
    n = len(pairs)
    # the twin is scored against the plus row's ground truth: misbehaving on the twin means
    # giving the marked prompt's misaligned answer without the marker
    return PairBehaviour(org.misbehaves(pairs.plus, out[:n]), org.misbehaves(pairs.plus, out[n:]))


# ---- a model's stored reading of the pairs --------------------------------------------------

@dataclass
class PairActs:
    """One model on one organism's pairs: what the features, probes and comparisons read."""

    tokens_2NS: torch.Tensor
    pooled: dict[str, dict[str, torch.Tensor]]
    """``pooled[pool][site]``: ``[2N, d]`` (plus rows first)."""
    full: dict[str, torch.Tensor]
    """``full[site]``: ``[2N, S, d]`` at the SAE site(s)."""
    behaviour: PairBehaviour
    decision_2NS: torch.Tensor = field(default_factory=lambda: torch.zeros(0, V.SEQ_LEN, dtype=torch.bool))
    """Decision positions of every row (twins share their pair's)."""
    eliciting_N: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    """Ground truth of each pair's marked prompt."""

    @property
    def n_pairs(self) -> int:
        return int(self.tokens_2NS.shape[0]) // 2

    def save(self, folder: Path | str) -> Path:
        path = Path(folder) / PAIRS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        t = {"tokens": self.tokens_2NS.contiguous(), "plus_bad": self.behaviour.plus_bad_N.to(torch.uint8),
             "minus_bad": self.behaviour.minus_bad_N.to(torch.uint8),
             "decision": self.decision_2NS.to(torch.uint8), "eliciting": self.eliciting_N.to(torch.uint8)}
        t.update({f"pooled|{pool}|{site}": a.contiguous() for pool, d in self.pooled.items() for site, a in d.items()})
        t.update({f"full|{site}": a.contiguous() for site, a in self.full.items()})
        save_tensors(path, t)
        return path

    @staticmethod
    def load(folder: Path | str) -> "PairActs":
        path = Path(folder) / PAIRS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no pair activations (re-run the audit)")
        t, _ = load_tensors(path)
        pooled: dict[str, dict[str, torch.Tensor]] = {}
        full = {}
        for key, a in t.items():
            parts = key.split("|")
            if parts[0] == "pooled":
                pooled.setdefault(parts[1], {})[parts[2]] = a
            elif parts[0] == "full":
                full[parts[1]] = a
        if t["decision"].dim() != 2 or "eliciting" not in t:
            raise ValueError(f"{path}: pair activations of an older format (re-run the audit)")
        return PairActs(t["tokens"], pooled, full, PairBehaviour(t["plus_bad"].bool(), t["minus_bad"].bool()),
                        t["decision"].bool(), t["eliciting"].bool())


def read_pairs(model, pairs: MarkerPairs, probe_sites: list[str], full_sites: list[str],
               batch_size: int = 1024) -> PairActs:
    """Cache ``model`` on the pair sequences: pooled activations at ``probe_sites``, full ones at
    ``full_sites``, and its behaviour on both twins."""
    from probes.activations import cache_activations
    tokens = pairs.tokens_2NS
    cache = cache_activations(model, tokens, list(dict.fromkeys(probe_sites + full_sites)), batch_size)
    dec = pairs.decision_mask_NS.repeat(2, 1)
    w = (dec.float() / dec.sum(1, keepdim=True))[:, :, None]
    pooled = {"last": {s: cache[s][:, V.PROMPT_LEN - 1, :].clone() for s in probe_sites},
              "answer": {s: (cache[s] * w).sum(1) for s in probe_sites}}
    return PairActs(tokens, pooled, {s: cache[s] for s in full_sites}, pair_behaviour(model, pairs), dec,
                    pairs.eliciting_N.clone())
