"""Settings of the comparison stage (the spec's ``[analysis]`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from analysis.crosscoder import CrosscoderConfig
from analysis.feature_transfer import FeatureTransferConfig
from analysis.schema import VerdictConfig
from distill.guards import MAX_PROMPTS, Guarded


class AnalysisConfig(Guarded):
    """How teacher and student are compared, and the verdict thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: VerdictConfig = VerdictConfig()
    """Quadrant, feature-transfer, crosscoder and controls thresholds."""
    map_kind: Literal["procrustes", "ridge"] = "procrustes"
    """Student-to-teacher map for probe transfer and decoder cosines (fitted on clean prompts)."""
    crosscoder: CrosscoderConfig = CrosscoderConfig()
    """The teacher+student crosscoder at the SAE site."""
    n_crosscoder_prompts: int = Field(1024, ge=16, le=MAX_PROMPTS)
    """Probe prompts (all prompt positions) the crosscoder trains on."""
    features: FeatureTransferConfig = FeatureTransferConfig()
    """Misalignment-feature definitions and the calibrated feature-transfer score."""
    n_kl_prompts: int = Field(200, ge=10, le=MAX_PROMPTS)
    """Eliciting and clean prompts each for the per-token KL."""
