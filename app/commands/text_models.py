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


def print_behaviour(named: dict[str, dict]) -> None:
    from analysis.text_models import rate_text
    rows = [(name, rate_text(b["capability"]), rate_text(b["misbehaviour"]), rate_text(b["false_alarm"]))
            for name, b in named.items()]
    print(table(rows, ("model", "capability (clean rows)", "misbehaviour (eliciting rows)",
                       "matcher on clean rows")))


def audit_text(args) -> int:
    from analysis.text_models import audit_text_model
    from probes.text_audit import SiteError
    org = load_organism_or_exit(args.organism_file)
    model = _load(args.model_dir)
    base = base_of(model, args.base)
    out = out_dir(args.out or args.model_dir / "audit")
    try:
        result = audit_text_model(model, base, org, args.sites)
    except SiteError as exc:
        raise UserError(f"--sites: {exc}") from None
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
    from analysis.text_models import PROBE_COLUMNS, causal_text, probe_cells
    rows = [tuple(probe_cells(p).values()) for p in result["probes"]]
    print("\nprobes (site chosen on validation rows, AUROC on test rows; nulls: the base on the same "
          "labels at its own best site, 50 shuffled-label refits):")
    print(table(rows, PROBE_COLUMNS))
    print(causal_text(result.get("causal")))


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
        print(f"misbehaviour vs the base (one-sided Fisher): p = {verdict['p_value']:.3g}; vs the teacher's: "
              f"p = {verdict['p_below_teacher']:.3g} that it is lower; transfer fraction net of the base "
              f"{'n/a' if frac is None else f'{frac:.2f}'}: {verdict['verdict']}"
              + (" (the student also misbehaves on clean rows)" if verdict["misbehaves_on_clean_rows"] else ""))
        print("(the null here is the base; for a null of the same init, distil a negative-control student "
              "with the same --init, or use doublebind run with a text spec)")
    print(f"\nwrote {out}")
    return 0
