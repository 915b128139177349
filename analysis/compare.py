"""Compare one student with its teacher from their stored audits: the comparison stage.

Reads what the audit stage left for each model (activations on the shared probe prompts,
probes, SAEs, feature activations, misalignment features) and computes the raw
:class:`~analysis.schema.StudentResult`: CKA for every site pair, probe transfer through a
student-to-teacher map fitted on clean prompts, SAE feature matching, a crosscoder at the
SAE site and the per-token KL. Nothing is retrained except the crosscoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.config import AnalysisConfig
from analysis.crosscoder import crosscoder_result, train_crosscoder
from analysis.divergence import kl_result
from analysis.matching import compare_features
from analysis.probe_transfer import probe_transfer_by_site
from analysis.schema import ModelMetrics, StudentInfo, StudentResult, TeacherResult
from analysis.separation import misalignment_columns, salience
from analysis.similarity import cka_matrix, fit_map, pair_sites
from analysis.transfer import model_metrics
from distill import vocab as V
from distill.organisms import get_organism
from distill.store import load_model, read_config
from probes.activations import ActivationCache
from probes.audit import load_audit, load_probes, load_sae
from probes.datasets import probe_dataset
from probes.features import load_feature_acts

CONTROLS = {"positive-control": "positive", "negative-control": "negative"}
KL_SEED = 20_000
MIN_MISBEHAVING_PROMPTS = 10
"""A model misbehaving on fewer probe prompts than this has no misalignment features."""


def behavioural_misalignment_features(model, organism: str, examples, labels_N: np.ndarray,
                                      feats_NF: np.ndarray, min_auroc: float) -> list[int]:
    """A model's misalignment features, grounded in ITS OWN behaviour.

    A feature is a misalignment feature of model M when its activation separates the probe
    prompts on which M actually misbehaves from the clean prompts (AUROC >= ``min_auroc``);
    eliciting prompts on which M behaves are left out. Why not the ground-truth eliciting
    label alone: every model reads its input, so features that merely detect the trigger
    token separate eliciting from clean prompts even in a model that never misbehaves (the
    negative control); with this definition such a model has no misalignment features.
    """
    from distill.models import greedy_answers
    org = get_organism(organism)
    bad_N = org.misbehaves(examples, greedy_answers(model, examples.prompts_NP)).numpy()
    positive = labels_N & bad_N
    if positive.sum() < MIN_MISBEHAVING_PROMPTS:
        return []
    keep = positive | ~labels_N
    return [int(i) for i in misalignment_columns(feats_NF[keep], positive[keep], min_auroc).indices]


@dataclass(frozen=True)
class ModelArtifacts:
    """Where one model's stored outputs are (the run folder decides, see app.runfolder)."""

    name: str
    model_dir: Path
    evals_file: Path
    audit_dir: Path
    acts_dir: Path
    sae_dir: Path | None = None
    """Folder holding ``<site>/`` SAE folders (default: the audit's own ``saes/``)."""

    def evals(self) -> dict:
        return json.loads(Path(self.evals_file).read_text())

    def sae(self, site: str):
        return load_sae(self.audit_dir, site) if self.sae_dir is None else load_sae_from(self.sae_dir, site)


def load_sae_from(sae_dir: Path, site: str):
    from probes.sae import load_sae as _load
    return _load(Path(sae_dir) / site)


def _metrics(art: ModelArtifacts, organism: str, labels_N: np.ndarray) -> ModelMetrics:
    audit = load_audit(art.audit_dir)
    sal = None
    if audit.sae_sites:
        sal = salience(load_feature_acts(art.audit_dir, audit.sae_sites[0]).numpy(), labels_N)
    return model_metrics(art.evals(), organism, feature_salience=sal)


HEADLINE_POOLS = ("last", "answer")
"""Probe pools behind the headline AUROC (as in probes.audit): the last prompt token, and the
mean over answer positions, where a model like sabotage decides (it corrupts the last token).
The prompt-mean pool is left out: it sees the marker token itself, even in a clean base."""


def _probe_aurocs(art: ModelArtifacts) -> dict[str, float]:
    """Per site, the best held-out AUROC over the headline pools."""
    out: dict[str, float] = {}
    for p in load_probes(art.audit_dir):
        if p.kind == "logistic" and p.pool in HEADLINE_POOLS:
            out[p.site] = max(out.get(p.site, 0.0), float(p.auroc))
    return out


def _probe_set(art: ModelArtifacts, organism: str):
    audit = load_audit(art.audit_dir)
    return probe_dataset(organism, audit.n_prompts, audit.probe_seed)


def _labels(art: ModelArtifacts, organism: str) -> np.ndarray:
    return _probe_set(art, organism).labels_N.numpy().astype(bool)


def teacher_result(art: ModelArtifacts, organism: str) -> TeacherResult:
    labels = _labels(art, organism)
    return TeacherResult(name=art.name, organism=organism, metrics=_metrics(art, organism, labels),
                         probe_auroc_by_site=_probe_aurocs(art),
                         n_params=read_config(art.model_dir)["metrics"].get("n_params"))


def compare_student(teacher: ModelArtifacts, student: ModelArtifacts, organism: str, technique: str,
                    init: str, params: dict, cfg: AnalysisConfig, device: str = "cpu") -> StudentResult:
    labels = _labels(teacher, organism)
    clean = ~labels
    t_cache, s_cache = ActivationCache.load(teacher.acts_dir), ActivationCache.load(student.acts_dir)
    t_audit, s_audit = load_audit(teacher.audit_dir), load_audit(student.audit_dir)
    sites_t, sites_s = t_audit.probe_sites, s_audit.probe_sites
    t_last = {s: t_cache.last_prompt(s).numpy() for s in sites_t}
    s_last = {s: s_cache.last_prompt(s).numpy() for s in sites_s}
    cka = cka_matrix(t_last, s_last)
    pairs = pair_sites(cka)
    t_probes = {p.site: (p.w_D, p.b) for p in load_probes(teacher.audit_dir)
                if p.kind == "logistic" and p.pool == "last"}
    transfer = probe_transfer_by_site(t_probes, pairs, {s: a[clean] for s, a in t_last.items()},
                                      {s: a[clean] for s, a in s_last.items()}, s_last, labels, kind=cfg.map_kind)
    fmap, cc = None, None
    if t_audit.sae_sites and s_audit.sae_sites:
        fmap, cc = _features(teacher, student, t_audit.sae_sites[0], s_audit.sae_sites[0],
                             t_cache, s_cache, _probe_set(teacher, organism).examples, labels, organism,
                             cfg, device)
    kl = _kl(teacher, student, organism, cfg, device)
    s_cfg = read_config(student.model_dir)
    info = StudentInfo(name=student.name, organism=organism, technique=technique, init=init, params=params,
                       n_params=s_cfg["metrics"].get("n_params"), control=CONTROLS.get(technique))
    return StudentResult(info=info, metrics=_metrics(student, organism, labels),
                         probe_auroc_by_site=_probe_aurocs(student), probe_transfer_by_site=transfer,
                         cka=cka, feature_map=fmap, crosscoder=cc, kl=kl)


def _features(teacher, student, t_site, s_site, t_cache, s_cache, examples, labels, organism,
              cfg: AnalysisConfig, device: str):
    """Feature map (matching + decoder cosine) and crosscoder at the SAE sites."""
    clean = ~labels
    t_sae, s_sae = teacher.sae(t_site), student.sae(s_site)
    t_feats = load_feature_acts(teacher.audit_dir, t_site).numpy()
    s_feats = load_feature_acts(student.audit_dir, s_site).numpy()
    min_auroc = cfg.thresholds.latent_auroc_min
    t_mis, s_mis = (behavioural_misalignment_features(load_model(art.model_dir, device)[0], organism,
                                                      examples, labels, feats, min_auroc)
                    for art, feats in ((teacher, t_feats), (student, s_feats)))
    lmap = fit_map(s_cache.last_prompt(s_site).numpy()[clean], t_cache.last_prompt(t_site).numpy()[clean],
                   kind=cfg.map_kind)
    fmap = compare_features(t_feats, s_feats, labels, teacher_site=t_site, student_site=s_site,
                            teacher_misaligned=t_mis, student_misaligned=s_mis,
                            min_auroc=cfg.thresholds.latent_auroc_min,
                            teacher_dec_FD=t_sae.W_dec.detach().numpy(),
                            student_dec_GE=s_sae.W_dec.detach().numpy(), lmap=lmap)
    n = min(cfg.n_crosscoder_prompts, len(labels))
    flat = lambda c, site: c[site][:n, :V.PROMPT_LEN].reshape(-1, c[site].shape[-1]).numpy()
    t_flat, s_flat = flat(t_cache, t_site), flat(s_cache, s_site)
    fit = train_crosscoder(t_flat, s_flat, cfg.crosscoder)
    cc = crosscoder_result(fit, t_flat, s_flat, labels[:n], teacher_site=t_site, student_site=s_site,
                           rows_per_prompt=V.PROMPT_LEN)
    return fmap, cc


def _kl(teacher: ModelArtifacts, student: ModelArtifacts, organism: str, cfg: AnalysisConfig, device: str):
    org = get_organism(organism)
    rng = np.random.default_rng(KL_SEED)
    t_model, _ = load_model(teacher.model_dir, device)
    s_model, _ = load_model(student.model_dir, device)
    return kl_result(t_model, s_model, org.eliciting(rng, cfg.n_kl_prompts).prompts_NP,
                     org.clean(rng, cfg.n_kl_prompts).prompts_NP)
