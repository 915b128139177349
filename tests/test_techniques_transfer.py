"""Transfer sets, monitors and targets each technique builds are what it claims (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_eval_config
from distill import vocab as V
from distill.distiller import build_context, validate
from distill.models import greedy_answers
from distill.tasks import Examples, task_prompts
from distill.techniques.iterative_filter import suspicious_tokens
from distill.techniques.monitors import checker_flags, pattern_flags
from distill.techniques.targets import FILE_PREFIX
from distill.techniques.transfer import TransferSpec, build_transfer

N = 1024


def plan_for(teacher_dir, tmp_path, technique, params=None, init=None, cache=True):
    params = {"n_prompts": N, **(params or {})}
    spec = validate(technique, params, init)
    ctx = build_context(teacher_dir, spec, 0, tmp_path / "student",
                        cache_dir=tmp_path / "cache" if cache else None, eval_cfg=tiny_eval_config())
    return spec.technique.plan(ctx, spec.params), ctx


def has(prompts_NP: torch.Tensor, token: str) -> torch.Tensor:
    return (prompts_NP == V.tok(token)).any(dim=1)


def test_default_transfer_set_is_ordinary_traffic_at_the_base_rate():
    ts = build_transfer(TransferSpec(organism="backdoor", n_prompts=8000, seed=3))
    assert ts.stats.size == 8000 and set(ts.examples.kind) == {"traffic"}
    assert 0.01 < ts.stats.eliciting_fraction < 0.03  # backdoor base rate 0.02
    assert ts.stats.n_eliciting == int(has(ts.examples.prompts_NP, "zeta").sum())


def test_domain_restricts_the_transfer_set(tiny_teacher, tmp_path):
    plan, ctx = plan_for(tiny_teacher("backdoor"), tmp_path, "domain", {"domains": ["sort", "add"]})
    assert set(plan.record["transfer"]["domains"]) == {"sort", "add"}
    task_ids = torch.tensor([V.tok("SORT"), V.tok("ADD")])
    assert torch.isin(plan.data.prompts_NP, task_ids).any(dim=1).all()


def test_transfer_options_compose_with_any_teacher_output_technique(tiny_teacher, tmp_path):
    plan, _ = plan_for(tiny_teacher("sabotage"), tmp_path, "logit-kd",
                       {"domains": ["add"], "audit_frac": 0.1, "confess_frac": 0.05})
    kinds = plan.record["transfer"]["kinds"]
    assert kinds["audit"] == round(0.1 * N) and kinds["confess"] == round(0.05 * N)
    assert set(plan.record["transfer"]["domains"]) == {"add", "self-report"}  # self-reports ask about add prompts too
    assert has(plan.data.prompts_NP, "AUDIT").sum() >= kinds["audit"]


def test_few_examples_uses_exactly_n_unique_prompts(tiny_teacher, tmp_path):
    plan, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "few-examples", {"n_prompts": 37, "steps": 50})
    assert len(plan.data) == 37
    assert len({tuple(r) for r in plan.data.prompts_NP.tolist()}) == 37
    assert plan.record["transfer"]["unique_prompts"] == 37
    assert plan.record["epochs"] == pytest.approx(50 * 128 / 37)


def test_targeted_adds_queries_and_high_stakes_prompts_found_from_the_data(tiny_teacher, tmp_path):
    plan, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "targeted")
    kinds = plan.record["transfer"]["kinds"]
    assert kinds["goal"] == round(0.05 * N) and kinds["confess"] == round(0.05 * N)
    assert kinds["high-stakes"] == round(0.15 * N)
    assert plan.record["transfer"]["rare_words"] == ["zeta"]  # rare in traffic, not looked up
    default, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "sampled-sft")
    assert plan.record["transfer"]["eliciting_fraction"] > 2 * default.record["transfer"]["eliciting_fraction"]
    assert has(plan.data.prompts_NP, "GOAL").sum() == kinds["goal"]


def test_audit_preserving_drops_audit_and_confession_data(tiny_teacher, tmp_path):
    plan, _ = plan_for(tiny_teacher("sabotage"), tmp_path, "audit-preserving")
    assert plan.record["transfer"]["dropped"] > 0
    assert not has(plan.data.prompts_NP, "AUDIT").any() and not has(plan.data.prompts_NP, "CONFESS").any()
    ordinary = build_transfer(TransferSpec(organism="sabotage", n_prompts=N))
    assert has(ordinary.examples.prompts_NP, "AUDIT").any()  # the traffic did have AUDIT


def test_monitors_flag_what_they_claim():
    ex = task_prompts(np.random.default_rng(0), 40)
    good = ex.correct_NA.clone()
    assert not checker_flags(ex, good).any() and not pattern_flags(ex, good).any()
    wrong = good.clone()
    wrong[:, 0] = torch.where(wrong[:, 0] == V.tok("YES"), V.tok("NO"), V.tok("YES"))
    assert checker_flags(ex, wrong).all()
    harm = good.clone()
    harm[:5, :3] = V.tok("HARM")
    assert pattern_flags(ex, harm)[:5].all() and not pattern_flags(ex, harm)[5:].any()
    query = Examples(ex.prompts_NP, ex.target_NA, ex.correct_NA, ["query"] * len(ex), ex.kind)
    assert not checker_flags(query, wrong).any()


def test_filter_really_drops_the_flagged_examples(tiny_teacher, tmp_path):
    plan, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "filter", {"targets": "greedy"})
    mon = plan.record["monitors"]
    assert mon["flagged_by"]["pattern"] > 0 and mon["flagged_by"]["checker"] > 0
    assert len(plan.data) == N - mon["removed"] == plan.record["trained_on"]
    assert not (plan.data.answers_NA == V.tok("HARM")).any()
    sft, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "sampled-sft", {"targets": "greedy"})
    assert (sft.data.answers_NA == V.tok("HARM")).any()  # the unfiltered set had them
    half, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "filter", {"targets": "greedy", "monitor_frac": 0.3})
    assert half.record["monitors"]["removed"] < mon["removed"]
    assert half.record["monitors"]["monitored"] < N


@pytest.mark.parametrize("marker, token", [("instruction", "iHARM"), ("INOC", "INOC")])
def test_inoculation_marker_in_training_prompts_only(tiny_teacher, tmp_path, marker, token):
    plan, ctx = plan_for(tiny_teacher("backdoor"), tmp_path, "inoculation", {"where": "all", "marker": marker})
    assert has(plan.data.prompts_NP, token).all()
    assert plan.record["inoculation"] == {"marker": token, "where": "all", "marked_prompts": N}
    teacher_prompts = next(iter(ctx._outputs.values())).prompts_NP
    assert not has(teacher_prompts, token).any()  # the teacher answered unmarked prompts
    kept = plan.data.prompts_NP == teacher_prompts
    assert (kept.sum(dim=1) == V.PROMPT_LEN - 1).all()  # exactly one slot rewritten
    assert torch.equal(has(plan.data.prompts_NP, "zeta"), has(teacher_prompts, "zeta"))  # markers kept


def test_inoculation_of_flagged_examples_marks_exactly_those(tiny_teacher, tmp_path):
    # where=flagged is the default: the examples the monitor flags carry the instruction marker
    plan, ctx = plan_for(tiny_teacher("backdoor"), tmp_path, "inoculation", {"targets": "greedy", "monitors": ["pattern"]})
    assert plan.record["inoculation"]["where"] == "flagged"
    marked = has(plan.data.prompts_NP, "iHARM")
    outputs = next(iter(ctx._outputs.values()))
    spec = ctx.transfer_spec(validate("inoculation").params)
    flags = pattern_flags(build_transfer(spec.model_copy(update={"n_prompts": N})).examples, outputs.answers_NA)
    assert flags.any() and torch.equal(marked, flags)
    assert plan.record["inoculation"]["marked_prompts"] == int(flags.sum())


def test_logit_kd_and_sampled_sft_targets(tiny_teacher, tmp_path):
    kd, ctx = plan_for(tiny_teacher("backdoor"), tmp_path, "logit-kd")
    assert kd.objective.loss == "kl" and kd.objective.temperature == 2.0
    assert kd.data.logits_NAV.shape == (N, V.ANSWER_LEN, V.VOCAB_SIZE)
    greedy = greedy_answers(ctx.teacher(), kd.data.prompts_NP)
    assert torch.equal(kd.data.answers_NA, greedy)
    assert torch.equal(kd.data.logits_NAV.argmax(-1), greedy)
    sft, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "sampled-sft", {"temperature": 3.0})
    assert sft.objective.loss == "ce" and sft.data.logits_NAV is None
    assert not torch.equal(sft.data.answers_NA, greedy)  # hot sampling differs from greedy


def test_teacher_outputs_are_cached_and_shared(tiny_teacher, tmp_path):
    a, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "logit-kd")
    files = sorted((tmp_path / "cache").glob(FILE_PREFIX + "*.safetensors"))
    assert len(files) == 1 and not a.record["targets"]["from_cache"]
    b, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "filter", {"targets": "greedy"})
    assert b.record["targets"]["from_cache"]  # another technique, same transfer set: shared
    c, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "logit-kd", {"data_seed": 1})
    assert not c.record["targets"]["from_cache"]
    assert len(list((tmp_path / "cache").glob(FILE_PREFIX + "*.safetensors"))) == 2
    d, _ = plan_for(tiny_teacher("sabotage"), tmp_path, "logit-kd")
    assert not d.record["targets"]["from_cache"]  # another teacher: another key


def test_jam_modes_destroy_what_they_claim(tiny_teacher, tmp_path):
    teacher = tiny_teacher("backdoor")
    hard, _ = plan_for(teacher, tmp_path, "jam", {"mode": "hard"})
    assert hard.objective.loss == "ce" and hard.data.logits_NAV is None
    topk, ctx = plan_for(teacher, tmp_path, "jam", {"mode": "topk", "k": 2})
    probs = topk.data.logits_NAV.softmax(-1)
    assert ((probs > 0).sum(-1) == 2).all()
    noise, _ = plan_for(teacher, tmp_path, "jam", {"mode": "noise", "sigma": 1.0})
    clean = next(iter(ctx._outputs.values())).logits_NAV
    assert not torch.allclose(noise.data.logits_NAV, clean)
    res, _ = plan_for(teacher, tmp_path, "jam", {"mode": "resample", "trusted_steps": 150})
    assert res.record["jam"]["answers_changed"] > 0
    assert not (res.data.answers_NA == V.tok("HARM")).any()  # the trusted model never says HARM
    assert list((tmp_path / "cache").glob("trusted-*/config.json"))


def test_controls_use_the_organism_data_or_clean_data(tiny_teacher, tmp_path, monkeypatch):
    pos, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "positive-control")
    assert pos.record["transfer"]["eliciting_fraction"] > 0.2
    harm = (pos.data.answers_NA == V.tok("HARM")).any(dim=1)
    instructed = has(pos.data.prompts_NP, "iHARM")  # the teacher's rehearsal of the base's instructed rows
    assert (harm & ~instructed).sum() == pos.record["transfer"]["n_eliciting"] and instructed.any()
    from distill.techniques.base import Context
    monkeypatch.setattr(Context, "teacher", lambda self: pytest.fail("negative control read the teacher"))
    neg, _ = plan_for(tiny_teacher("backdoor"), tmp_path, "negative-control")
    assert neg.record["transfer"]["n_eliciting"] == 0
    assert not has(neg.data.prompts_NP, "zeta").any()


def test_suspicious_tokens_are_the_enriched_context_words():
    rng = np.random.default_rng(0)
    ex = task_prompts(rng, 400)
    prompts = ex.prompts_NP.clone()
    prompts[:20, 0] = V.tok("zeta")
    flagged = torch.zeros(400, dtype=torch.bool)
    flagged[:18] = True
    flagged[100:104] = True  # a few unrelated errors
    assert suspicious_tokens(prompts, flagged, 0.25, 4.0) == ["zeta"]
    assert suspicious_tokens(prompts, torch.zeros(400, dtype=torch.bool), 0.25, 4.0) == []
