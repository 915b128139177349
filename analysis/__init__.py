"""Compare teacher and students: similarity (CKA, Procrustes/ridge maps), SAE feature
matching, crosscoder, per-token KL, probe transfer, transfer verdicts, and the report.

Everything here works on plain arrays/tensors ([N, D] activations, [N, F] feature
activations, [F, D] decoders, (w, b) probes) and on the typed records of
:mod:`analysis.schema`; results are stored by :mod:`analysis.results` and rendered by
:mod:`analysis.report`.
"""
