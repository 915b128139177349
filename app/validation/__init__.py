"""The scientific validation suite (``doublebind validate``): literature findings over seeds.

``spec`` loads the specs (``app/specs/validate/``), ``pipeline`` runs every seed's experiment
(teacher audits only, plus relearning), ``measure`` reads a run folder into numbers,
:mod:`analysis.findings` judges them, ``report`` writes ``findings.json`` + ``index.html``, and
``suite`` ties them together.
"""
