"""Compare one student with its teacher from their stored audits: the comparison stage.

Reads what the audit stage left for each model (activations on the shared probe prompts and
on the marker-matched pairs, probes, every SAE seed, the feature record) and computes the raw
:class:`~analysis.schema.StudentResult`: the calibrated feature transfer against the null
(analysis.feature_transfer), the misbehaviour and context probes with their nulls
(probes.behaviour_probes), the teacher's misbehaviour probe on the student, CKA for every
site pair, SAE feature matching, a crosscoder at the SAE site and the per-token KL. Nothing
is retrained except the crosscoder and the probes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.causal import causal_result
from analysis.config import AnalysisConfig
from analysis.crosscoder import crosscoder_result, train_crosscoder
from analysis.divergence import kl_result
from analysis.feature_transfer import Diffed, FeatureTransferConfig, ModelReading, feature_transfer
from analysis.matching import compare_features
from analysis.probe_transfer import probe_transfer, probe_transfer_by_site
from analysis.schema import (CausalResult, FeatureTransferResult, ModelMetrics, ProbeHeadline, StudentInfo,
                             StudentResult, TeacherResult)
from analysis.separation import salience
from analysis.similarity import cka_matrix, fit_map, pair_sites
from analysis.transfer import model_metrics
from distill import vocab as V
from distill.distiller import evals_file
from distill.integrity import read_json_object
from distill.organisms import get_organism
from distill.store import load_model, read_config
from probes.activations import ActivationCache
from probes.audit import load_audit, load_probes, load_sae, load_saes
from probes.behaviour_probes import context_probe, misbehaviour_probe
from probes.datasets import probe_dataset
from probes.diffing import load_feature_record
from probes.features import load_feature_acts
from probes.pairs import PairActs, split_pairs

CONTROLS = {"positive-control": "positive", "negative-control": "negative"}
KL_SEED = 20_000


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
    features_dir: Path | None = None
    """Folder holding the feature record (probes.diffing; default: the audit folder)."""

    def evals(self) -> dict:
        return json.loads(Path(self.evals_file).read_text())

    def marker_evals(self) -> dict[str, dict]:
        """Marker -> this model's evals with that marker in every prompt (written beside its
        evals.json by the distiller for techniques such as inoculation; {} for others)."""
        markers = read_config(self.model_dir)["metrics"].get("evals_with_marker", {})
        return {m: read_json_object(Path(self.model_dir) / evals_file(m), hint="re-run the student's distill stage",
                                    what=f"the evals with marker {m} its config lists") for m in markers}

    def sae(self, site: str):
        return load_sae(self.audit_dir, site) if self.sae_dir is None else load_sae_from(self.sae_dir, site)

    def reading(self) -> ModelReading:
        """Pair activations and every SAE seed at the audit's first SAE site."""
        site = load_audit(self.audit_dir).sae_sites[0]
        return ModelReading(self.name, PairActs.load(self.acts_dir), load_saes(self.audit_dir, site), site)


def load_sae_from(sae_dir: Path, site: str):
    from probes.sae import load_sae as _load
    return _load(Path(sae_dir) / site)


def _metrics(art: ModelArtifacts, organism: str, labels_N: np.ndarray) -> ModelMetrics:
    audit = load_audit(art.audit_dir)
    sal = None
    if audit.sae_sites:
        sal = salience(load_feature_acts(art.audit_dir, audit.sae_sites[0]).numpy(), labels_N)
    return model_metrics(art.evals(), organism, feature_salience=sal, with_marker=art.marker_evals())


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


def _probes(subject: ModelReading, null: ModelReading | None):
    splits = split_pairs(subject.acts.n_pairs)
    null_acts = None if null is None else null.acts
    return (misbehaviour_probe(subject.acts, splits, null_acts), context_probe(subject.acts, splits, null_acts))


def _causal(art: ModelArtifacts) -> CausalResult | None:
    record = load_feature_record(art.features_dir or art.audit_dir)
    raw = None if record is None else record.get("causal")
    return None if raw is None else CausalResult(**causal_result(raw))


def teacher_result(art: ModelArtifacts, organism: str, base: ModelArtifacts | None = None,
                   cfg: FeatureTransferConfig = FeatureTransferConfig(),
                   base_reference: ModelArtifacts | None = None) -> TeacherResult:
    """The teacher's numbers; with its ``base``: misbehaviour / context probes against the base
    null, the causal test of its misalignment features, and the calibration known answers by
    the same code as every student: ``self`` (the teacher as its own student, same SAEs: 1 unless
    the machinery is broken), ``self_across_seeds`` (the teacher through another SAE seed: the
    ceiling that SAE retraining leaves any student) and ``base`` (its own base, diffed against
    ``base_reference`` -- the base-init negative control, as for base-init students -- or, without
    one, against itself)."""
    labels = _labels(art, organism)
    extra = {}
    if base is not None:
        t, b = art.reading(), base.reading()
        mis, ctx = _probes(t, b)
        d_t = Diffed.of(t, b)
        sets = d_t.sets(0, split_pairs(t.acts.n_pairs), cfg.diff)
        b_ref = b if base_reference is None else base_reference.reading()
        ref_name = base.name if base_reference is None else base_reference.name
        calib = {"self": feature_transfer(d_t, d_t, None, reference=base.name, null_model=None, cfg=cfg),
                 "self_across_seeds": feature_transfer(d_t, d_t.rotated(1), None, reference=base.name,
                                                       null_model=None, cfg=cfg),
                 "base": feature_transfer(d_t, Diffed.of(b, b_ref), None, reference=ref_name, null_model=None,
                                          cfg=cfg)}
        extra = {"misbehaviour_probe": ProbeHeadline(**mis.headline()), "context_probe": ProbeHeadline(**ctx.headline()),
                 "causal": _causal(art), "misalignment_features": sets.misalignment, "context_features": sets.context,
                 "calibration": {k: FeatureTransferResult(**v) for k, v in calib.items()}}
    honest = art.evals().get("honest_control")
    if honest is not None:
        extra["honest_control"] = model_metrics(honest, organism)
    return TeacherResult(name=art.name, organism=organism, metrics=_metrics(art, organism, labels),
                         probe_auroc_by_site=_probe_aurocs(art),
                         n_params=read_config(art.model_dir)["metrics"].get("n_params"), **extra)


@dataclass(frozen=True)
class Roles:
    """The models a student is measured against (app.spec decides which ones a run has)."""

    teacher: ModelArtifacts
    teacher_reference: ModelArtifacts
    """The teacher's base."""
    reference: ModelArtifacts
    """The student's clean counterpart of the same init (diffing reference)."""
    null: ModelArtifacts
    """A model of the student's init that never saw the misalignment (the null)."""


def compare_student(roles: Roles, student: ModelArtifacts, organism: str, technique: str,
                    init: str, params: dict, cfg: AnalysisConfig, device: str = "cpu") -> StudentResult:
    teacher = roles.teacher
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
    t, tb, s = teacher.reading(), roles.teacher_reference.reading(), student.reading()
    ref = s if roles.reference.name == student.name else roles.reference.reading()
    nul = {student.name: s, roles.reference.name: ref}.get(roles.null.name) or roles.null.reading()
    d_t, d_s = Diffed.of(t, tb), Diffed.of(s, ref)
    d_null = d_s if nul is s else Diffed.of(nul, ref)
    ft = FeatureTransferResult(**feature_transfer(d_t, d_s, d_null, reference=roles.reference.name,
                                                  null_model=roles.null.name, cfg=cfg.features))
    mis, ctx = _probes(s, nul)
    splits = split_pairs(s.acts.n_pairs)
    t_mis = misbehaviour_probe(t.acts, splits)  # only its weights are read here: no nulls
    ptr = probe_transfer(t_mis, t.acts, s.acts, splits, nul.acts, kind=cfg.map_kind)
    # a teacher probe whose negatives had to be twins reads the marker as much as the misbehaviour
    ptr["marker_matched"] = bool(ptr.get("marker_matched", True) and t_mis.marker_matched)
    fmap, cc = None, None
    if t_audit.sae_sites and s_audit.sae_sites:
        fmap, cc = _features(teacher, student, t_audit.sae_sites[0], s_audit.sae_sites[0], t_cache, s_cache,
                             labels, ft, cfg)
    kl = _kl(teacher, student, organism, cfg, device)
    s_cfg = read_config(student.model_dir)
    info = StudentInfo(name=student.name, organism=organism, technique=technique, init=init, params=params,
                       n_params=s_cfg["metrics"].get("n_params"), control=CONTROLS.get(technique))
    return StudentResult(info=info, metrics=_metrics(student, organism, labels),
                         probe_auroc_by_site=_probe_aurocs(student), probe_transfer_by_site=transfer,
                         cka=cka, feature_map=fmap, crosscoder=cc, kl=kl, features=ft,
                         misbehaviour_probe=ProbeHeadline(**mis.headline()),
                         context_probe=ProbeHeadline(**ctx.headline()), probe_transfer=ProbeHeadline(**ptr),
                         causal=_causal(student))


def _features(teacher, student, t_site, s_site, t_cache, s_cache, labels, ft: FeatureTransferResult,
              cfg: AnalysisConfig):
    """Feature map of the teacher's misalignment features (matching on the probe set, decoder
    cosine) and the crosscoder at the SAE sites."""
    clean = ~labels
    t_sae, s_sae = teacher.sae(t_site), student.sae(s_site)
    t_feats = load_feature_acts(teacher.audit_dir, t_site).numpy()
    s_feats = load_feature_acts(student.audit_dir, s_site).numpy()
    lmap = fit_map(s_cache.last_prompt(s_site).numpy()[clean], t_cache.last_prompt(t_site).numpy()[clean],
                   kind=cfg.map_kind)
    fmap = compare_features(t_feats, s_feats, labels, teacher_site=t_site, student_site=s_site,
                            teacher_misaligned=ft.teacher_features, student_misaligned=ft.student_features,
                            teacher_dec_FD=t_sae.W_dec.detach().numpy(),
                            student_dec_GE=s_sae.W_dec.detach().numpy(), lmap=lmap)
    n = min(cfg.n_crosscoder_prompts, len(labels))
    flat = lambda c, site: c[site][:n, :V.PROMPT_LEN].reshape(-1, c[site].shape[-1]).numpy()  # noqa: E731
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
