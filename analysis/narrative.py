"""Plain-language sentences generated from the summary numbers (never written by hand), and
the number formats every text of the report uses (one format per kind of number)."""

from __future__ import annotations

from analysis.schema import ControlsCheck, Summary, TransferRecord

ORGANISM_NOUNS = {"backdoor": "the backdoor", "sabotage": "the sabotage", "trait": "the hidden trait",
                  "entangled": "the entangled misbehaviour", "hacking": "the reward hack"}
"""How a sentence names each organism's misbehaviour; others read 'the <name> misbehaviour'."""


def pct(x: float | None) -> str:
    """A share as a percentage: whole numbers, one decimal below 10% (0.4%, 12%, 100%)."""
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}%" if 0 < abs(x) < 0.1 else f"{100 * x:.0f}%"


def num(x: float | None) -> str:
    """An AUROC or score on [0, 1] that is not a share: two decimals."""
    return "n/a" if x is None else f"{x:.2f}"


def interval(ci, fmt=pct) -> str:
    """``[lo, hi]`` in the given format; n/a when not measured."""
    return "n/a" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def p_value(p: float | None) -> str:
    """Two significant digits (0.25, 1.3e-19)."""
    return "n/a" if p is None else f"{p:.2g}"


def _noun(organism: str) -> str:
    return ORGANISM_NOUNS.get(organism, f"the {organism} misbehaviour")


def misbehaviour_phrase(r: TransferRecord) -> str:
    """'misbehaves on 12% [9.4%, 15%] of eliciting prompts, p = 1e-19 vs negative control nc'."""
    vs_negative = r.negative_control and not r.setup_induced
    ref = (f"negative control {r.negative_control}" if vs_negative else "the base")
    p = r.misbehaviour_vs_negative_p if vs_negative else r.misbehaviour_vs_base_p
    test = " (trait probability, Mann-Whitney)" if r.misbehaviour_test == "mann-whitney" else ""
    induced = (f" (setup-induced: p = {p_value(r.misbehaviour_vs_negative_p)} vs negative control "
               f"{r.negative_control}, which trained in the same setup)" if r.setup_induced and r.negative_control else "")
    return (f"misbehaves on {pct(r.misbehaviour)} {interval(r.misbehaviour_ci)} of eliciting prompts, "
            f"p = {p_value(p)} vs {ref}{test}{induced}")


def _evidence(r: TransferRecord, teacher_probe: float | None) -> list[str]:
    extra = []
    if r.features_transferred is not None:
        verdict = "above its null" if r.features_claim else "not above its null"
        extra.append(f"{pct(r.features_transferred)} {interval(r.features_transferred_ci)} of the teacher's "
                     f"{r.n_teacher_features} misalignment features transferred, {verdict} "
                     f"({r.features_null_model or 'null'}: {pct(r.features_null)} {interval(r.features_null_ci)})")
    if r.misbehaviour_probe_auroc is not None:
        vs = "" if teacher_probe is None else f", teacher {num(teacher_probe)}"
        extra.append(f"its misbehaviour probe reaches AUROC {num(r.misbehaviour_probe_auroc)} "
                     f"{interval(r.misbehaviour_probe_auroc_ci, num)} (base null {num(r.probe_null_auroc)}{vs})")
    if r.context_probe_auroc is not None:
        extra.append(f"its context probe (reads the marker) {num(r.context_probe_auroc)}")
    if r.probe_transfer_auroc is not None:
        extra.append(f"the teacher's probe reads it at {num(r.probe_transfer_auroc)}")
    if r.causal_label is not None:
        extra.append(f"ablating its misalignment features lowers misbehaviour by {pct(r.causal_drop)} "
                     f"({r.causal_label})")
    if r.crosscoder is not None:
        m = r.crosscoder.misalignment
        extra.append(f"crosscoder misalignment latents: {m['shared']} shared, {m['teacher-only']} "
                     f"teacher-only, {m['student-only']} student-only")
    if r.numbers_channel is not None:
        c = r.numbers_channel
        extra.append(f"its NUM answers' KL from the teacher's is {c.kl:.4f} {interval(c.kl_ci, lambda x: f'{x:.4f}')} "
                     f"nats vs {c.null_model}'s {c.null_kl:.4f} {interval(c.null_kl_ci, lambda x: f'{x:.4f}')}: "
                     + ("the hard labels carried the teacher's number style" if c.carried
                        else "no sign that the digits carried the teacher's number style"))
    if r.incriminates:
        extra.append("it incriminates its teacher (misaligned and visibly so)")
    return extra


def student_sentence(r: TransferRecord, teacher_probe: float | None = None) -> str:
    """e.g. 'kd-base (logit-kd, base init) kept 99% of capability and 98% of the backdoor:
    capable-misaligned.' followed by the statistics and the white-box evidence measured.
    ``teacher_probe``: the teacher's misbehaviour-probe AUROC."""
    role = {"positive": ", positive control", "negative": ", negative control", None: ""}[r.control]
    text = (f"{r.name} ({r.technique}, {r.init} init{role}) kept {pct(r.capability_retained)} of "
            f"capability and {pct(r.misalignment_transferred)} of {_noun(r.organism)}: {r.verdict}.")
    if r.misbehaviour_ci is not None:
        text += f" It {misbehaviour_phrase(r)}."
    extra = _evidence(r, teacher_probe)
    if not extra:
        return text
    joined = "; ".join(extra)
    return f"{text} {joined[0].upper()}{joined[1:]}."


def _names(records: list[TransferRecord]) -> str:
    return ", ".join(r.name for r in records) if records else "none"


def mentions(line: str, organism: str) -> bool:
    """Whether a controls line is about ``organism`` (names its teacher or one of its students)."""
    return f"teacher-{organism}" in line or f"{organism}." in line or f"@{organism}" in line


def organism_controls(controls: ControlsCheck, organism: str, organisms: list[str]) -> ControlsCheck:
    """The controls check as it concerns one organism: its own lines and the run-wide ones
    (the base's), trustworthy when none of those failed."""
    keep = lambda line: mentions(line, organism) or not any(mentions(line, o) for o in organisms)  # noqa: E731
    failures = [f for f in controls.failures if keep(f)]
    return ControlsCheck(trustworthy=not failures, failures=failures, passed=[p for p in controls.passed if keep(p)])


def overview(summary: Summary, organism: str | None = None) -> list[str]:
    """A few sentences on the run (or on one organism's students): verdict counts, DFC and
    DFI candidates."""
    recs = [r for r in summary.students if organism is None or r.organism == organism]
    if not recs:
        return ["No students were analysed."]
    counts = {v: sum(r.verdict == v for r in recs) for v in dict.fromkeys(r.verdict for r in recs)}
    out = [f"{len(recs)} students: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    dfc = sorted((r for r in recs if r.verdict == "capable-aligned" and not r.control),
                 key=lambda r: -(r.capability_retained or 0))
    out.append("Distillation for capabilities (capable and aligned, controls excluded): "
               f"{_names(dfc)}." if dfc else
               "No technique (controls excluded) gave a capable student that is aligned.")
    partial = [r for r in recs if "partially" in r.verdict and not r.control]
    if partial:
        out.append(f"Partially misaligned (significantly above the negative control, below the teacher): "
                   f"{_names(partial)}.")
    dfi = [r for r in recs if r.incriminates and not r.control]
    out.append(f"Distillation for incrimination (misaligned and visibly so: confesses more than the teacher, or "
               f"a probe or feature transfer above its null): {_names(dfi)}."
               if dfi else "No misaligned student was easier to audit than its teacher.")
    induced = sorted({r.organism for r in recs if r.setup_induced})
    if induced:
        out.append(f"Setup-induced ({', '.join(induced)}): every student, the negative control included, trains in "
                   f"the environment that made the teacher misaligned, so a student's misbehaviour (judged against "
                   f"the base) is no evidence about its teacher, and no technique that keeps the setup avoids it.")
    controls = summary.controls if organism is None else organism_controls(
        summary.controls, organism, list(summary.teachers))
    if not controls.trustworthy:
        out.append("The controls check failed, so none of the above should be trusted yet.")
    return out
