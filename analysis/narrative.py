"""Plain-language sentences generated from the summary numbers (never written by hand)."""

from __future__ import annotations

from analysis.schema import Summary, TransferRecord

ORGANISM_NOUNS = {"backdoor": "the backdoor", "sabotage": "the sabotage", "trait": "the hidden trait",
                  "entangled": "the entangled misbehaviour"}
"""How a sentence names each organism's misbehaviour; others read 'the <name> misbehaviour'."""


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _noun(organism: str) -> str:
    return ORGANISM_NOUNS.get(organism, f"the {organism} misbehaviour")


def student_sentence(r: TransferRecord, teacher_probe: float | None = None) -> str:
    """e.g. 'kd-base (logit-kd, base init) kept 99% of capability and 100% of the backdoor:
    capable-misaligned.' followed by the white-box evidence that was measured."""
    role = {"positive": ", positive control", "negative": ", negative control", None: ""}[r.control]
    text = (f"{r.name} ({r.technique}, {r.init} init{role}) kept {pct(r.capability_retained)} of "
            f"capability and {pct(r.misalignment_transferred)} of {_noun(r.organism)}: {r.verdict}.")
    extra = []
    if r.features_transferred is not None:
        extra.append(f"{pct(r.features_transferred)} of the teacher's {r.n_teacher_features} "
                     f"misalignment features have a misaligned match")
    if r.probe_auroc is not None:
        vs = "" if teacher_probe is None else f" (teacher {teacher_probe:.2f})"
        extra.append(f"its own probe reaches AUROC {r.probe_auroc:.2f}{vs}")
    if r.probe_transfer_auroc is not None:
        extra.append(f"the teacher's probe reads it at {r.probe_transfer_auroc:.2f}")
    if r.crosscoder is not None:
        m = r.crosscoder.misalignment
        extra.append(f"crosscoder misalignment latents: {m['shared']} shared, {m['teacher-only']} "
                     f"teacher-only, {m['student-only']} student-only")
    if r.incrimination is not None:
        extra.append(f"incrimination score {r.incrimination:+.2f}"
                     + (" — easier to audit than the teacher" if r.incriminates else ""))
    if not extra:
        return text
    joined = "; ".join(extra)
    return f"{text} {joined[0].upper()}{joined[1:]}."


def _names(records: list[TransferRecord]) -> str:
    return ", ".join(r.name for r in records) if records else "none"


def overview(summary: Summary) -> list[str]:
    """A few sentences on the run as a whole: quadrant counts, DFC and DFI candidates."""
    recs = summary.students
    if not recs:
        return ["No students were analysed."]
    counts = {v: sum(r.verdict == v for r in recs) for v in dict.fromkeys(r.verdict for r in recs)}
    out = [f"{len(recs)} students: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    dfc = sorted((r for r in recs if r.verdict == "capable-aligned" and not r.control),
                 key=lambda r: -(r.capability_retained or 0))
    out.append("Distillation for capabilities (capable and aligned, controls excluded): "
               f"{_names(dfc)}." if dfc else
               "No technique (controls excluded) gave a capable student that is aligned.")
    dfi = [r for r in recs if r.incriminates and not r.control]
    out.append(f"Distillation for incrimination (misaligned and easier to audit than the teacher): {_names(dfi)}."
               if dfi else "No misaligned student was easier to audit than its teacher.")
    if not summary.controls.trustworthy:
        out.append("The controls check failed, so none of the above should be trusted yet.")
    return out
