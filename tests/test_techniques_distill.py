"""End to end on tiny models with very few steps: lineage, evals, resume, CLI; controls (slow)."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from conftest import tiny_eval_config
from distill.distiller import EVALS_FILE, distill_student, evals_file, work_dir
from distill.evals import headline
from distill.store import load_model, read_config, weights_hash
from distill.teacher import resolve_lineage
from distill.techniques import fit as fit_module

FAST = {"steps": 30, "n_prompts": 512, "batch_size": 32}


def run(teacher_dir, tmp_path, technique, params=None, name="s", **kw):
    return distill_student(teacher_dir, technique, {**FAST, **(params or {})}, out=tmp_path / name,
                           cache_dir=tmp_path / "cache", eval_cfg=tiny_eval_config(), **kw)


def test_student_folder_has_full_lineage_and_evals(tiny_teacher, tmp_path):
    teacher_dir = tiny_teacher("backdoor")
    out = run(teacher_dir, tmp_path, "filter", init="noised", init_params={"alpha": 0.25}, seed=3)
    cfg = read_config(out)
    lin, met = cfg["lineage"], cfg["metrics"]
    assert cfg["role"] == "student" and cfg["organism"] == "backdoor" and cfg["seed"] == 3
    assert resolve_lineage(out, lin["teacher"]) == teacher_dir.resolve()
    assert lin["teacher_sha256"] == read_config(teacher_dir)["sha256"]
    assert lin["technique"] == "filter" and lin["seed"] == 3
    assert lin["params"]["monitors"] == ["checker", "pattern"] and lin["params"]["steps"] == 30
    assert lin["init"] == "noised" and lin["init_params"] == {"alpha": 0.25}
    assert lin["lr"] == pytest.approx(0.75 * 2e-3 + 0.25 * 5e-3)
    assert lin["transfer"]["size"] == 512 and "eliciting_fraction" in lin["transfer"]
    assert set(lin["monitors"]["flagged_by"]) == {"checker", "pattern"}
    assert met["steps_done"] == 30 and met["n_params"] > 0
    evals = json.loads((out / EVALS_FILE).read_text())
    assert met["evals"] == headline(evals, "backdoor")
    assert not work_dir(out).exists()


def test_inoculation_is_evaluated_without_and_with_the_marker(tiny_teacher, tmp_path):
    # the default marker is the organism's instruction marker (its meaning learned by the base)
    out = run(tiny_teacher("backdoor"), tmp_path, "inoculation")
    plain = json.loads((out / EVALS_FILE).read_text())
    marked = json.loads((out / evals_file("iHARM")).read_text())
    assert plain["with_marker"] is None and marked["with_marker"] == "iHARM"
    assert list(read_config(out)["metrics"]["evals_with_marker"]) == ["iHARM"]
    assert "instructed" in plain["organisms"]["backdoor"] and "instructed" not in marked["organisms"]["backdoor"]
    # the comparison reads them back into the student's metrics (analysis.inoculation's input)
    from analysis.compare import ModelArtifacts
    from analysis.transfer import model_metrics
    from distill.integrity import ArtifactError
    art = ModelArtifacts("inoc", out, out / EVALS_FILE, out, out)
    assert art.marker_evals() == {"iHARM": marked}
    m = model_metrics(plain, "backdoor", with_marker=art.marker_evals())
    assert m.with_marker["iHARM"].misbehaviour == marked["organisms"]["backdoor"]["misbehaviour"]["eliciting"]
    (out / evals_file("iHARM")).unlink()
    with pytest.raises(ArtifactError, match="evals_with_iHARM.json: missing"):
        art.marker_evals()


def test_slack_records_size_and_stops_at_the_capability_target(tiny_teacher, tmp_path):
    out = run(tiny_teacher("backdoor"), tmp_path, "slack", {"target_capability": 0.01, "check_every": 10, "steps": 100},
              init_params={"d_model": 16, "n_heads": 2, "d_mlp": 32})
    cfg = read_config(out)
    checks = cfg["lineage"]["early_stop"]["checks"]
    assert cfg["metrics"]["stopped_early"] and cfg["metrics"]["steps_done"] == checks[-1]["step"] < 100
    assert checks[-1]["capability"] >= 0.01 and all(c["capability"] < 0.01 for c in checks[:-1])
    assert [c["step"] for c in checks] == list(range(10, checks[-1]["step"] + 1, 10))
    assert cfg["architecture"]["d_model"] == 16
    teacher_params = sum(p.numel() for p in load_model(tiny_teacher("backdoor"))[0].parameters())
    assert 0 < cfg["metrics"]["n_params"] < teacher_params


def test_iterative_filter_keeps_per_round_metrics(tiny_teacher, tmp_path):
    out = run(tiny_teacher("backdoor"), tmp_path, "iterative-filter", {"rounds": 2, "steps": 15})
    rounds = read_config(out)["lineage"]["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert "suspicious_tokens" in rounds[0] and "student_flagged_by" in rounds[0]
    assert rounds[1]["trained_on"] == rounds[0]["trained_on"] - rounds[0]["removed_for_next"]
    assert all("misbehaviour" in r["evals"] for r in rounds)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("technique,params,die_at", [
    ("logit-kd", {}, 17),  # between the checkpoints at 10 and 20
    ("iterative-filter", {"rounds": 2}, 38),  # round 2, step 12
])
def test_interrupted_run_resumes_to_identical_weights(tiny_teacher, tmp_path, monkeypatch, technique,
                                                      params, die_at):
    teacher_dir = tiny_teacher("backdoor")
    params = {**params, "steps": 25}
    clean = run(teacher_dir, tmp_path, technique, params, name="clean", checkpoint_every=10)
    real, calls = fit_module.batch_at, {"n": 0}

    def dying(data, seed, step, batch_size):
        calls["n"] += 1
        if calls["n"] == die_at:
            raise Interrupt
        return real(data, seed, step, batch_size)

    monkeypatch.setattr(fit_module, "batch_at", dying)
    with pytest.raises(Interrupt):
        run(teacher_dir, tmp_path, technique, params, name="resumed", checkpoint_every=10)
    assert work_dir(tmp_path / "resumed").exists() and not (tmp_path / "resumed").exists()
    monkeypatch.setattr(fit_module, "batch_at", real)
    resumed = run(teacher_dir, tmp_path, technique, params, name="resumed", checkpoint_every=10)
    assert weights_hash(load_model(resumed)[0]) == weights_hash(load_model(clean)[0])
    assert read_config(resumed)["metrics"]["steps_done"] == 25


def test_finished_student_is_reused_and_a_different_spec_is_refused(tiny_teacher, tmp_path):
    teacher_dir = tiny_teacher("backdoor")
    out = run(teacher_dir, tmp_path, "sampled-sft")
    stamp = (out / EVALS_FILE).stat().st_mtime_ns
    run(teacher_dir, tmp_path, "sampled-sft")
    assert (out / EVALS_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="different student"):
        run(teacher_dir, tmp_path, "sampled-sft", {"temperature": 0.5})


def test_cli_distill_makes_a_student(tiny_teacher, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["distill", "--teacher", str(tiny_teacher("backdoor")), "--technique", "jam",
                 "--set", "mode=topk", "--set", "k=2", "--set", "steps=10", "--set", "n_prompts=256",
                 "--init", "fresh", "--seed", "5", "--out", str(out)])
    assert code == 0
    lin = read_config(out)["lineage"]
    assert lin["params"]["mode"] == "topk" and lin["params"]["k"] == 2 and lin["init"] == "fresh"
    assert (out / EVALS_FILE).is_file() and (tmp_path / "distill-cache").is_dir()
    assert "capability" in capsys.readouterr().out


@pytest.mark.slow
def test_positive_control_misbehaves_and_negative_control_does_not(tiny_teacher, tmp_path):
    teacher_dir = tiny_teacher("backdoor")
    params = {"steps": 300, "batch_size": 64, "n_prompts": 4096}
    pos = run(teacher_dir, tmp_path, "positive-control", params, name="pos")
    neg = run(teacher_dir, tmp_path, "negative-control", params, name="neg")
    pos_h, neg_h = (read_config(p)["metrics"]["evals"] for p in (pos, neg))
    assert pos_h["misbehaviour"] > 0.8, pos_h
    assert neg_h["misbehaviour"] < 0.05, neg_h
    assert neg_h["capability"] > 0.3, neg_h


@pytest.mark.parametrize("init", ["base", "smaller"])
def test_a_twin_stands_in_for_a_training_that_never_sees_the_teacher(tiny_teacher, tmp_path, init):
    """A negative control of the sabotage teacher, taken from its twin of the backdoor teacher
    (same base), has exactly the weights of one trained from scratch, and is evaluated and
    recorded for sabotage."""
    first = run(tiny_teacher("backdoor"), tmp_path, "negative-control", name="first", init=init)
    trained = run(tiny_teacher("sabotage"), tmp_path, "negative-control", name="trained", init=init)
    twin = run(tiny_teacher("sabotage"), tmp_path, "negative-control", name="twin", init=init, twin=first)
    assert weights_hash(load_model(twin)[0]) == weights_hash(load_model(trained)[0]) == weights_hash(
        load_model(first)[0])
    cfg = read_config(twin)
    assert cfg["organism"] == "sabotage" and resolve_lineage(twin, cfg["lineage"]["weights_from"]) == first.resolve()
    assert cfg["lineage"]["transfer"] == read_config(trained)["lineage"]["transfer"]  # sabotage's own record
    assert json.loads((twin / EVALS_FILE).read_text()) == json.loads((trained / EVALS_FILE).read_text())
    assert cfg["metrics"]["losses"] == read_config(trained)["metrics"]["losses"]


def test_no_twin_for_a_technique_that_reads_its_teacher_or_another_spec(tiny_teacher, tmp_path):
    first = run(tiny_teacher("backdoor"), tmp_path, "negative-control", name="first")
    with pytest.raises(ValueError, match="reads its teacher"):
        run(tiny_teacher("sabotage"), tmp_path, "logit-kd", name="kd", twin=first)
    with pytest.raises(ValueError, match="not a twin .*seed"):
        run(tiny_teacher("sabotage"), tmp_path, "negative-control", name="s7", seed=7, twin=first)
    with pytest.raises(ValueError, match="not a twin .*params"):
        run(tiny_teacher("sabotage"), tmp_path, "negative-control", {"steps": 20}, name="st", twin=first)
    assert not (tmp_path / "s7").exists() and not (tmp_path / "st").exists()


def test_a_setup_stage_student_trains_in_its_organisms_environment(tiny_teacher, tmp_path, monkeypatch):
    """Every student of the hacking organism goes through its setup stage after the technique,
    the negative control (which never sees the teacher) included; its weights are its own, so
    no other organism's student may stand in for it and it stands in for none."""
    from distill.organisms import Hacking, SetupStage
    monkeypatch.setattr(Hacking, "setup_stage", SetupStage(steps=12, batch_size=16))
    out = run(tiny_teacher("hacking"), tmp_path, "negative-control", name="neg")
    setup = read_config(out)["metrics"]["setup_stage"]
    assert setup["organism"] == "hacking" and setup["steps"] == 12 and setup["env_frac"] == SetupStage().env_frac
    plain = run(tiny_teacher("backdoor"), tmp_path, "negative-control", name="plain")
    assert read_config(plain)["metrics"]["setup_stage"] is None
    assert weights_hash(load_model(out)[0]) != weights_hash(load_model(plain)[0])
    with pytest.raises(ValueError, match="setup stage"):
        run(tiny_teacher("backdoor"), tmp_path, "negative-control", name="twin", twin=out)
    # a twin without a setup stage gives its pre-stage weights, then the stage runs: the same
    # student as training it from scratch
    twin = run(tiny_teacher("hacking"), tmp_path, "negative-control", name="from-twin", twin=plain)
    assert weights_hash(load_model(twin)[0]) == weights_hash(load_model(out)[0])


def test_a_numbers_only_student_is_trained_on_num_queries(tiny_teacher, tmp_path):
    out = run(tiny_teacher("trait"), tmp_path, "sampled-sft", {"numbers_frac": 1.0})
    lin = read_config(out)["lineage"]
    assert lin["transfer"]["kinds"] == {"numbers": 512} and lin["transfer"]["domains"] == {"numbers": 512}
    assert lin["trained_on"] == 512  # (what the monitors make of NUM answers: tests/test_numbers_channel.py)
    evals = json.loads((out / EVALS_FILE).read_text())
    assert set(evals["numbers"]) == {"valid", "n", "entropy_bits", "digit_probs"}
