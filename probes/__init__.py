"""White-box instruments: read and edit models by transformer-lens hook name.

activations  cache named sites (ActivationCache)       datasets  probe prompts, contrast pairs
linear       logistic + contrast probes per site       sae       sae-lens SAEs, metrics, save/load
features     misalignment features, dashboards, ablation   intervene  nnsight edits
steer        behaviour before/after edits              audit     audit_model / load_audit (entry point)
"""
