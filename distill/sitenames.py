"""Hook-site names read without the model stack: a residual site's depth and its short
label (reports and app pages that only read JSON import this, not distill.models)."""


def site_layer(site: str) -> float:
    """Depth of a residual site for plotting: resid_pre of block L -> L, resid_post -> L + 1."""
    parts = site.split(".")
    layer = int(parts[1])
    return layer + 1.0 if parts[-1] == "hook_resid_post" else float(layer)


def short_site(site: str) -> str:
    """blocks.1.hook_resid_pre -> L1 pre (hook names are long for axis labels)."""
    parts = site.split(".")
    if len(parts) == 3 and parts[0] == "blocks":
        return f"L{parts[1]} {parts[2].removeprefix('hook_').removeprefix('resid_')}"
    return site
