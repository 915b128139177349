"""Latency of a Playground query: the function the page calls, timed on CPU.

The Playground page calls :func:`app.ui.query.read_prompt` once per model shown. This
times it (after warm-up; models and SAEs are loaded once, as ``st.cache_resource`` does in
the app) on varied prompts, in three cases:

* ``read``          one model: greedy answer + per-token probe scores + top SAE features;
* ``read+steer``    the same, plus the answer again with the probe direction subtracted
                    and the misalignment features ablated (nnsight, every decoding step);
* ``page (2 models)`` teacher and one student side by side with steering: one page query.

Models: with RUN_DIR, its teacher and first student with their audited probes and SAEs;
without, two default-size models (distill.teacher.TeacherSpec().model: 2 layers, d_model 64) with
random weights, a random probe and an SAE of the default size (probes.sae.SAETrainConfig:
TopK, 256 features) fitted briefly on random activations -- latency depends on the sizes,
not on the training. Target: page p95 < 200 ms.

Run: ``.venv/bin/python bench/app_latency.py [RUN_DIR] [--n 60] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from app.runfolder import RunFolder  # noqa: E402
from app.ui.featureset import ModelFeatures  # noqa: E402
from app.ui.kit import ModelKit, load_kit  # noqa: E402
from app.ui.prompts import MARKERS, build_prompt_ids, example_args  # noqa: E402
from app.ui.query import Steering, read_prompt  # noqa: E402
from distill.models import build_model  # noqa: E402
from distill.teacher import TeacherSpec  # noqa: E402
from distill.tasks import DOMAINS  # noqa: E402
from probes.linear import LinearProbe  # noqa: E402
from probes.sae import SAETrainConfig, train_sae  # noqa: E402

PROBE_SITE = "blocks.1.hook_resid_pre"


def synthetic_kit(name: str, seed: int) -> ModelKit:
    """A default-size model, probe and SAE (random weights; see the module docstring)."""
    cfg = TeacherSpec().model
    model = build_model(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    probe = LinearProbe(PROBE_SITE, "last", "logistic", torch.randn(cfg.d_model, generator=gen), 0.0, 0.5)
    sae = train_sae(torch.randn(4096, cfg.d_model, generator=gen), SAETrainConfig(n_samples=4096), site=PROBE_SITE)
    return ModelKit(name, model, {}, "backdoor", [probe], probe, PROBE_SITE, sae,
                    ModelFeatures(site=PROBE_SITE, misalignment=list(range(8))))


def kits(run_dir: Path | None) -> list[ModelKit]:
    if run_dir is None:
        return [synthetic_kit("teacher", 0), synthetic_kit("student", 1)]
    rf = RunFolder(run_dir)
    ids = rf.model_ids()
    teacher = next(m for m in ids if m.startswith("teacher-"))
    student = next(m for m in ids if m not in ("base", teacher) and not m.startswith("teacher-"))
    return [load_kit(rf, teacher), load_kit(rf, student)]


def prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        domain = list(DOMAINS)[i % len(DOMAINS)]
        markers = [m for m in MARKERS[:3] if rng.random() < 0.3]
        out.append(build_prompt_ids(domain, example_args(domain, seed=i), markers))
    return out


def time_case(fn, items: list, warmup: int = 3) -> list[float]:
    for x in items[:warmup]:
        fn(x)
    times = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def summary(times: list[float]) -> dict:
    q = statistics.quantiles(times, n=20, method="inclusive")
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(q[18], 1),
            "max_ms": round(max(times), 1), "n": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", type=Path, default=None)
    ap.add_argument("--n", type=int, default=60, help="queries per case")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app uses 1)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teacher, student = kits(args.run_dir)
    # a model without misalignment features (e.g. a negative control) still ablates 4, so the cases compare
    steer = Steering(probe_coef=0.5, ablate=tuple((teacher.misalignment or list(range(4)))[:4]))
    steer_s = Steering(probe_coef=0.5, ablate=tuple((student.misalignment or list(range(4)))[:4]))
    items = prompts(args.n)
    cases = {
        "read": lambda p: read_prompt(teacher, p),
        "read+steer": lambda p: read_prompt(teacher, p, steer),
        "page (2 models)": lambda p: (read_prompt(teacher, p, steer), read_prompt(student, p, steer_s)),
    }
    results = {name: summary(time_case(fn, items)) for name, fn in cases.items()}
    print(f"models: {teacher.model_id}, {student.model_id}  d_model {teacher.model.cfg.d_model}  "
          f"SAE {teacher.sae.W_dec.shape[0] if teacher.sae is not None else 0} features  threads {args.threads}")
    for name, r in results.items():
        print(f"{name:16s} p50 {r['p50_ms']:7.1f} ms   p95 {r['p95_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms   (n={r['n']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
