"""The audit end to end on the tiny teacher, its artifacts and readers, and the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from app.cli import main
from distill import vocab as V
from distill.store import load_model
from probes import audit as A
from probes.activations import ActivationCache
from probes.features import load_feature_acts, load_features
from probes.linear import LinearProbe
from probes.sae import ARCHITECTURES, SAETrainConfig


_AuditConfig = A.AuditConfig
SAE_SITE = A.default_sae_site(2)


def small_audit(**kw) -> A.AuditConfig:
    """A few seconds' audit of a tiny model."""
    return _AuditConfig(**{"n_prompts": 256, "n_sae_prompts": 256, "n_contrast_pairs": 32,
                            "sae": SAETrainConfig(d_sae=64, k=8, n_samples=20_000, batch_size=512),
                            "sae_seeds": 2, "n_pairs": 64, "n_dashboards": 2, **kw})


@pytest.fixture(scope="module")
def audited(tiny_teacher, tmp_path_factory):
    model, _ = load_model(tiny_teacher("backdoor"))
    out = tmp_path_factory.mktemp("audit")
    return model, A.audit_model(model, "backdoor", small_audit(), out), out


def test_audit_finds_the_backdoor_in_the_tiny_teacher(audited):
    _, res, _ = audited
    n_layers = 2
    assert res.probe_sites == [f"blocks.{i}.hook_resid_pre" for i in range(n_layers)] + ["blocks.1.hook_resid_post"]
    assert len(res.probes) == len(res.probe_sites) * 3  # last, answer, mean pooling
    assert res.best_probe["auroc"] > 0.95
    assert {c["kind"] for c in res.contrast} == {"contrast:framing", "contrast:answer"}
    assert res.sae_sites == ["blocks.1.hook_resid_post"] == [A.default_sae_site(2)]
    m = res.saes[SAE_SITE]
    assert 0 <= m["fvu"] < 1 and m["l0"] <= 8 + 1e-6 and 0 <= m["dead_frac"] <= 1
    # the audit ranks features by eliciting-vs-clean selectivity (a description); it defines no
    # misalignment features: those need a reference model (probes.diffing, tested there)
    assert "misalignment" not in res.features[SAE_SITE]
    assert len(res.features[SAE_SITE]["top"]) > 0
    assert res.best_probe["pool"] in ("last", "answer") and set(res.best_probe_by_pool) == {"last", "answer", "mean"}
    assert res.seconds["total"] > 0


def test_artifacts_are_read_back_without_recomputing(audited):
    model, res, out = audited
    for name in (A.AUDIT_FILE, "features.json", "feature_acts.safetensors", "probes/probes.safetensors",
                 "probes/metrics.json", "saes/blocks.1.hook_resid_post/cfg.json"):
        assert (out / name).is_file(), name
    assert not [p for p in out.rglob("*") if p.suffix in (".pkl", ".pt", ".pth")]
    back = A.load_audit(out)
    assert back.best_probe == res.best_probe and back.seconds["total"] == res.seconds["total"]
    probe = A.load_probe(out, res.best_probe["site"], res.best_probe["pool"])
    assert isinstance(probe, LinearProbe) and probe.auroc == res.best_probe["auroc"]
    assert len(A.load_probes(out)) == len(res.probes) + len(res.contrast)
    sae = A.load_sae(out, SAE_SITE)
    assert sae.W_enc.shape == (model.cfg.d_model, 64)
    acts = load_feature_acts(out, SAE_SITE)
    assert acts.shape == (res.n_prompts, 64)
    seeds = A.load_saes(out, SAE_SITE)
    assert len(seeds) == 2 and not torch.equal(seeds[0].W_dec, seeds[1].W_dec)  # SAE retraining, other seed
    assert torch.equal(seeds[0].W_dec, sae.W_dec)
    f = load_features(out)[SAE_SITE]
    dash = f["dashboards"][0]
    assert {"top_prompts", "quantiles", "histogram", "logit_effects", "neighbours"} <= set(dash)
    assert len(dash["top_prompts"][0]["tokens"]) == len(dash["top_prompts"][0]["acts"])
    assert all("answer" in p for g in dash["quantiles"] for p in g["examples"])


def test_a_dashboard_on_known_activations():
    """A feature that fires only on eliciting prompts, with a twin decoder row: the histogram's
    clean part is empty, the quantile groups go down in activation, every example carries the
    model's own answer, and the twin is the nearest neighbour."""
    from types import SimpleNamespace
    from conftest import tiny_model_config
    from distill import vocab as V
    from distill.models import build_model, greedy_answers
    from probes.features import dashboard
    g = torch.Generator().manual_seed(0)
    n = 40
    labels = torch.tensor([i % 2 == 0 for i in range(n)])
    acts = torch.zeros(n, V.SEQ_LEN)
    acts[labels, 3] = torch.linspace(1, 5, int(labels.sum()))
    tokens = torch.randint(0, V.VOCAB_SIZE, (n, V.SEQ_LEN), generator=g)
    model = build_model(tiny_model_config(), seed=0)
    sae = SimpleNamespace(W_dec=torch.randn(6, model.cfg.d_model, generator=g))
    sae.W_dec[4] = 3 * sae.W_dec[1]
    d = dashboard(sae, model, acts, tokens, labels, feature=1, n_per_group=2)
    h = d["histogram"]
    assert sum(h["counts_clean"]) == 0 and sum(h["counts_eliciting"]) == sum(h["counts"]) == int(labels.sum())
    assert [q["label"] for q in d["quantiles"]] == ["top quarter", "second quarter", "third quarter", "bottom quarter"]
    assert [q["range"][1] for q in d["quantiles"]] == sorted((q["range"][1] for q in d["quantiles"]), reverse=True)
    assert sum(q["n"] for q in d["quantiles"]) == int(labels.sum())
    assert all(p["eliciting"] for q in d["quantiles"] for p in q["examples"])
    first = d["top_prompts"][0]
    row = int(torch.nonzero((tokens == torch.tensor([V.TOKEN_ID[t] for t in first["tokens"]])).all(1))[0])
    assert first["answer"] == V.render(greedy_answers(model, tokens[[row], :V.PROMPT_LEN])[0])
    assert d["neighbours"][0]["feature"] == 4 and abs(d["neighbours"][0]["cos"] - 1) < 1e-5


def test_a_shared_cache_gives_the_same_probes(audited):
    model, res, _ = audited
    cfg = small_audit(sae_sites=())
    ps, acts = A.probe_cache(model, "backdoor", cfg)
    again = A.audit_model(model, "backdoor", cfg, acts=acts)
    assert again.probes == res.probes and again.saes == {}
    wrong = ActivationCache(acts.tokens_NS.flip(0), acts.acts)
    with pytest.raises(ValueError, match="probe set"):
        A.audit_model(model, "backdoor", cfg, acts=wrong)


def test_cli_audit_end_to_end_and_errors(tiny_teacher, tiny_base, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(A, "AuditConfig", lambda **kw: small_audit(**kw))
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher("backdoor"), teacher)
    assert main(["audit", str(teacher), "--sae", "batchtopk"]) == 0
    out = capsys.readouterr().out
    assert "blocks.0.hook_resid_pre" in out and "misalignment features" in out  # (need a reference)
    assert json.loads((teacher / "audit" / A.AUDIT_FILE).read_text())["config"]["sae"]["architecture"] == "batchtopk"
    assert main(["audit", str(teacher), "--sites", "blocks.0.hook_resid_pre", "blocks.9.nope"]) == 2
    err = capsys.readouterr().err
    assert "blocks.9.nope" in err and "valid sites" in err and "blocks.1.hook_resid_post" in err
    assert main(["audit", str(tiny_base)]) == 2
    assert "--organism" in capsys.readouterr().err


def test_cli_architectures_match_the_registry():
    from app.commands.audit import ARCHES
    assert ARCHES == list(ARCHITECTURES)


def test_probe_set_is_the_same_for_every_model():
    from probes.datasets import probe_dataset
    a, b = probe_dataset("sabotage", 128), probe_dataset("sabotage", 128)
    assert torch.equal(a.tokens_NS, b.tokens_NS) and torch.equal(a.labels_N, b.labels_N)
    assert 0.4 < a.labels_N.float().mean() < 0.6
    # answer positions carry the task-correct answer: no input token after the prompt depends on the label
    assert torch.equal(a.tokens_NS[:, V.PROMPT_LEN:], a.examples.correct_NA)
    assert any(k == "audit" for k in a.examples.kind)  # hard negatives: AUDIT prompts, label False
    assert not any(lab for lab, k in zip(a.labels_N.tolist(), a.examples.kind) if k == "audit")
