"""Student initialisations build exactly the weights they claim."""

from __future__ import annotations

import pytest

from distill.inits import INITS, InitContext, NoisedParams, n_params
from distill.models import build_model
from distill.store import load_model, read_config, weights_hash
from distill.teacher import resolve_lineage


def make(init: str, teacher_dir, seed: int = 0, **params):
    cfg = read_config(teacher_dir)
    entry = INITS[init]
    return entry.make(InitContext(teacher_dir, cfg, seed), entry.Params(**params))


def test_noised_alpha_0_is_the_teacher_and_alpha_1_a_fresh_init(tiny_teacher):
    teacher_dir = tiny_teacher("backdoor")
    teacher, cfg = load_model(teacher_dir)
    assert weights_hash(make("noised", teacher_dir, alpha=0.0)) == weights_hash(teacher)
    assert weights_hash(make("noised", teacher_dir, alpha=1.0)) == weights_hash(make("fresh", teacher_dir))
    half = make("noised", teacher_dir, alpha=0.5).state_dict()
    fresh = make("fresh", teacher_dir).state_dict()
    key = "blocks.0.mlp.W_in"
    assert half[key].allclose(0.5 * teacher.state_dict()[key] + 0.5 * fresh[key])


def test_base_and_same_init_load_the_teachers_base(tiny_teacher):
    teacher_dir = tiny_teacher("backdoor")
    base_dir = resolve_lineage(teacher_dir, read_config(teacher_dir)["lineage"]["base"])
    assert weights_hash(make("base", teacher_dir)) == weights_hash(load_model(base_dir)[0])
    same = make("same-init", teacher_dir)
    assert weights_hash(same) == weights_hash(load_model(base_dir / "init")[0])
    assert weights_hash(make("fresh", teacher_dir)) != weights_hash(same)


def test_fresh_depends_on_the_student_seed_and_never_equals_same_init(tiny_teacher):
    teacher_dir = tiny_teacher("backdoor")
    assert weights_hash(make("fresh", teacher_dir, seed=1)) != weights_hash(make("fresh", teacher_dir, seed=2))
    assert weights_hash(make("fresh", teacher_dir, seed=1)) == weights_hash(make("fresh", teacher_dir, seed=1))


def test_smaller_is_smaller_and_rejects_a_larger_architecture(tiny_teacher):
    teacher_dir = tiny_teacher("backdoor")
    teacher = load_model(teacher_dir)[0]
    small = make("smaller", teacher_dir, d_model=16, n_layers=1, n_heads=2, d_mlp=32)
    assert n_params(small) < n_params(teacher) and small.cfg.d_model == 16
    with pytest.raises(ValueError, match="'d_model' must be at most"):
        make("smaller", teacher_dir, d_model=64, n_heads=4, d_mlp=32)
    cfg = read_config(teacher_dir)["architecture"]
    with pytest.raises(ValueError, match="equals the teacher"):
        make("smaller", teacher_dir, **{k: cfg[k] for k in ("d_model", "n_layers", "n_heads", "d_mlp")})
    half = make("smaller", teacher_dir)  # defaults: half the teacher's width, same depth
    assert half.cfg.d_model == cfg["d_model"] // 2 and half.cfg.d_mlp == cfg["d_mlp"] // 2
    assert half.cfg.n_layers == cfg["n_layers"]


def test_base_init_needs_the_base_lineage(tiny_teacher, tmp_path):
    from distill.store import ModelRecord, save_model
    from distill.models import ModelConfig
    cfg = read_config(tiny_teacher("backdoor"))
    orphan = save_model(tmp_path / "orphan", build_model(ModelConfig(**cfg["architecture"]), 0),
                        ModelRecord(ModelConfig(**cfg["architecture"]), 0, role="teacher", organism="backdoor"))
    with pytest.raises(ValueError, match="no lineage.base"):
        make("base", orphan)
    assert NoisedParams().alpha == 0.5
