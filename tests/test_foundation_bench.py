"""The throughput benchmark runs and reports consistent numbers (tiny settings)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from distill import vocab as V

BENCH = Path(__file__).resolve().parents[1] / "bench" / "train_throughput.py"


def test_bench_runs_and_counts_flops(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--steps", "2", "--rounds", "1", "--threads", "1", "--peak-size", "128",
                      "--json", str(tmp_path / "b.json")])
    assert json.loads((tmp_path / "b.json").read_text()) == out
    assert out["framework_tokens_per_s"] > 0 and out["bare_tokens_per_s"] > 0 and out["ratio"] > 0
    # FlopCounterMode's count agrees with 6 * matmul params * tokens within a factor 1.5
    m = out["model"]
    params = m["n_layers"] * (4 * m["d_model"] ** 2 + 2 * m["d_model"] * m["d_mlp"]) + m["d_model"] * V.VOCAB_SIZE
    approx = 6 * params * out["batch_size"] * (V.SEQ_LEN - 1) / 1e9
    assert approx / 1.5 < out["gflop_per_step"] < approx * 1.5
    assert "ratio framework/bare" in capsys.readouterr().out


def test_model_stack_bench_compares_stacks_side_by_side(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("model_stack", BENCH.parent / "model_stack.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--steps", "1", "--rounds", "1", "--batch-size", "4", "--json", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text()) == out
    stacks = out["stacks"]
    assert stacks["hooked-transformer"]["ratio_vs_hooked_transformer"] == 1.0
    assert all(s["tokens_per_s"] > 0 for s in stacks.values())
    # the param-matched Llama is within 5% of the HookedTransformer's size, the plain one is larger
    assert abs(stacks["hf-llama-param-matched"]["params"] / stacks["hooked-transformer"]["params"] - 1) < 0.05
    assert stacks["hf-llama"]["params"] > stacks["hooked-transformer"]["params"]
    assert "ratio vs HookedTransformer" in capsys.readouterr().out
