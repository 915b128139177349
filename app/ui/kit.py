"""Everything the app needs to read one model of a run, loaded once.

A :class:`ModelKit` bundles a model with its white-box instruments from the run's audit:
its linear probes, the SAE of its audited site and that SAE's misalignment and context features
(the one definition, probes.diffing, read through :mod:`app.ui.featureset`).
Loading reads safetensors/JSON only; the app caches kits with ``st.cache_resource``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.runfolder import RunFolder
from app.ui.featureset import ModelFeatures, model_features
from distill.integrity import ArtifactError
from distill.sitenames import site_layer
from distill.store import StoreError, load_model
from probes import audit as audits
from probes import sae as saes
from probes.linear import LinearProbe


DAMAGE = (OSError, KeyError, ValueError, TypeError, ArtifactError)
"""What reading a damaged or foreign instrument file raises (TypeError: fields of an older format)."""


class KitError(Exception):
    """A model of the run, or its audit, cannot be loaded; the message says which file."""


@dataclass
class ModelKit:
    model_id: str
    model: object
    """transformer-lens HookedTransformer, in eval mode."""
    config: dict
    """The model folder's config.json (architecture, role, organism, lineage, evals)."""
    organism: str
    probes: list[LinearProbe] = field(default_factory=list)
    """Logistic probes of the audit (every site and pool)."""
    best_probe: LinearProbe | None = None
    sae_site: str | None = None
    sae: object | None = None
    """sae-lens SAE at ``sae_site``."""
    features: ModelFeatures = field(default_factory=ModelFeatures)
    """The model's misalignment and context features at ``sae_site`` (probes.diffing's record)."""
    audit: audits.AuditResult | None = None
    """The model's audit (None: not audited)."""
    problems: list[str] = field(default_factory=list)
    """Damaged instruments left out (each names its file)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Held while the model runs: the app shares one kit between sessions (threads), and
    reading or steering adds transformer-lens hooks to the shared model."""

    def probe(self, site: str, pool: str = "last") -> LinearProbe:
        for p in self.probes:
            if (p.site, p.pool) == (site, pool):
                return p
        raise KeyError(f"{self.model_id} has no {pool} probe at {site}; probed: "
                       f"{', '.join(sorted({p.site for p in self.probes}))}")

    @property
    def misalignment(self) -> list[int]:
        """Misalignment features at ``sae_site``, best first (empty: see ``features.note``)."""
        return self.features.misalignment

    @property
    def context(self) -> list[int]:
        """Context features at ``sae_site``: they read the marker, they are not misalignment."""
        return self.features.context

    @property
    def probe_sites(self) -> list[str]:
        return list(dict.fromkeys(p.site for p in self.probes))


def playground_probe(probes: list[LinearProbe]) -> LinearProbe | None:
    """The probe the playground scores tokens with: the best last-position probe (ties: the
    deeper site). A mean-pooled probe can win the audit by spotting the trigger's embedding
    at layer 0; the last-position one reads the model's state where it commits to an answer."""
    last = [p for p in probes if p.pool == "last"] or probes
    if not last:
        return None
    return max(last, key=lambda p: (-1.0 if p.auroc != p.auroc else p.auroc, site_layer(p.site)))


def sae_folder(run: RunFolder, model_id: str, site: str) -> Path:
    """Where the audit saved the SAE of ``site``: ``saes/<model>/<site>/`` (older runs kept
    it inside the audit folder, ``probes/<model>/saes/<site>/``)."""
    folder = run.saes(model_id) / site
    return folder if folder.is_dir() else run.probes(model_id) / audits.SAES_DIR / site


def read_audit(run: RunFolder, model_id: str) -> audits.AuditResult:
    """The audit of ``model_id``; :class:`KitError` when it is missing or of another format."""
    folder = run.probes(model_id)
    try:
        return audits.load_audit(folder)
    except FileNotFoundError:
        raise KitError(f"{model_id} has no audit ({folder / audits.AUDIT_FILE} missing)") from None
    except (OSError, ValueError, TypeError, KeyError) as exc:  # TypeError: fields of an older format
        raise KitError(f"{folder / audits.AUDIT_FILE}: unreadable, probably written by an older doublebind "
                       f"({type(exc).__name__}: {exc}); re-run the audits with `doublebind run`") from None


def load_kit(run: RunFolder, model_id: str, device: str = "cpu") -> ModelKit:
    """The model ``model_id`` of ``run`` with its audit's probes and SAE. Only unreadable weights
    raise :class:`KitError`; a damaged audit, probe file, SAE or feature record turns off just
    the instruments that need it, and ``problems`` says which file and why."""
    try:
        model, cfg = load_model(run.model_dir(model_id), device)
    except StoreError as exc:
        raise KitError(str(exc)) from None
    organism = cfg.get("organism") or ""
    kit = ModelKit(model_id, model, cfg, organism)
    folder = run.probes(model_id)
    if not (folder / audits.AUDIT_FILE).is_file():
        return kit  # an unaudited model still runs in the playground, without instruments
    try:
        kit.audit = audit = read_audit(run, model_id)
    except KitError as exc:
        kit.problems.append(f"{exc}: no probes or SAE features for {model_id}")
        return kit
    kit.organism = audit.organism or organism
    try:
        kit.probes = [p for p in audits.load_probes(folder) if p.kind == "logistic"]
        kit.best_probe = playground_probe(kit.probes)
    except DAMAGE as exc:
        kit.problems.append(f"{folder}: probes unreadable ({type(exc).__name__}: {exc}); no probe scores for "
                            f"{model_id}; re-run the audits with `doublebind run`")
    if audit.sae_sites:
        site = audit.sae_sites[0]
        try:
            kit.sae = saes.load_sae(sae_folder(run, model_id, site), device)
            kit.features = model_features(folder, site)
            kit.sae_site = site
        except DAMAGE as exc:
            kit.sae, kit.features = None, ModelFeatures(note="its SAE is unreadable")
            kit.problems.append(f"{sae_folder(run, model_id, site)}: SAE or feature record unreadable "
                                f"({type(exc).__name__}: {exc}); no SAE features or ablation for {model_id}; "
                                f"re-run the audits with `doublebind run`")
    return kit
