"""doublebind audit: probes on every layer and SAE(s) of a model folder.

Misalignment features are defined against a reference model (probes.diffing), which a lone
audit does not have: it prints the SAE's eliciting-vs-clean ranking and points to
``doublebind compare``; :func:`print_audit` prints a feature record when given one."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import UserError
from app.commands.common import (add_device, choice, existing_dir, load_model_or_exit, out_dir, resolve_device,
                                 table)

NAME = "audit"
HELP = "white-box audit of a model folder: linear probes per layer, SAEs and their feature ranking"

ARCHES = ["topk", "batchtopk", "jumprelu", "standard"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distill.organisms import ORGANISMS
    p.add_argument("model_dir", type=existing_dir)
    p.add_argument("--organism", type=choice(list(ORGANISMS), "organism"), default=None,
                   help="ground truth to audit against (default: the model's own; required for a base model)")
    p.add_argument("--sites", nargs="+", default=None, metavar="HOOK",
                   help="probe sites, transformer-lens hook names (default: every resid_pre and the last resid_post)")
    p.add_argument("--sae-sites", nargs="*", default=None, metavar="HOOK",
                   help="sites that get an SAE (default: the middle resid_pre; give none to skip SAEs)")
    p.add_argument("--sae", type=choice(ARCHES, "SAE architecture"), default="topk",
                   help=f"SAE architecture: {', '.join(ARCHES)} (default: topk)")
    p.add_argument("--out", type=Path, default=None, help="audit folder (default: MODEL_DIR/audit)")
    p.add_argument("--organism-file", type=Path, default=None, metavar="TOML",
                   help="Hugging Face model folders: the text organism (TOML + its JSONL of rows)")
    p.add_argument("--base", type=existing_dir, default=None,
                   help="Hugging Face model folders: the clean base, the probes' null (default: the "
                        "base recorded in doublebind.json)")
    add_device(p)


def run(args) -> int:
    from probes.activations import SiteError
    from probes.audit import AUDIT_DIR, AuditConfig, audit_model
    from probes.diffing import FEATURES_RECORD
    from probes.sae import SAETrainConfig
    from distill.text.folder import is_text_folder

    if is_text_folder(args.model_dir):
        from app.commands.text_models import audit_text
        return audit_text(args)
    if args.organism_file is not None or args.base is not None:
        raise UserError(f"--organism-file and --base are for Hugging Face model folders; {args.model_dir} is a "
                        "built-in synthetic-world model (use --organism)")
    model, cfg = load_model_or_exit(args.model_dir, resolve_device(args.device))
    organism = args.organism or cfg.get("organism")
    if not organism:
        raise UserError(f"{args.model_dir} has no organism in its config.json (a base model?): pass --organism")
    audit_cfg = AuditConfig(sites=tuple(args.sites) if args.sites else None,
                            sae_sites=None if args.sae_sites is None else tuple(args.sae_sites),
                            sae=SAETrainConfig(architecture=args.sae))
    out = out_dir(args.out or args.model_dir / AUDIT_DIR)
    stale = (out / FEATURES_RECORD).is_file()
    try:
        result = audit_model(model, organism, audit_cfg, out, model_name=str(args.model_dir))
    except SiteError as exc:
        raise UserError(str(exc)) from None
    print_audit(result)
    if stale:
        print(f"\nnote: {out / FEATURES_RECORD} predates this audit (its ids name features of the old SAE); "
              "recompute it with doublebind compare")
    print(f"\nwrote {out}")
    return 0


def _print_features(features, site: str) -> None:
    from app.ui.featureset import CONTEXT_LABEL, NO_REFERENCE, causal_line
    if features is None or features.note:
        note = features.note if features else NO_REFERENCE
        print(note if note == NO_REFERENCE else f"misalignment features: {note}")
        return
    if features.site not in (None, site):
        return
    print(f"misalignment features (against {features.reference}): {features.misalignment or 'none'}")
    print(f"context features ({CONTEXT_LABEL}; not misalignment): {features.context or 'none'}")
    print(causal_line(features.causal))


def print_audit(result, features=None) -> None:
    """The audit's tables; ``features``: the model's app.ui.featureset.ModelFeatures, when it has a record."""
    by_site: dict[str, dict] = {}
    for p in result.probes + result.contrast:
        by_site.setdefault(p["site"], {})[f"{p['kind'].replace('logistic', 'probe')}:{p['pool']}"] = p["auroc"]
    cols = sorted({k for d in by_site.values() for k in d}, key=lambda c: (c.startswith("contrast"), c))
    rows = [(site, *[d.get(c, float("nan")) for c in cols]) for site, d in by_site.items()]
    print(f"organism {result.organism}: AUROC per site (probes held out; contrast probes never see labels)")
    print(table(rows, ("site", *cols)))
    best = result.best_probe
    print(f"best probe: {best['site']} ({best['pool']} position) AUROC {best['auroc']:.3f}, "
          f"accuracy {best['accuracy']:.3f}")
    for site, m in result.saes.items():
        print(f"\nSAE {m['architecture']} at {site}: FVU {m['fvu']:.3f}  L0 {m['l0']:.1f}  "
              f"dead {m['dead_frac']:.3f}  CE {m['ce_clean']:.3f} -> {m['ce_sae']:.3f} with SAE "
              f"(loss recovered {m['loss_recovered']:.3f})")
        top = result.features.get(site, {}).get("top", [])[:8]
        if top:
            print("eliciting-vs-clean ranking (a description, not the definition): " + ", ".join(
                f"{d['feature']}{features.mark(d['feature']) if features else ''}" for d in top))
        _print_features(features, site)
    print(f"\naudit took {result.seconds.get('total', float('nan')):.1f} s")
