"""Model folders: round trip, hash check, and one clear error per kind of damage."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch

from conftest import tiny_model_config
from distill import vocab as V
from distill.models import build_model
from distill.store import (CONFIG_FILE, WEIGHTS_FILE, ModelRecord, StoreError, load_model,
                           read_config, save_model, sha256_file, weights_hash)


@pytest.fixture
def saved(tmp_path):
    model = build_model(tiny_model_config(), seed=3)
    record = ModelRecord(tiny_model_config(), seed=3, role="teacher", organism="backdoor",
                         lineage={"base": "../base"}, metrics={"steps": 1})
    return save_model(tmp_path / "m", model, record), model


def test_round_trip(saved):
    folder, model = saved
    loaded, cfg = load_model(folder)
    assert weights_hash(loaded) == weights_hash(model)
    prompts = torch.tensor([V.parse("SORT 3 1 2 5 4 0")])
    assert torch.equal(loaded(prompts), model(prompts))
    assert cfg["architecture"] == tiny_model_config().model_dump()
    assert cfg["vocab"] == V.TOKENS and cfg["seed"] == 3 and cfg["role"] == "teacher"
    assert cfg["organism"] == "backdoor" and cfg["lineage"] == {"base": "../base"}
    assert cfg["sha256"] == sha256_file(folder / WEIGHTS_FILE)
    assert read_config(folder) == cfg
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]  # no temp files


def test_overwrite_keeps_folder_consistent(saved):
    folder, _ = saved
    other = build_model(tiny_model_config(), seed=4)
    save_model(folder, other, ModelRecord(tiny_model_config(), seed=4, role="base"))
    loaded, cfg = load_model(folder)
    assert weights_hash(loaded) == weights_hash(other) and cfg["seed"] == 4


def test_loading_never_unpickles(saved, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("unpickling during load")
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_model(saved[0])


def _expect(folder, filename: str, problem: str):
    with pytest.raises(StoreError) as err:
        load_model(folder)
    msg = str(err.value)
    assert filename in msg and problem in msg, msg
    assert "\n" not in msg


def test_missing_folder(tmp_path):
    _expect(tmp_path / "nope", "nope", "no such model folder")


def test_missing_config(saved):
    (saved[0] / CONFIG_FILE).unlink()
    _expect(saved[0], CONFIG_FILE, "missing")


def test_missing_weights(saved):
    (saved[0] / WEIGHTS_FILE).unlink()
    _expect(saved[0], WEIGHTS_FILE, "missing")


def test_truncated_weights(saved):
    path = saved[0] / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:-100])
    _expect(saved[0], WEIGHTS_FILE, "does not match")


def test_tampered_byte(saved):
    path = saved[0] / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    _expect(saved[0], WEIGHTS_FILE, "does not match")


def test_bad_json(saved):
    (saved[0] / CONFIG_FILE).write_text('{"format": ')
    _expect(saved[0], CONFIG_FILE, "not valid JSON")


@pytest.mark.parametrize("edit, problem", [
    (lambda c: c.update(format="other/9"), "format"),
    (lambda c: c.update(vocab=c["vocab"][:-1]), "vocabulary"),
    (lambda c: c.update(prompt_len=12), "prompt/answer lengths"),
    (lambda c: c["architecture"].update(d_model=-1), "architecture"),
    (lambda c: c.pop("seed"), "seed"),
    (lambda c: c.pop("sha256"), "sha256"),
])
def test_bad_config_fields(saved, edit, problem):
    path = saved[0] / CONFIG_FILE
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))
    _expect(saved[0], CONFIG_FILE, problem)


def test_weights_from_another_architecture(saved, tmp_path):
    """Hash intact but shapes wrong: the config was copied from a different model."""
    folder, _ = saved
    big = save_model(tmp_path / "big", build_model(tiny_model_config().model_copy(update={"d_mlp": 256}), 0),
                     ModelRecord(tiny_model_config(), seed=0, role="base"))
    shutil.copy(big / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    cfg["sha256"] = sha256_file(folder / WEIGHTS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg))
    _expect(folder, WEIGHTS_FILE, "do not fit the architecture")
