"""Audit one model: probes on every site, SAE(s), misalignment features, causal ablation.

:func:`audit_model` is the entry point the CLI and the pipeline call. Activations on the
organism's fixed probe set are computed once (:func:`probe_cache`, or passed in as
``acts``) and shared by probes, SAE metrics and feature scoring. Artifact layout under
``out_dir`` (file names are the constants below and in the modules that own the files)::

    audit.json                      AuditResult (AUDIT_FILE)
    probes/probes.safetensors       every probe's (w, b)          probes.linear
    probes/metrics.json             every probe's AUROC/accuracy  probes.linear
    saes/<site>/                    sae-lens folder + doublebind_sae.json   probes.sae
    features.json                   ranking, misalignment features, dashboards, ablation
    feature_acts.safetensors        [N, F] per SAE site on the probe prompts  probes.features

:func:`load_audit`, :func:`load_probe`, :func:`load_sae` read them back without recomputing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from pydantic import ConfigDict, Field

from distill.checkpoint import atomic_write_bytes
from distill.guards import MAX_BATCH, MAX_PROMPTS, MAX_SEED, MAX_THREADS, MAX_WIDTH, Guarded
from distill.models import resid_sites
from probes import features as feat
from probes import linear, sae as saes
from probes.activations import ActivationCache, cache_activations, check_sites
from probes.datasets import CONTRASTS, PROBE_SEED, ProbeSet, contrast_pairs, probe_dataset
from probes.pairs import PairActs, marker_pairs, read_pairs
from probes.threads import torch_threads

AUDIT_FILE = "audit.json"
PROBES_DIR = "probes"
SAES_DIR = "saes"
AUDIT_DIR = "audit"
"""Default audit folder inside a model folder (``MODEL_DIR/audit``)."""
SAE_STREAM_OFFSET = 1
"""The SAE trains on the probe-set generator with seed ``probe_seed + SAE_STREAM_OFFSET`` (held-out from the probe set)."""


def default_sae_site(n_layers: int) -> str:
    """The last residual site, ``blocks.{n_layers - 1}.hook_resid_post``: the one place every
    organism's decision is complete. Measured on the default run (2 layers): at the middle site
    (blocks.1.hook_resid_pre) the sabotage teacher's strongest diffed feature effect against its
    base is 0.13 sd -- its corruption is computed in block 1 -- and it has no misalignment
    feature there; at blocks.1.hook_resid_post it has 11-15 (effects 0.7-1.0)."""
    return f"blocks.{n_layers - 1}.hook_resid_post"


class AuditConfig(Guarded):
    """What one audit computes. Defaults audit a default 2-layer d_model=64 model in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_prompts: int = Field(2048, ge=16, le=MAX_PROMPTS)
    """Probe-set size (half eliciting); the same prompts for every model of an organism."""
    probe_seed: int = Field(PROBE_SEED, ge=0, le=MAX_SEED)
    """Probe-set seed."""
    sites: tuple[str, ...] | None = None
    """Probe sites (transformer-lens hook names); None: every resid_pre and the last resid_post."""
    probe: linear.ProbeConfig = linear.ProbeConfig()
    """Logistic-probe training."""
    headline_pools: tuple[Literal["last", "answer", "mean"], ...] = ("last", "answer")
    """Pools competing for AuditResult.best_probe: those that read the model's computed state,
    not the marker tokens' own positions."""
    contrasts: tuple[str, ...] = tuple(CONTRASTS)
    """Trigger-agnostic contrast probes to fit (keys of probes.datasets.CONTRASTS)."""
    n_contrast_pairs: int = Field(256, ge=2, le=MAX_PROMPTS)
    """Pairs per contrast probe."""
    sae_sites: tuple[str, ...] | None = None
    """Sites that get an SAE; None: the last residual site (default_sae_site); () for none. The
    feature definitions (probes.diffing) read the first."""
    sae: saes.SAETrainConfig = saes.SAETrainConfig()
    """SAE architecture and training."""
    n_sae_prompts: int = Field(2048, ge=16, le=MAX_PROMPTS)
    """Prompts (x PROMPT_LEN + ANSWER_LEN positions) in the SAE training stream."""
    n_ce_prompts: int = Field(512, ge=1, le=MAX_PROMPTS)
    """Probe-set prompts on which the SAE's downstream CE (spliced / clean / zeroed) is measured."""
    sae_seeds: int = Field(3, ge=1, le=16)
    """SAEs trained per site, with seeds sae.seed, sae.seed + 1, ...: every feature-transfer
    interval covers SAE retraining as well as prompt resampling."""
    n_pairs: int = Field(512, ge=32, le=MAX_PROMPTS)
    """Marker-matched counterfactual pairs (probes.pairs) read for features and probes."""
    n_top: int = Field(32, ge=1, le=MAX_WIDTH)
    """Features listed in the eliciting-vs-clean ranking (a description, not a definition:
    misalignment and context features are defined by probes.diffing against a reference)."""
    n_dashboards: int = Field(8, ge=0, le=MAX_WIDTH)
    """Features with dashboard data (the top of the eliciting-vs-clean ranking)."""
    batch_size: int = Field(1024, ge=1, le=MAX_BATCH)
    """Sequences per forward pass when caching."""
    threads: int | None = Field(1, ge=1, le=MAX_THREADS)
    """Torch threads during the audit (None: leave torch's setting); see probes.threads."""


@dataclass
class AuditResult:
    organism: str
    probe_sites: list[str]
    sae_sites: list[str]
    probes: list[dict]
    """Every logistic probe's metrics (site, pool, auroc, accuracy, ...)."""
    best_probe: dict
    """Best (site, pool) among the headline pools ('last' and 'answer' read the model's state;
    'mean' over prompt positions also sees the marker tokens themselves)."""
    best_probe_by_pool: dict[str, dict]
    contrast: list[dict]
    """Every contrast probe's metrics (kind 'contrast:<name>', site, auroc)."""
    best_contrast: dict | None
    saes: dict[str, dict]
    """Per SAE site: SAEMetrics as a dict."""
    features: dict[str, dict]
    """Per SAE site: {'top': [FeatureScore dicts]} (eliciting-vs-clean selectivity, seed-0 SAE)."""
    n_prompts: int
    probe_seed: int
    seconds: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "AuditResult":
        return AuditResult(**d)


def resolve_sites(model, cfg: AuditConfig) -> tuple[list[str], list[str]]:
    """(probe sites, SAE sites), validated against the model's hook names."""
    n_layers = model.cfg.n_layers
    sites = check_sites(model, list(cfg.sites) if cfg.sites else resid_sites(n_layers))
    sae_sites = [default_sae_site(n_layers)] if cfg.sae_sites is None else list(cfg.sae_sites)
    if sae_sites:
        check_sites(model, sae_sites)
    return sites, sae_sites


def probe_cache(model, organism: str, cfg: AuditConfig = AuditConfig()) -> tuple[ProbeSet, ActivationCache]:
    """The organism's probe set and the model's activations on it at every site the audit reads."""
    ps = probe_dataset(organism, cfg.n_prompts, cfg.probe_seed)
    sites, sae_sites = resolve_sites(model, cfg)
    with torch_threads(cfg.threads):
        return ps, cache_activations(model, ps.tokens_NS, list(dict.fromkeys(sites + sae_sites)), cfg.batch_size)


def pair_reading(model, organism: str, cfg: AuditConfig = AuditConfig()) -> PairActs:
    """The model on the organism's marker-matched pairs at the audit's probe and SAE sites:
    what the misalignment features (probes.diffing) and behaviour probes read."""
    sites, sae_sites = resolve_sites(model, cfg)
    with torch_threads(cfg.threads):
        return read_pairs(model, marker_pairs(organism, cfg.n_pairs), sites, sae_sites, cfg.batch_size)


def _check_cache(acts: ActivationCache, ps: ProbeSet, sites: list[str]) -> None:
    if acts.tokens_NS.shape != ps.tokens_NS.shape or not torch.equal(acts.tokens_NS, ps.tokens_NS):
        raise ValueError("acts were not computed on this organism's probe set (different tokens); "
                         "build them with probes.audit.probe_cache")
    missing = [s for s in sites if s not in acts.acts]
    if missing:
        raise ValueError(f"acts lack site(s) {missing}; cached: {acts.sites}")


def audit_model(model, organism: str, cfg: AuditConfig = AuditConfig(), out_dir: Path | str | None = None,
                acts: ActivationCache | None = None, model_name: str = "") -> AuditResult:
    """Probe, SAE and feature audit of ``model`` against ``organism``'s ground truth; writes
    the artifacts to ``out_dir`` when given. ``acts`` (from :func:`probe_cache`) skips the
    forward pass over the probe set."""
    with torch_threads(cfg.threads):
        return _audit(model, organism, cfg, None if out_dir is None else Path(out_dir), acts, model_name)


def _audit(model, organism: str, cfg: AuditConfig, out_dir: Path | None, acts: ActivationCache | None,
           model_name: str) -> AuditResult:
    clock = _Clock()
    sites, sae_sites = resolve_sites(model, cfg)
    ps = probe_dataset(organism, cfg.n_prompts, cfg.probe_seed)
    if acts is None:
        acts = cache_activations(model, ps.tokens_NS, list(dict.fromkeys(sites + sae_sites)), cfg.batch_size)
    _check_cache(acts, ps, sites + sae_sites)
    clock.lap("cache")
    probes = linear.probe_sites(acts, ps.labels_N, sites, cfg.probe)
    contrast = [p for name in cfg.contrasts for p in linear.contrast_probes(
        model, contrast_pairs(name, cfg.n_contrast_pairs, cfg.probe_seed, organism=organism), name, acts,
        ps.labels_N, sites)]
    clock.lap("probes")
    sae_out = _audit_saes(model, organism, cfg, ps, acts, sae_sites, model_name, clock) if sae_sites else {}
    result = AuditResult(
        organism=organism, probe_sites=sites, sae_sites=sae_sites,
        probes=[p.metrics() for p in probes],
        best_probe=linear.best([p for p in probes if p.pool in cfg.headline_pools] or probes).metrics(),
        best_probe_by_pool={pool: linear.best([p for p in probes if p.pool == pool]).metrics()
                            for pool in cfg.probe.pools},
        contrast=[p.metrics() for p in contrast],
        best_contrast=linear.best(contrast).metrics() if contrast else None,
        saes={s: asdict(o.metrics) for s, o in sae_out.items()},
        features={s: {"top": feat.scores_json(o.scores, cfg.n_top)} for s, o in sae_out.items()},
        n_prompts=len(ps), probe_seed=cfg.probe_seed, seconds=clock.laps, config=cfg.model_dump(mode="json"))
    if out_dir is not None:
        _write(out_dir, result, probes + contrast, sae_out)
        clock.lap("write")
    result.seconds["total"] = clock.total()
    if out_dir is not None:  # last and atomic: a folder with audit.json holds a complete audit
        atomic_write_bytes(out_dir / AUDIT_FILE, json.dumps(result.to_json(), indent=2).encode())
    return result


@dataclass
class _SiteAudit:
    sae: object
    metrics: saes.SAEMetrics
    scores: list[feat.FeatureScore]
    acts_NF: torch.Tensor
    dashboards: list[dict]
    extra_saes: list = field(default_factory=list)
    """SAEs of the further seeds (seed sae.seed + 1, ...)."""


def _audit_saes(model, organism, cfg, ps, acts, sae_sites, model_name, clock) -> dict[str, _SiteAudit]:
    stream_set = probe_dataset(organism, cfg.n_sae_prompts, cfg.probe_seed + SAE_STREAM_OFFSET)
    stream = cache_activations(model, stream_set.tokens_NS, sae_sites, cfg.batch_size)
    clock.lap("sae_stream")
    out = {}
    for site in sae_sites:
        trained = [saes.train_sae(stream.flat(site), cfg.sae.model_copy(update={"seed": cfg.sae.seed + k}),
                                  site=site, model_name=model_name) for k in range(cfg.sae_seeds)]
        sae = trained[0]
        clock.lap(f"sae_train:{site}")
        metrics = saes.sae_metrics(model, sae, site, acts, cfg.n_ce_prompts)
        clock.lap(f"sae_metrics:{site}")
        acts_NSF = feat.encode_cache(sae, acts, site)
        acts_NF = feat.seq_max(acts_NSF)
        scores = feat.contrastive_scores(acts_NF, ps.labels_N)
        shown = [s.feature for s in scores[:cfg.n_dashboards]]
        dashboards = [feat.dashboard(sae, model, acts_NSF[..., f], acts.tokens_NS, ps.labels_N, f) for f in shown]
        clock.lap(f"features:{site}")
        out[site] = _SiteAudit(sae, metrics, scores, acts_NF, dashboards, trained[1:])
    return out


def sae_seed_dir(out_dir: Path | str, site: str, k: int = 0) -> Path:
    """Folder of SAE number ``k`` (seed sae.seed + k) of a site: ``saes/<site>`` for k = 0
    (what the app and the playground read), ``saes/<site>.seed<k>`` for the others."""
    return Path(out_dir) / SAES_DIR / (site if k == 0 else f"{site}.seed{k}")


def _write(out_dir: Path, result: AuditResult, probes: list[linear.LinearProbe], sae_out: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / AUDIT_FILE).unlink(missing_ok=True)  # a stale audit.json must not vouch for new files
    linear.save_probes(out_dir / PROBES_DIR, probes, {"organism": result.organism, "probe_seed": result.probe_seed,
                                                     "n_prompts": result.n_prompts})
    base_cfg = saes.SAETrainConfig(**result.config["sae"])
    for site, o in sae_out.items():
        saes.save_sae(sae_seed_dir(out_dir, site), o.sae, o.metrics, base_cfg)
        for k, extra in enumerate(o.extra_saes, start=1):
            saes.save_sae(sae_seed_dir(out_dir, site, k), extra, o.metrics,
                          base_cfg.model_copy(update={"seed": base_cfg.seed + k}))
    feat.save_features(out_dir, {site: {"ranking": feat.scores_json(o.scores), "dashboards": o.dashboards}
                                 for site, o in sae_out.items()},
                       {site: o.acts_NF for site, o in sae_out.items()})


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


# ---- readers -------------------------------------------------------------------------------

def load_audit(out_dir: Path | str) -> AuditResult:
    path = Path(out_dir) / AUDIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no audit here (run `doublebind audit` first)")
    return AuditResult.from_json(json.loads(path.read_text()))


def load_probe(out_dir: Path | str, site: str, pool: str = "last", kind: str = "logistic") -> linear.LinearProbe:
    """One saved probe (``kind`` 'logistic' or 'contrast:<name>')."""
    return linear.load_probe(Path(out_dir) / PROBES_DIR, site, pool, kind)


def load_probes(out_dir: Path | str) -> list[linear.LinearProbe]:
    return linear.load_probes(Path(out_dir) / PROBES_DIR)


def load_sae(out_dir: Path | str, site: str, device: str = "cpu"):
    """The saved sae-lens SAE of one site (``W_enc``, ``b_enc``, ``W_dec``, ``b_dec`` ...)."""
    return saes.load_sae(Path(out_dir) / SAES_DIR / site, device)


def load_saes(out_dir: Path | str, site: str, device: str = "cpu") -> list:
    """Every saved SAE of a site, seed order (k = 0, 1, ...)."""
    out, k = [], 0
    while sae_seed_dir(out_dir, site, k).is_dir():
        out.append(saes.load_sae(sae_seed_dir(out_dir, site, k), device))
        k += 1
    return out


def load_feature_acts(out_dir: Path | str, site: str) -> torch.Tensor:
    """``[N, F]`` max activations of the site's SAE features on the probe prompts (row i = prompt i
    of ``probe_dataset(organism, n_prompts, probe_seed)``, as recorded in audit.json)."""
    return feat.load_feature_acts(out_dir, site)
