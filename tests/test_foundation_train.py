"""Determinism: same seed -> same weights; a resumed run ends bit-identical to an
uninterrupted one; the schedule and the early stop behave as documented."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import tiny_model_config
from distill.checkpoint import META_FILE, Checkpointer
from distill.integrity import ArtifactError
from distill import vocab as V
from distill.models import build_model
from distill.organisms import get_organism
from distill.store import weights_hash
from distill.teacher import base_batch, ce_on_answers
from distill.train import TrainConfig, lr_at, step_rng, train

CFG = TrainConfig(steps=12, batch_size=16, lr=5e-3, check_every=4)


def _batch(step: int):
    """The teacher's real batch function (organism data), small."""
    return get_organism("sabotage").teacher_data(step_rng(0, step, 1), CFG.batch_size)


def _trained(seed: int = 0, **kw):
    model = build_model(tiny_model_config(), seed)
    res = train(model, _batch, ce_on_answers, CFG, **kw)
    return model, res


def test_build_model_same_seed_same_weights():
    a, b = build_model(tiny_model_config(), 7), build_model(tiny_model_config(), 7)
    assert weights_hash(a) == weights_hash(b)
    assert weights_hash(build_model(tiny_model_config(), 8)) != weights_hash(a)


def test_build_model_leaves_global_rngs_alone():
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.rand())
    random.seed(1)
    np.random.seed(1)
    build_model(tiny_model_config(), 123)
    assert (random.random(), np.random.rand()) == expected


def test_short_train_same_seed_same_weights():
    a, res_a = _trained()
    b, res_b = _trained()
    assert weights_hash(a) == weights_hash(b)
    assert res_a.losses == res_b.losses and res_a.steps_done == CFG.steps
    assert weights_hash(a) != weights_hash(build_model(tiny_model_config(), 0))  # it trained


class _Interrupt(Exception):
    pass


def test_resume_is_bit_exact(tmp_path):
    reference, ref_res = _trained()
    ckpt = Checkpointer(tmp_path / "ckpt", every=4)
    interrupted = build_model(tiny_model_config(), 0)

    def dies_at_10(step):
        if step == 10:
            raise _Interrupt
        return _batch(step)
    with pytest.raises(_Interrupt):
        train(interrupted, dies_at_10, ce_on_answers, CFG, checkpointer=ckpt)
    assert (tmp_path / "ckpt" / META_FILE).exists()  # saved at step 8

    resumed = build_model(tiny_model_config(), 0)  # a fresh process would rebuild from scratch
    seen = []
    res = train(resumed, lambda s: seen.append(s) or _batch(s), ce_on_answers, CFG, checkpointer=ckpt)
    assert seen == [8, 9, 10, 11]  # only the missing steps are replayed
    assert weights_hash(resumed) == weights_hash(reference)
    assert res.losses == ref_res.losses and res.steps_done == CFG.steps
    assert not (tmp_path / "ckpt").exists()  # cleared once finished


def test_corrupt_checkpoint_is_reported(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", every=4)
    ckpt.folder.mkdir()
    (ckpt.folder / META_FILE).write_text("{}")
    with pytest.raises(ArtifactError, match="unreadable"):
        train(build_model(tiny_model_config(), 0), _batch, ce_on_answers, CFG, checkpointer=ckpt)


def test_early_stop():
    calls = []
    model = build_model(tiny_model_config(), 0)
    res = train(model, _batch, ce_on_answers, CFG,
                stop_fn=lambda m, step: calls.append((step, m.training)) or step >= 8)
    assert calls == [(4, False), (8, False)]  # consulted in eval mode, every check_every steps
    assert res.stopped_early and res.steps_done == 8 and not model.training


def test_lr_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_frac=0.1)
    assert lr_at(cfg, 0) == pytest.approx(0.1) and lr_at(cfg, 9) == pytest.approx(1.0)
    assert lr_at(cfg, 10) == pytest.approx(1.0)
    assert lr_at(cfg, 99) == pytest.approx(0.1, abs=0.01)
    assert all(lr_at(cfg, s) >= lr_at(cfg, s + 1) for s in range(10, 99))


def test_batches_are_a_pure_function_of_seed_and_step():
    a, b = base_batch(0, 5, 32), base_batch(0, 5, 32)
    assert (a.prompts_NP == b.prompts_NP).all() and (a.target_NA == b.target_NA).all()
    assert len(a) == 32
    assert not (base_batch(0, 6, 32).prompts_NP == a.prompts_NP).all()
    big = base_batch(0, 0, 512)  # the base learns what every instruction marker asks for
    assert all(m in big.kind for m in ("clean", "instructed", "favourite"))
    assert all((big.prompts_NP == V.tok(m)).any() for m in V.INSTRUCTION_MARKERS)
    assert not (step_rng(0, 5, 1).integers(0, 1 << 30) == step_rng(0, 5, 0).integers(0, 1 << 30))
