"""Feature dashboards for any SAE feature of any audited model, and token highlighting.

The audit stores dashboards for its top features (probes.features); any other feature --
e.g. a student's match of a teacher feature -- is computed here the same way
(:func:`probes.features.dashboard`) from the model's activations on the shared probe
prompts (``acts/<model>/``, recomputed when absent).
"""

from __future__ import annotations

import torch

from app.runfolder import RunFolder
from app.ui.kit import ModelKit
from probes import features as feat
from probes.activations import CACHE_FILE, ActivationCache, cache_activations
from probes.datasets import probe_dataset


def stored_dashboard(run: RunFolder, model_id: str, site: str, feature: int) -> dict | None:
    """The audit's own dashboard of ``feature`` at ``site``, if it made one in this format
    (an older run's are recomputed)."""
    try:
        boards = feat.load_features(run.probes(model_id)).get(site, {}).get("dashboards", [])
    except (OSError, ValueError, AttributeError):
        return None
    return next((d for d in boards if isinstance(d, dict) and d.get("feature") == feature
                 and d.get("format") == feat.DASHBOARD_FORMAT), None)


def probe_set_acts(run: RunFolder, kit: ModelKit, site: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(site activations ``[N, S, d]``, tokens ``[N, S]``, labels ``[N]``) on the probe set the
    audit used; read from ``acts/<model>/`` when it matches, else recomputed."""
    audit = kit.audit
    if audit is None:
        raise ValueError(f"{kit.model_id} has no audit, so no probe set to read")
    ps = probe_dataset(audit.organism, audit.n_prompts, audit.probe_seed)
    folder = run.acts(kit.model_id)
    if (folder / CACHE_FILE).is_file():
        cache = ActivationCache.load(folder)
        if site in cache.acts and torch.equal(cache.tokens_NS, ps.tokens_NS):
            return cache[site], cache.tokens_NS, ps.labels_N
    with kit.lock:
        cache = cache_activations(kit.model, ps.tokens_NS, [site])
    return cache[site], cache.tokens_NS, ps.labels_N


@torch.no_grad()
def computed_dashboard(kit: ModelKit, acts_NSd: torch.Tensor, tokens_NS: torch.Tensor,
                       labels_N: torch.Tensor, feature: int) -> dict:
    """:func:`probes.features.dashboard` of one feature of the kit's SAE."""
    if kit.sae is None:
        raise ValueError(f"{kit.model_id} has no SAE")
    if not 0 <= feature < kit.sae.W_dec.shape[0]:
        raise ValueError(f"feature {feature} out of range: the SAE has {kit.sae.W_dec.shape[0]} features")
    acts_NS = torch.cat([kit.sae.encode(a.float())[..., feature] for a in acts_NSd.split(512)])
    with kit.lock:  # greedy answers run the shared model
        return feat.dashboard(kit.sae, kit.model, acts_NS, tokens_NS, labels_N, feature)
