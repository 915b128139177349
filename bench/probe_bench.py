"""Benchmarks of the white-box instruments (run: .venv/bin/python bench/probe_bench.py [--model DIR]).

1. Caching: tokens/s of ``probes.activations.cache_activations`` (every residual site) vs a
   plain forward pass to logits, interleaved in the same run; target ratio >= 0.9.
2. SAE training: samples/s of ``probes.sae.train_sae`` (sae-lens SAETrainer, TopK) vs a
   minimal hand-written TopK SAE loop (Adam, MSE, same sizes and batches) on the same
   activations. The ratio shows sae-lens' per-step overhead (dead-feature bookkeeping,
   auxiliary loss, decoder-norm rescaling, scheduler), not a difference in the maths.
3. One full audit of the model (probes on all layers, the SAEs of every seed, the feature
   ranking and dashboards), timed. Misalignment features and their causal test need a
   reference model (probes.diffing) and are not part of the audit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.models import build_model, resid_sites  # noqa: E402
from distill.store import load_model  # noqa: E402
from distill.teacher import TeacherSpec  # noqa: E402
from probes.activations import cache_activations  # noqa: E402
from probes.audit import AuditConfig, audit_model, default_sae_site  # noqa: E402
from probes.datasets import probe_dataset  # noqa: E402
from probes.sae import SAETrainConfig, train_sae  # noqa: E402
from probes.threads import torch_threads  # noqa: E402


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def bench_cache(model, tokens_NS: torch.Tensor, repeats: int = 5, batch: int = 1024) -> dict:
    sites = resid_sites(model.cfg.n_layers)

    def plain():
        for s in range(0, tokens_NS.shape[0], batch):
            model(tokens_NS[s:s + batch], return_type="logits")

    def cached():
        cache_activations(model, tokens_NS, sites, batch)

    plain(), cached()  # warm-up
    t_plain, t_cache = [], []
    for _ in range(repeats):  # interleaved so load changes hit both alike
        t_plain.append(_timed(plain, 1))
        t_cache.append(_timed(cached, 1))
    n_tok = tokens_NS.numel()
    tp, tc = n_tok / statistics.median(t_plain), n_tok / statistics.median(t_cache)
    return {"tokens": n_tok, "sites": sites, "plain_tokens_per_s": tp, "cache_tokens_per_s": tc, "ratio": tc / tp}


def minimal_topk_sae(acts_MD: torch.Tensor, d_sae: int, k: int, steps: int, batch: int, lr: float, seed: int = 0):
    """The smallest faithful TopK SAE: z = TopK(relu((x - b_dec) W_enc + b_enc)), xhat = z W_dec + b_dec."""
    gen = torch.Generator().manual_seed(seed)
    d = acts_MD.shape[1]
    W_dec = torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(d_sae, d, generator=gen), dim=1) * 0.1)
    W_enc = torch.nn.Parameter(W_dec.detach().T.clone())
    b_enc, b_dec = torch.nn.Parameter(torch.zeros(d_sae)), torch.nn.Parameter(torch.zeros(d))
    opt = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec], lr=lr)
    perm = torch.randperm(acts_MD.shape[0], generator=gen)
    for step in range(steps):
        idx = perm[(step * batch) % (len(perm) - batch):][:batch]
        x = acts_MD[idx]
        pre = (x - b_dec) @ W_enc + b_enc
        top = pre.topk(k, dim=-1)
        z = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
        loss = (z @ W_dec + b_dec - x).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def bench_sae(acts_MD: torch.Tensor, cfg: SAETrainConfig, repeats: int = 3) -> dict:
    steps = cfg.n_samples // cfg.batch_size
    n = steps * cfg.batch_size
    t_lib = _timed(lambda: train_sae(acts_MD, cfg), repeats)
    with torch_threads(cfg.threads):  # the same thread count train_sae uses
        t_min = _timed(lambda: minimal_topk_sae(acts_MD, cfg.d_sae, cfg.k, steps, cfg.batch_size, cfg.lr), repeats)
    return {"samples": n, "d_sae": cfg.d_sae, "k": cfg.k, "batch": cfg.batch_size,
            "sae_lens_samples_per_s": n / t_lib, "minimal_samples_per_s": n / t_min,
            "threads": cfg.threads, "ratio": (n / t_lib) / (n / t_min)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model folder (default: a random default-size model)")
    p.add_argument("--organism", default=None, help="organism for the audit (default: the model's own, or backdoor)")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.model:
        model, cfg = load_model(args.model)
        organism = args.organism or cfg.get("organism") or "backdoor"
    else:
        model, organism = build_model(TeacherSpec().model, seed=0), args.organism or "backdoor"
    tokens = probe_dataset(organism, 4096).tokens_NS
    out = {"threads": torch.get_num_threads(), "cache": bench_cache(model, tokens)}
    site = default_sae_site(model.cfg.n_layers)
    acts = cache_activations(model, probe_dataset(organism, 4096, seed=1).tokens_NS, [site]).flat(site)
    out["sae"] = bench_sae(acts, AuditConfig().sae)
    if not args.no_audit:
        t0 = time.perf_counter()
        res = audit_model(model, organism, AuditConfig())
        out["audit"] = {"seconds": time.perf_counter() - t0, "stages": res.seconds,
                        "best_probe_auroc": res.best_probe["auroc"]}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
