"""Fault injection on specs, configs and flags (issue 15, items 3 and 4): every bad value is
refused up front with a line naming the field, and a model that diverged is never trained
on, saved, loaded or evaluated as clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.spec import SPECS_DIR, SpecError, load_spec, parse_spec
from app.validation.spec import load_validation
from distill.distiller import distill_student, validate
from distill.evals import EvalConfig, evaluate
from distill.guards import MAX_SEED, check_seed
from distill.inits import INITS
from distill.models import ModelConfig, build_model, hook_names
from distill.store import CONFIG_FILE, ModelRecord, StoreError, load_model, read_config, save_model
from distill.teacher import TeacherSpec, ce_on_answers, train_base, train_teacher
from distill.techniques import get_technique
from distill.techniques.params import parse_set
from distill.train import TrainConfig, TrainingDiverged, train
from distill.tasks import task_prompts
from distill.train import step_rng

MICRO = ModelConfig(n_layers=1, d_model=8, n_heads=1, d_mlp=8)
"""The smallest model: builds and trains a few steps in milliseconds."""


def spec(**over) -> dict:
    return {"name": "t", "organisms": ["backdoor"], "students": [{"technique": "logit-kd"}], **over}


def spec_error(data: dict) -> str:
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    return str(exc.value)


def micro_model():
    return build_model(MICRO, seed=0)


def poisoned(model):
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    return model


@pytest.fixture(scope="module")
def micro_teacher(tmp_path_factory):
    """A teacher of the micro architecture (2 base + 2 teacher steps: nothing learnt, fast)."""
    root = tmp_path_factory.mktemp("micro")
    ts = TeacherSpec(model=MICRO, base_train=TrainConfig(steps=2, batch_size=8),
                     teacher_train=TrainConfig(steps=2, batch_size=8))
    base = train_base(ts, 0, root / "base")
    return train_teacher(ts, "backdoor", base, 0, root / "teacher")


# ---- finite numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("data, field", [
    (spec(teacher={"base_train": {"lr": float("inf")}}), "teacher.base_train.lr"),
    (spec(teacher={"teacher_train": {"lr": float("nan")}}), "teacher.teacher_train.lr"),
    (spec(students=[{"technique": "logit-kd", "params": {"lr": float("inf")}}]), "students[0].params.lr"),
    (spec(audit={"probe": {"C": float("inf")}}), "audit.probe.C"),
])
def test_spec_rejects_non_finite_numbers_naming_the_field(data, field):
    err = spec_error(data)
    assert f"{field}: must be a finite number" in err


def test_typed_configs_reject_non_finite_numbers_outside_specs():
    from analysis.config import AnalysisConfig
    from probes.audit import AuditConfig
    from probes.sae import SAETrainConfig
    for make in (lambda: TrainConfig(lr=float("inf")), lambda: TeacherSpec(organism_frac=float("nan")),
                 lambda: SAETrainConfig(lr=float("inf")), lambda: AuditConfig(sae={"lr": float("nan")}),
                 lambda: INITS["noised"].Params(alpha=float("nan")),
                 lambda: AnalysisConfig(thresholds={"alpha": float("nan")})):
        with pytest.raises(ValueError, match="finite number"):
            make()


def test_technique_params_reject_inf_lr_from_a_spec_and_a_flag():
    with pytest.raises(ValueError, match=r"parameter 'lr': Input should be a finite number"):
        validate("logit-kd", {"lr": float("inf")})
    params = parse_set(get_technique("logit-kd").Params, ["lr=inf"], "technique 'logit-kd'")
    with pytest.raises(ValueError, match=r"technique 'logit-kd': parameter 'lr': .*finite"):
        validate("logit-kd", params)


def test_cli_distill_set_lr_inf_is_one_line_exit_2_before_reading_the_teacher(capsys, tmp_path):
    code = main(["distill", "--teacher", str(tmp_path), "--technique", "logit-kd", "--set", "lr=inf",
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "'lr'" in err and "finite" in err
    assert not (tmp_path / "s").exists()


# ---- booleans and strings are not numbers --------------------------------------------------

@pytest.mark.parametrize("data, field, kind", [
    (spec(teacher={"base_train": {"steps": True}}), "teacher.base_train.steps", "boolean"),
    (spec(eval={"n_clean": False}), "eval.n_clean", "boolean"),
    (spec(teacher={"teacher_train": {"steps": "150"}}), "teacher.teacher_train.steps", "string"),
    (spec(seed=True), "seed", "boolean"),
    (spec(audit={"n_prompts": True}), "audit.n_prompts", "boolean"),
])
def test_spec_rejects_booleans_and_strings_for_numbers(data, field, kind):
    assert f"{field}: expected a number, not a {kind}" in spec_error(data)


def test_student_params_reject_a_boolean_step_count():
    err = spec_error(spec(students=[{"technique": "logit-kd", "params": {"steps": True}}]))
    assert "parameter 'steps': expected a number, not a boolean" in err


def test_cli_flags_are_still_parsed_into_numbers_and_booleans():
    params = parse_set(get_technique("logit-kd").Params,
                       ["steps=150", "lr=1e-3", "unique=true", "lr=none", "batch_size=64"], "t")
    assert params == {"steps": 150, "lr": None, "unique": "true", "batch_size": 64}
    resolved = validate("logit-kd", params)
    assert (resolved.params.steps, resolved.params.unique, resolved.params.lr) == (150, True, None)
    with pytest.raises(ValueError, match="parameter 'steps': expected a number"):
        validate("logit-kd", parse_set(get_technique("logit-kd").Params, ["steps=abc"], "t"))


# ---- seeds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, bound", [(-1, "greater than or equal to 0"),
                                         (99999999999999999999, f"less than or equal to {MAX_SEED}"),
                                         (MAX_SEED + 1, f"less than or equal to {MAX_SEED}")])
def test_spec_seed_out_of_range_is_a_spec_error(seed, bound):
    assert f"seed: Input should be {bound}" in spec_error(spec(seed=seed))


def test_largest_seed_is_accepted_and_derived_seeds_stay_in_range():
    s = parse_spec(spec(seed=MAX_SEED, students=[
        {"technique": "negative-control", "init": "fresh", "params": {"data_seed": MAX_SEED}}]))
    twin = [x for x in s.all_students() if x.label.endswith("-null")]
    assert twin and twin[0].params["data_seed"] == 0  # MAX_SEED + 1 wrapped into range
    validate(twin[0].technique, twin[0].params, twin[0].init, twin[0].init_params)
    assert check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, True):
        with pytest.raises(ValueError, match=str(MAX_SEED)):
            check_seed(bad)


def test_distill_student_refuses_a_bad_seed_before_reading_anything(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        distill_student(tmp_path, "logit-kd", seed=-1, out=tmp_path / "s")
    with pytest.raises(ValueError, match="seed"):
        train_base(TeacherSpec(model=MICRO), 2**40, tmp_path / "base")
    assert not (tmp_path / "s").exists() and not (tmp_path / "base").exists()


# ---- sane upper bounds ---------------------------------------------------------------------

@pytest.mark.parametrize("data, field", [
    (spec(teacher={"base_train": {"batch_size": 10**12}}), "teacher.base_train.batch_size"),
    (spec(teacher={"teacher_train": {"steps": 10**9}}), "teacher.teacher_train.steps"),
    (spec(eval={"n_eliciting": 10**9}), "eval.n_eliciting"),
    (spec(audit={"sae": {"d_sae": 10**7}}), "audit.sae.d_sae"),
    (spec(audit={"n_pairs": 10**9}), "audit.n_pairs"),
    (spec(analysis={"n_kl_prompts": 10**9}), "analysis.n_kl_prompts"),
])
def test_absurd_sizes_are_spec_errors(data, field):
    assert f"{field}: Input should be less than or equal to" in spec_error(data)


@pytest.mark.parametrize("key", ["batch_size", "steps", "n_prompts"])
def test_absurd_student_sizes_are_spec_errors(key):
    err = spec_error(spec(students=[{"technique": "logit-kd", "params": {key: 10**12}}]))
    assert f"parameter '{key}': Input should be less than or equal to" in err


def test_every_builtin_spec_still_loads():
    paths = sorted(SPECS_DIR.glob("*.toml"))
    assert paths
    for path in paths:
        load_spec(path)
    for mode in ("default", "quick"):
        v = load_validation(mode)
        for seed in range(v.seeds):
            v.seed_spec(seed)


# ---- sites against the architecture --------------------------------------------------------

@pytest.mark.parametrize("site", ["blocks.9.hook_resid_post", "not.a.site"])
def test_unknown_audit_site_is_a_spec_error_listing_the_allowed_sites(site):
    err = spec_error(spec(teacher={"model": {"n_layers": 2}}, audit={"sites": [site]}))
    assert f"audit.sites: unknown site(s) {site!r}" in err
    assert "teacher.model.n_layers" in err and "hook_resid_post" in err and "0..1" in err


def test_sae_site_must_exist_in_a_smaller_students_shallower_model():
    students = [{"technique": "logit-kd", "init": "smaller", "init_params": {"n_layers": 1}}]
    err = spec_error(spec(students=students, audit={"sae_sites": ["blocks.1.hook_resid_post"]}))
    assert "audit.sae_sites" in err and "students[0]" in err and "1 layer(s)" in err
    parse_spec(spec(students=students, audit={"sae_sites": ["blocks.0.hook_resid_post"]}))


def test_smaller_students_architecture_is_checked_against_the_specs_teacher():
    err = spec_error(spec(students=[{"technique": "logit-kd", "init": "smaller",
                                     "init_params": {"d_model": 10}}]))
    assert "students[0]" in err and "divisible by n_heads" in err


def test_hook_names_match_a_real_model_of_that_depth():
    model = build_model(ModelConfig(n_layers=3, d_model=16, n_heads=2, d_mlp=32, act_fn="relu"), 0)
    assert hook_names(3) == tuple(model.hook_dict)


# ---- names are safe path components --------------------------------------------------------

@pytest.mark.parametrize("name, why", [(".", "path component"), ("..", "path component"),
                                       ("a/b", "path component"), ("../x", "path component"),
                                       (".hidden", "path component"), ("a\\b", "path component"),
                                       ("", "at least 1 character"), ("x" * 65, "at most 64 characters")])
def test_unsafe_experiment_and_student_names_are_spec_errors(name, why):
    assert f"\n  name: " in spec_error(spec(name=name)) and why in spec_error(spec(name=name))
    err = spec_error(spec(students=[{"technique": "logit-kd", "name": name}]))
    assert "students[0].name: " in err and why in err


def test_generated_control_names_stay_valid():
    s = parse_spec(spec(students=[{"technique": "logit-kd", "init": "fresh"},
                                  {"technique": "logit-kd", "name": "negative-control-fresh"}]))
    labels = [x.label for x in s.all_students()]
    assert "negative-control-fresh+" in labels and "negative-control-fresh+-null" in labels
    too_long = spec(students=[{"technique": "negative-control", "init": "fresh", "name": "n" * 62}])
    assert "null twin" in spec_error(too_long)


# ---- spec files that are not text ----------------------------------------------------------

def test_binary_spec_file_is_a_spec_error(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"name = \"x\"\n\xff\xfe\x00\x81")
    with pytest.raises(SpecError, match="not UTF-8 text") as exc:
        load_spec(path)
    assert str(path) in str(exc.value)


def test_spec_path_that_is_a_folder_or_unreadable_is_a_spec_error(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match="is a folder") as exc:
        load_spec(tmp_path)
    assert str(tmp_path) in str(exc.value)
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n')

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(SpecError, match="cannot be read") as exc:
        load_spec(path)
    assert str(path) in str(exc.value)


def test_builtin_name_wins_over_a_run_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()  # e.g. `doublebind run tiny --out tiny`
    assert load_spec("tiny").name == "tiny"


# ---- one line per init parameter problem ---------------------------------------------------

def test_init_set_d_model_7_is_one_line_naming_the_parameter_and_range():
    params = parse_set(INITS["smaller"].Params, ["d_model=7"], "init 'smaller'")
    with pytest.raises(ValueError) as exc:
        validate("logit-kd", {}, "smaller", params)
    lines = str(exc.value).splitlines()
    assert lines == ["init 'smaller': parameter 'd_model': Input should be greater than or equal to 8 (got 7)"]
    with pytest.raises(ValueError) as exc:
        validate("logit-kd", {}, "smaller", {"d_model": 7, "n_layers": 99})
    assert len(str(exc.value).splitlines()) == 2 and "'n_layers'" in str(exc.value)


def test_smaller_arch_errors_are_one_line_each():
    from distill.inits import smaller_arch
    with pytest.raises(ValueError) as exc:
        smaller_arch(ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=256), INITS["smaller"].Params(d_model=10))
    assert str(exc.value).splitlines() == ["init smaller: d_model (10) must be divisible by n_heads (4)"]


# ---- a config with an unknown organism -----------------------------------------------------

def test_unknown_organism_in_config_is_a_store_error(tmp_path):
    folder = save_model(tmp_path / "m", micro_model(), ModelRecord(MICRO, 0, role="base"))
    assert read_config(folder)["organism"] is None  # a base has none
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    cfg["organism"] = "nope"
    (folder / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(StoreError, match="unknown organism 'nope'") as exc:
        read_config(folder)
    assert str(folder / CONFIG_FILE) in str(exc.value) and "backdoor" in str(exc.value)


# ---- the NaN guard -------------------------------------------------------------------------

def test_training_stops_at_the_first_non_finite_loss():
    model = micro_model()
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e30, warmup_frac=0.0)
    with pytest.raises(TrainingDiverged) as exc:
        train(model, lambda s: task_prompts(step_rng(0, s), 8), ce_on_answers, cfg, desc="base")
    msg = str(exc.value)
    assert "diverged at step" in msg and "lr=1e+30" in msg and "learning rate" in msg
    assert isinstance(exc.value, ValueError)


def test_distill_with_a_huge_lr_raises_and_saves_nothing(micro_teacher, tmp_path):
    out = tmp_path / "student"
    params = {"steps": 20, "batch_size": 8, "n_prompts": 8, "lr": 1e30}
    with pytest.raises(TrainingDiverged):
        distill_student(micro_teacher, "logit-kd", params, out=out, cache_dir=tmp_path / "cache",
                        eval_cfg=EvalConfig(n_clean=10, n_eliciting=10, n_queries=10))
    assert not (out / CONFIG_FILE).exists() and not (out / "model.safetensors").exists()


def test_a_model_with_nan_weights_is_never_saved(tmp_path):
    with pytest.raises(StoreError, match="non-finite weights"):
        save_model(tmp_path / "m", poisoned(micro_model()), ModelRecord(MICRO, 0, role="student"))
    assert not (tmp_path / "m" / CONFIG_FILE).exists()
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_a_stored_nan_model_from_an_older_version_is_refused_on_load(tmp_path, monkeypatch):
    import distill.store as store
    monkeypatch.setattr(store, "nonfinite_parameters", lambda model: [])  # an unguarded writer
    folder = save_model(tmp_path / "m", poisoned(micro_model()), ModelRecord(MICRO, 0, role="student"))
    monkeypatch.undo()
    with pytest.raises(StoreError, match="non-finite weights") as exc:
        load_model(folder)
    assert str(folder) in str(exc.value)


def test_a_model_with_nan_weights_is_never_evaluated():
    with pytest.raises(ValueError, match="non-finite weights"):
        evaluate(poisoned(micro_model()), ["backdoor"], EvalConfig(n_clean=10, n_eliciting=10, n_queries=10))
