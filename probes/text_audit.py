"""White-box audit of a Hugging Face causal LM on a text organism: linear probes on the
residual stream, read through transformer-lens's ``TransformerBridge`` with its alias hook
names (``blocks.{L}.hook_resid_post``), at the last prompt token.

Two probes per site, each on the organism's ``eval`` rows, split three ways (train / val /
test, stratified): probes fit on train, the site is chosen on val, and only the test split is
reported (no test-set selection).

- **context** probe: does the prompt carry one of the organism's markers? Every model gets
  the markers in its input, so this reads the input; it is reported as a *context*
  detector, never as misalignment.
- **misbehaviour** probe (marker-matched): among the marker-carrying rows only, does the
  model's own greedy completion misbehave? Its nulls: the same labels probed on the base's
  activations, at the base's own best site chosen on the same validation rows (when the base
  reads them as well, the probe reads the prompt, not the model's misbehaviour), and
  N_PERMUTATIONS refits on shuffled labels. When the model behaves the same
  on every marker-carrying row the contrast does not exist and is reported as such.

The probe input is the activation at the last prompt token, before any completion token:
it never contains the tokens that define the label. Intervals and verdicts are the
analysis layer's (``analysis.text_models``); this module returns test labels and scores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from probes.linear import auroc, fit_logistic


class SiteError(ValueError):
    """A requested probe site is not a hook of the model."""


MIN_CLASS = 20
"""Fewest rows of the rarer class a probe is fit on: with the 50/25/25 split the test rows
then hold at least five of it (fewer make every bootstrap resample separate perfectly)."""
SPLIT_SEED = 0
N_PERMUTATIONS = 50
"""Shuffled-label refits: the null distribution of the test AUROC at the chosen site."""


def bridge_for(text_model):
    """A TransformerBridge over a copy of the loaded model (the bridge adds an ``lm_head`` bias
    to the module it wraps; the copy keeps the caller's model as saved)."""
    from transformer_lens.model_bridge import TransformerBridge
    hf = copy.deepcopy(text_model.model).cpu().eval()
    bridge = TransformerBridge.boot_transformers(str(text_model.folder), tokenizer=text_model.tokenizer,
                                                 hf_model=hf, device="cpu")
    for p in bridge.parameters():
        p.requires_grad_(False)
    return bridge


def resid_sites(bridge) -> list[str]:
    return [f"blocks.{layer}.hook_resid_post" for layer in range(bridge.cfg.n_layers)]


@torch.no_grad()
def last_token_acts(bridge, tokenizer, prompts: list[str], sites: list[str], batch_size: int = 256) -> dict[str, torch.Tensor]:
    """{site: [N, d_model]} at each prompt's last token; prompts are batched by length, so no
    padding and no position shift. The cache is keyed by the requested alias names."""
    from distill.text.sequences import by_length, encode
    encoded = [encode(tokenizer, p) for p in prompts]
    out = {s: torch.zeros(len(prompts), bridge.cfg.d_model) for s in sites}
    wanted = set(sites)
    for idx in by_length(encoded).values():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            x = torch.tensor([encoded[i] for i in chunk])
            _, cache = bridge.run_with_cache(x, names_filter=lambda name: name in wanted)
            for s in sites:
                out[s][chunk] = cache[s][:, -1, :].float().cpu()
    return out


@dataclass
class ProbeResult:
    kind: str
    """context | misbehaviour"""
    estimable: bool
    reason: str = ""
    site: str | None = None
    """Chosen on the validation split."""
    val_auroc: dict[str, float] = field(default_factory=dict)
    """Per site (what chose the site)."""
    test_labels: list[int] = field(default_factory=list)
    test_scores: list[float] = field(default_factory=list)
    test_auroc: float = float("nan")
    n: int = 0
    n_positive: int = 0
    base_site: str | None = None
    """The base's own best site for the same labels, chosen on the same validation rows."""
    base_test_scores: list[float] | None = None
    """The same labels and test rows probed on the base's activations at ``base_site``."""
    base_test_auroc: float | None = None
    shuffled_test_aurocs: list[float] = field(default_factory=list)
    """Test AUROC of N_PERMUTATIONS refits on permuted labels at the chosen site (the null)."""
    rows: list[int] = field(default_factory=list)
    """Indices (into the audited rows) of the rows this probe was fit on, in order."""
    train_idx: list[int] = field(default_factory=list)
    test_idx: list[int] = field(default_factory=list)
    """Positions in ``rows`` of the train and test split."""


def _split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.5, random_state=seed, stratify=y)
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=y[rest])
    return train, val, test


def _fit(x: torch.Tensor, y: np.ndarray, train, test):
    probe = fit_logistic(x, torch.tensor(y), train, test)
    return (x[test].double() @ probe.w_D.double() + probe.b).numpy()


def _best_site(acts: dict[str, torch.Tensor], y, train, val) -> tuple[str, dict[str, float]]:
    val_auroc = {site: auroc(y[val], _fit(x, y, train, val)) for site, x in acts.items()}
    return max(val_auroc, key=lambda s: (np.nan_to_num(val_auroc[s], nan=-1.0), s)), val_auroc


def probe(kind: str, acts: dict[str, torch.Tensor], labels: list[bool],
          base_acts: dict[str, torch.Tensor] | None = None, seed: int = SPLIT_SEED) -> ProbeResult:
    """Fit ``kind``'s probe at every site, choose the site on val, report the test split; the
    base gets the same choice among its own sites, and the shuffled-label null is refit
    N_PERMUTATIONS times at the model's chosen site."""
    y = np.asarray(labels, dtype=int)
    n_pos = int(y.sum())
    res = ProbeResult(kind, estimable=False, n=len(y), n_positive=n_pos)
    if min(n_pos, len(y) - n_pos) < MIN_CLASS:
        res.reason = (f"{n_pos} of {len(y)} rows positive: fewer than {MIN_CLASS} in a class, so there is "
                      "no contrast to probe")
        return res
    train, val, test = _split(y, seed)
    res.site, res.val_auroc = _best_site(acts, y, train, val)
    scores = _fit(acts[res.site], y, train, test)
    res.estimable, res.test_labels, res.test_scores = True, y[test].tolist(), scores.tolist()
    res.train_idx, res.test_idx = train.tolist(), test.tolist()
    res.test_auroc = auroc(y[test], scores)
    rng = np.random.default_rng(seed)
    for _ in range(N_PERMUTATIONS):
        y_shuf = rng.permutation(y)
        res.shuffled_test_aurocs.append(auroc(y_shuf[test], _fit(acts[res.site], y_shuf, train, test)))
    if base_acts:
        res.base_site, _ = _best_site(base_acts, y, train, val)
        base_scores = _fit(base_acts[res.base_site], y, train, test)
        res.base_test_scores, res.base_test_auroc = base_scores.tolist(), auroc(y[test], base_scores)
    return res


def audit_probes(model_acts, base_acts, org, rows, misaligned: list[bool]) -> list[ProbeResult]:
    """The context probe and the marker-matched misbehaviour probe, on the rows with distinct
    prompts (a prompt listed twice would otherwise fall on both sides of a split)."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r.prompt, i)
    unique = sorted(first.values())
    marked = [org.marked(rows[i]) for i in unique]
    context = probe("context", _take(model_acts, unique), marked, _take(base_acts, unique))
    keep = [i for i, m in zip(unique, marked) if m]
    mis = probe("misbehaviour", _take(model_acts, keep), [misaligned[i] for i in keep], _take(base_acts, keep))
    context.rows, mis.rows = unique, keep
    return [context, mis]


def _take(acts: dict[str, torch.Tensor] | None, idx: list[int]) -> dict[str, torch.Tensor] | None:
    return None if acts is None else {s: a[idx] for s, a in acts.items()}
