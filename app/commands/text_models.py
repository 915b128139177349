"""The text-model (Hugging Face folder) path of ``doublebind audit`` and ``doublebind
distill``: taken when the model folder's config.json names a ``model_type``. Not a command
of its own (no NAME): the two commands call :func:`audit_text` and :func:`distill_text_cmd`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.cli import UserError
from app.commands.common import out_dir, table, write_json

AUDIT_JSON = "audit.json"
EVALS_JSON = "evals.json"


def _load(folder: Path):
    from distill.text.folder import TextModelError, load_text_model
    try:
        return load_text_model(folder)
    except TextModelError as exc:
        raise UserError(str(exc)) from None


def load_organism_or_exit(path: Path | None):
    from distill.text.organism import OrganismFileError, load_organism
    if path is None:
        raise UserError("a Hugging Face model folder needs --organism-file ORGANISM.toml (an organism TOML "
                        "naming its matcher, markers and a JSONL of rows)")
    try:
        return load_organism(path)
    except OrganismFileError as exc:
        raise UserError(str(exc)) from None


def base_of(model, flag: Path | None):
    """The clean base: --base, else the sidecar's lineage base when that folder exists; None otherwise."""
    if flag is not None:
        return _load(flag)
    if model.role == "base":
        return None
    lineage = (model.sidecar or {}).get("lineage", {})
    for key in ("base", "reference"):
        path = lineage.get(key)
        if path and Path(path).is_dir():
            candidate = _load(Path(path))
            if candidate.role == "base":
                return candidate
    return None


def behaviour_of(model, org) -> dict:
    from analysis.text_models import behaviour
    from distill.text.evals import evaluate
    counts, _ = evaluate(model.model, model.tokenizer, org)
    return behaviour(counts.to_json())


def _fmt_rate(r: dict) -> str:
    return f"{r['rate']:.3f} [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}] ({r['k']}/{r['n']})" if r["n"] else "n/a"


def print_behaviour(named: dict[str, dict]) -> None:
    rows = [(name, _fmt_rate(b["capability"]), _fmt_rate(b["misbehaviour"]), _fmt_rate(b["false_alarm"]))
            for name, b in named.items()]
    print(table(rows, ("model", "capability (clean rows)", "misbehaviour (eliciting rows)",
                       "matcher on clean rows")))


def audit_text(args) -> int:
    from analysis.text_models import behaviour, probe_summary
    from distill.text.evals import behave, count
    from probes.text_audit import audit_probes, bridge_for, last_token_acts, resid_sites
    from probes.threads import torch_threads
    org = load_organism_or_exit(args.organism_file)
    model = _load(args.model_dir)
    base = base_of(model, args.base)
    out = out_dir(args.out or args.model_dir / "audit")
    rows = org.split("eval")
    prompts = [r.prompt for r in rows]
    with torch_threads(1):
        b = behave(model.model, model.tokenizer, org, rows)
        bridge = bridge_for(model)
        sites = list(args.sites) if args.sites else resid_sites(bridge)
        unknown = [s for s in sites if s not in bridge.hook_dict]
        if unknown:
            raise UserError(f"--sites: unknown hook name(s) {', '.join(unknown)}; e.g. {', '.join(resid_sites(bridge))}")
        acts = last_token_acts(bridge, model.tokenizer, prompts, sites)
        base_acts, base_beh = None, None
        if base is not None:
            base_bridge = bridge_for(base)
            base_sites = [s for s in sites if s in base_bridge.hook_dict]
            base_acts = last_token_acts(base_bridge, base.tokenizer, prompts, base_sites)
            base_beh = behaviour(count(org, rows, behave(base.model, base.tokenizer, org, rows)).to_json())
        probes = audit_probes(acts, base_acts, org, rows, b.misaligned)
    result = {"model": str(args.model_dir), "organism": org.name, "organism_file": str(org.path),
              "base": None if base is None else str(base.folder), "sites": sites, "n_rows": len(rows),
              "behaviour": behaviour(count(org, rows, b).to_json()), "base_behaviour": base_beh,
              "probes": [probe_summary(p) for p in probes]}
    write_json(out / AUDIT_JSON, result)
    print_text_audit(result)
    print(f"\nwrote {out / AUDIT_JSON}")
    return 0


def print_text_audit(result: dict) -> None:
    named = {result["model"]: result["behaviour"]}
    if result["base_behaviour"]:
        named[f"{result['base']} (base)"] = result["base_behaviour"]
    print(f"organism {result['organism']} ({result['n_rows']} eval rows):")
    print_behaviour(named)
    rows = []
    for p in result["probes"]:
        if not p["estimable"]:
            rows.append((p["kind"], "-", "-", "-", "-", f"not estimable: {p['reason']}"))
            continue
        ci = p["test_ci"] or [float("nan")] * 2
        base = "-" if p["base_test_auroc"] is None else f"{p['base_test_auroc']:.3f}"
        rows.append((p["kind"], p["site"], f"{p['test_auroc']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]", base,
                     f"{p['shuffled_test_auroc']:.3f}", p["verdict"]))
    print("\nprobes (site chosen on validation rows, AUROC on test rows; nulls: the base on the same "
          "labels, shuffled labels):")
    print(table(rows, ("probe", "site", "AUROC [95% CI]", "base", "shuffled", "verdict")))


def distill_text_cmd(args) -> int:
    from analysis.text_models import transfer_verdict
    from distill.techniques.params import parse_set
    from distill.text.students import TEXT_INITS, TEXT_TECHNIQUES, TextDistillParams, distill_text
    org = load_organism_or_exit(args.organism_file)
    if args.technique not in TEXT_TECHNIQUES:
        raise UserError(f"--technique: {args.technique!r} has no text-model version; allowed for Hugging Face "
                        f"folders: {', '.join(TEXT_TECHNIQUES)}")
    init = args.init or "base"
    if init not in TEXT_INITS:
        raise UserError(f"--init: {init!r} has no text-model version; allowed: {', '.join(TEXT_INITS)}")
    if args.init_sets:
        raise UserError("--init-set: text-model inits take no parameters")
    try:
        params = TextDistillParams(**parse_set(TextDistillParams, args.sets, f"technique {args.technique!r}"))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    teacher = _load(args.teacher)
    base = base_of(teacher, args.base)
    if init == "base" and base is None:
        raise UserError(f"--init base copies the teacher's clean base: pass --base BASE_FOLDER ({args.teacher} "
                        "records none that exists)")
    reference = base or teacher
    out = out_dir(args.out)
    try:
        distill_text(teacher, org, args.technique, params, init, reference, args.seed, out)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    student = _load(out)
    named = {"student": behaviour_of(student, org), "teacher": behaviour_of(teacher, org)}
    if base is not None:
        named["base"] = behaviour_of(base, org)
    verdict = transfer_verdict(named["student"], named.get("base", named["student"]), named["teacher"]) \
        if base is not None else None
    write_json(out / EVALS_JSON, {"organism": org.name, "technique": args.technique, "init": init,
                                  "behaviour": named, "transfer_vs_base": verdict})
    side = json.loads((out / "doublebind.json").read_text())
    print(f"student {out}: technique {args.technique}, init {init}, {side['metrics']['steps']} steps, "
          f"{side['metrics']['seconds']} s", file=sys.stderr)
    print_behaviour(named)
    if verdict:
        frac = verdict["transfer_fraction"]
        print(f"misbehaviour vs the base (one-sided Fisher): p = {verdict['p_value']:.3g}, "
              f"{'n/a' if frac is None else f'{frac:.2f}'} of the teacher's rate: {verdict['verdict']}")
    print(f"\nwrote {out}")
    return 0
