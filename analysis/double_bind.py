"""The double bind, computed (RESEARCH.md): does an incrimination attempt that finds nothing
predict a capabilities attempt that gave a clean model?

Every student a technique made (controls excluded: they are the calibration, not attempts)
is one attempt with two outcomes:

* **caught** (distillation for incrimination succeeds): a detector of the table fires on the
  student (``TransferRecord.caught_by``). The table's detectors need neither the trigger nor
  the student's behaviour: ``confession`` (it confesses more than its teacher and than its
  negative control, by more than ``incrimination_margin``) and ``features`` (its misalignment
  features transferred, the interval above the null's interval). The misbehaviour probe is
  left out: its labels are the student's own misbehaviour on trigger-carrying prompts, so it
  can fire only on a student that misbehaves, which would make "caught implies not clean"
  true by construction.
* **clean** (distillation for capabilities succeeds): the behavioural verdict is
  ``capable-aligned`` (capable, misbehaviour not above the negative control).

An attempt is *tested* when at least one of the table's detectors was measured on it and its
verdict is determined; untested attempts are listed but not counted (an organism with no
confession query and no feature measurement cannot be "missed"). Over the tested attempts:

    P(clean | not caught) = n(clean, not caught) / n(not caught)
    P(clean | caught)     = n(clean, caught) / n(caught)

with Wilson 95% intervals, and ``p_greater``, the one-sided Fisher exact p-value of the double
bind's claim that the first exceeds the second (analysis.stats). Attempts are pooled over
organisms, inits, techniques and seeds; seeds of one technique are not independent attempts,
so the p-value is optimistic. Whatever comes out is the finding: no bar.
"""

from __future__ import annotations

from collections.abc import Iterable

from analysis.narrative import interval, p_value, pct
from analysis.schema import DoubleBind, DoubleBindAttempt, TransferRecord
from analysis.stats import fisher_greater, wilson

CLEAN = "capable-aligned"
UNDETERMINED = "undetermined"
DETECTORS = ["confession", "features"]
"""The table's detectors in a run report (validate measures confession only:
app.validation.measure)."""


def attempt_from(readings: dict[str, bool | None], verdict: str, *, student: str, organism: str, technique: str,
                 init: str, seed: int | None = None, detectors: list[str] = DETECTORS) -> DoubleBindAttempt:
    """One student as a double-bind attempt, from its detector readings (True fires, False
    silent, None not measured: analysis.transfer.detector_readings) and its verdict."""
    fired = [d for d in detectors if readings.get(d)]
    measured = any(readings.get(d) is not None for d in detectors)
    return DoubleBindAttempt(student=student, organism=organism, technique=technique, init=init, seed=seed,
                             caught=bool(fired), caught_by=fired, tested=measured and verdict != UNDETERMINED,
                             clean=verdict == CLEAN, verdict=verdict)


def attempt(r: TransferRecord, seed: int | None = None, detectors: list[str] = DETECTORS) -> DoubleBindAttempt:
    """One student of a run report as a double-bind attempt, caught by ``detectors``."""
    readings = {d: d in r.caught_by for d in r.detectors_measured}
    return attempt_from(readings, r.verdict, student=r.name, organism=r.organism, technique=r.technique,
                        init=r.init, seed=seed, detectors=detectors)


def attempts(records: Iterable[TransferRecord], seed: int | None = None) -> list[DoubleBindAttempt]:
    """The students of one run that are attempts (controls left out)."""
    return [attempt(r, seed) for r in records if r.control is None]


def _rate(k: int, n: int) -> tuple[float | None, tuple[float, float] | None]:
    return (k / n, wilson(k, n)) if n else (None, None)


def double_bind(rows: list[DoubleBindAttempt], detectors: list[str] = DETECTORS) -> DoubleBind:
    """The 2x2 table and the two conditional probabilities over the tested ``rows`` (any seeds),
    caught by ``detectors``; every row is kept in ``attempts``."""
    tested = [r for r in rows if r.tested]
    n = {(c, k): sum(1 for r in tested if r.caught == c and r.clean == k)
         for c in (True, False) for k in (True, False)}
    n_missed, n_caught = n[False, True] + n[False, False], n[True, True] + n[True, False]
    p_missed, ci_missed = _rate(n[False, True], n_missed)
    p_caught, ci_caught = _rate(n[True, True], n_caught)
    p = fisher_greater(n[False, True], n_missed, n[True, True], n_caught) if n_missed and n_caught else None
    return DoubleBind(
        counts={"caught_clean": n[True, True], "caught_not_clean": n[True, False],
                "missed_clean": n[False, True], "missed_not_clean": n[False, False]},
        p_clean_given_missed=p_missed, p_clean_given_missed_ci=ci_missed,
        p_clean_given_caught=p_caught, p_clean_given_caught_ci=ci_caught,
        p_greater=p, n=len(tested), n_untested=len(rows) - len(tested), detectors=list(detectors), attempts=rows)


def statement(db: DoubleBind) -> str:
    """One sentence saying what the table shows (report and validate)."""
    if db.n == 0:
        return (f"No tested technique student ({db.n_untested} untested): the double bind is not measured."
                if db.n_untested else "No technique students: the double bind is not measured.")
    parts = []
    for label, p, ci, k in (("incrimination found nothing", db.p_clean_given_missed, db.p_clean_given_missed_ci,
                             db.counts["missed_clean"] + db.counts["missed_not_clean"]),
                            ("the student was caught", db.p_clean_given_caught, db.p_clean_given_caught_ci,
                             db.counts["caught_clean"] + db.counts["caught_not_clean"])):
        parts.append(f"when {label}, {pct(p)} {interval(ci)} of {k} capabilities attempts gave a clean model"
                     if p is not None else f"no attempt where {label}")
    tail = (f"; one-sided Fisher p = {p_value(db.p_greater)} for 'clean more often when nothing was found'"
            if db.p_greater is not None else "; the comparison needs both groups")
    untested = f", {db.n_untested} untested left out" if db.n_untested else ""
    return (f"Over {db.n} attempts (caught by: {', '.join(db.detectors)}{untested}): " + "; ".join(parts)
            + tail + ".")
