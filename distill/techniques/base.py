"""What a technique is, the registry, and the context a technique runs in.

A technique composes shared parts: a transfer set (``transfer``), targets (``targets``,
``monitors``), a loss and schedule (``fit``) and a student initialisation (``distill.inits``).
A subclass sets its name, summary and parameter model and implements :meth:`Technique.plan`
(one training run); multi-stage techniques (iterative-filter) override :meth:`Technique.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

from pydantic import BaseModel

from distill.evals import EvalConfig
from distill.inits import INITS, get_init
from distill.store import load_model
from distill.techniques.fit import Objective, TrainingSet, fit
from distill.techniques.params import CommonParams, TransferParams, check, fields_line
from distill.techniques.targets import TeacherOutputs, teacher_outputs
from distill.techniques.transfer import TransferSet, TransferSpec
from distill.train import StopFn, TrainConfig, TrainResult

TECHNIQUES: dict[str, "Technique"] = {}


def register(cls):
    TECHNIQUES[cls.name] = cls()
    return cls


def get_technique(name: str) -> "Technique":
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise ValueError(f"unknown technique {name!r}; allowed: {', '.join(TECHNIQUES)}") from None


@dataclass
class Context:
    """Everything a technique may use. It never includes the organism's trigger: the
    organism name is only used to draw its ordinary traffic and to score the record."""

    teacher_dir: Path
    teacher_cfg: dict
    seed: int
    make_student: Callable[[], object]
    """A fresh copy of the student initialisation (called once per student trained)."""
    lr: float
    """Resolved peak lr (the technique's or the init's default)."""
    work_dir: Path
    """Checkpoints and finished stages of this student (deleted when the student is saved)."""
    device: str = "cpu"
    cache_dir: Path | None = None
    eval_cfg: EvalConfig = EvalConfig()
    checkpoint_every: int = 100
    _teacher: object = None
    _outputs: dict = field(default_factory=dict)

    @property
    def organism(self) -> str:
        return self.teacher_cfg["organism"]

    def teacher(self):
        if self._teacher is None:
            self._teacher = load_model(self.teacher_dir, self.device)[0]
        return self._teacher

    def transfer_spec(self, p: CommonParams, **overrides) -> TransferSpec:
        return TransferSpec(organism=self.organism, n_prompts=p.n_prompts, seed=p.data_seed, **overrides)

    def outputs(self, spec: TransferSpec, transfer: TransferSet, temperature: float | None) -> TeacherOutputs:
        """The teacher's answers + logits on ``transfer`` (greedy if temperature is None)."""
        key = (spec, temperature)
        if key not in self._outputs:
            self._outputs[key] = teacher_outputs(self.teacher, self.teacher_cfg["sha256"], spec,
                                                 transfer.examples.prompts_NP, temperature, self.cache_dir)
        return self._outputs[key]

    def train_cfg(self, p: CommonParams, check_every: int = 100) -> TrainConfig:
        return TrainConfig(steps=p.steps, batch_size=p.batch_size, lr=self.lr,
                           weight_decay=p.weight_decay, check_every=check_every)

    def fit(self, model, plan: "Plan", p: CommonParams, stage: str = "train") -> TrainResult:
        return fit(model, plan.data, plan.objective, self.train_cfg(p, plan.check_every), self.seed,
                   ckpt_dir=self.work_dir / f"ckpt-{stage}", checkpoint_every=self.checkpoint_every,
                   stop_fn=plan.stop_fn, desc=f"distill:{stage}")


@dataclass
class Plan:
    """One training run: data, objective, an optional early stop, and facts for the lineage."""

    data: TrainingSet
    objective: Objective
    record: dict = field(default_factory=dict)
    stop_fn: StopFn | None = None
    check_every: int = 100


@dataclass
class Outcome:
    model: object
    result: TrainResult
    record: dict
    """Technique facts for the student's lineage (transfer stats, monitor counts, rounds)."""


@dataclass(frozen=True)
class Resolved:
    """A validated student spec: every default filled in."""

    technique: "Technique"
    params: CommonParams
    init: str
    init_params: BaseModel

    def to_json(self) -> dict:
        return {"technique": self.technique.name, "params": self.params.model_dump(mode="json"),
                "init": self.init, "init_params": self.init_params.model_dump(mode="json")}


class Technique:
    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[CommonParams]] = CommonParams
    default_init: ClassVar[str] = "base"
    allowed_inits: ClassVar[tuple[str, ...]] = tuple(INITS)
    init_reason: ClassVar[str] = ""
    """Why ``allowed_inits`` is restricted (shown in the error)."""
    default_init_params: ClassVar[dict[str, dict]] = {}
    """Per init name: the technique's defaults for that init's parameters."""
    sees_teacher: ClassVar[bool] = True
    """False when training never reads the teacher (its outputs or weights): the students of
    two teachers of one base are then the same model, trained once (``distill_student(twin=)``)."""

    def eval_markers(self, p, organism: str) -> tuple[str, ...]:
        """Extra evaluations, each with one of these markers in every prompt (inoculation:
        its marker)."""
        return ()

    def plan(self, ctx: Context, p) -> Plan:
        raise NotImplementedError

    def run(self, ctx: Context, p) -> Outcome:
        plan = self.plan(ctx, p)
        model = ctx.make_student()
        return Outcome(model, ctx.fit(model, plan, p), plan.record)

    def check(self, p, init: str, init_params: BaseModel) -> None:
        """Cross-parameter rules (raise ValueError naming the parameter)."""

    def describe(self) -> str:
        shared = TransferParams if issubclass(self.Params, TransferParams) else CommonParams
        own = fields_line(self.Params, shared)
        inits = "" if self.allowed_inits == tuple(INITS) else f"; inits: {'|'.join(self.allowed_inits)}"
        return (f"{self.summary} [{own or 'no own parameters'}; default init {self.default_init}{inits}; "
                f"common: {', '.join(shared.model_fields)}]")


def resolve(technique: str, params: dict | None = None, init: str | None = None,
            init_params: dict | None = None) -> Resolved:
    """Validate a student spec before anything is trained; ValueError names the field."""
    t = get_technique(technique)
    p = check(t.Params, params, f"technique {technique!r}")
    init = init or t.default_init
    get_init(init)
    if init not in t.allowed_inits:
        raise ValueError(f"technique {technique!r}: init {init!r} is not allowed; allowed: "
                         f"{', '.join(t.allowed_inits)}{f' ({t.init_reason})' if t.init_reason else ''}")
    merged = {**t.default_init_params.get(init, {}), **dict(init_params or {})}
    ip = check(INITS[init].Params, merged, f"init {init!r}")
    t.check(p, init, ip)
    return Resolved(t, p, init, ip)
