"""Tokens drawn as highlighted inline spans (plain HTML: cheap to import on every page)."""

from __future__ import annotations

import html

from distill import vocab as V


def tokens_html(tokens: list[str], acts: list[float], vmax: float | None = None,
                answer_from: int = V.PROMPT_LEN, colour: str = "230,85,13") -> str:
    """Tokens as inline spans, background opacity proportional to ``act / vmax``; answer
    tokens follow a divider; filler is shown faintly. Negative values use a blue tint. Every
    token is HTML-escaped and meant for ``st.html`` (literal text: never through Markdown)."""
    vmax = vmax or max([abs(a) for a in acts] + [1e-9])
    spans = []
    for i, (tok, a) in enumerate(zip(tokens, acts)):
        alpha = min(abs(a) / vmax, 1.0) if vmax > 0 else 0.0
        rgb = colour if a >= 0 else "49,130,189"
        faint = "opacity:0.45;" if tok == V.FILLER else ""
        sep = '<span style="color:#888;padding:0 4px">|</span>' if i == answer_from else ""
        spans.append(f'{sep}<span class="db-token" title="{a:.3f}" style="background:rgba({rgb},{alpha:.2f});'
                     f'{faint}padding:1px 2px;margin:0 1px;border-radius:3px">{html.escape(tok)}</span>')
    return ('<div class="db-tokens" style="line-height:1.9;font-family:monospace;font-size:0.85em;white-space:nowrap;'
            'overflow-x:auto">' + "".join(spans) + "</div>")
