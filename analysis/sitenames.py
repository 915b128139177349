"""Short labels for hook sites (figures and app pages; no plotting library needed)."""


def short_site(site: str) -> str:
    """blocks.1.hook_resid_pre -> L1 pre (hook names are long for axis labels)."""
    parts = site.split(".")
    if len(parts) == 3 and parts[0] == "blocks":
        return f"L{parts[1]} {parts[2].removeprefix('hook_').removeprefix('resid_')}"
    return site
