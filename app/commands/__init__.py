"""One module per CLI sub-command (see app/cli.py)."""
