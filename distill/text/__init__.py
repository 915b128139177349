"""Hugging Face causal-LM folders as doublebind models: a user's own local model (Pythia,
GPT-2, Llama, Qwen ...) or one doublebind trained, with organisms that are data (an
organism TOML + JSONL of prompts) and capability and misbehaviour read from greedy text
completions. Training and generation use the HF model directly; reading activations goes
through transformer-lens's TransformerBridge (``probes.text_audit``)."""
