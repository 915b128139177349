"""The ``doublebind`` command: one sub-command per module in ``app/commands/``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; :data:`COMMANDS` is the registry. Errors a user can cause (bad flag
values, unknown names, missing or corrupt folders, a path that cannot be written, a full
disk, a damaged artifact) exit with code 2 and one line on stderr naming the path, never a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ["run", "sweep", "teacher", "distill", "eval", "audit", "compare", "verify", "report", "separation", "app",
            "validate", "text-world", "list"]
"""Sub-commands in help order; each is ``app.commands.<name>``."""


class UserError(Exception):
    """An error caused by the user's input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UserError(f"{self.prog}: {message}")


def _load(name: str):
    try:
        module = f"app.commands.{name.replace('-', '_')}"
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None  # command not built yet
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="doublebind", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        sub = subs.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(sub)
        sub.set_defaults(_run=mod.run)
    return parser


def fault_line(exc: BaseException) -> str | None:
    """The one line for an error the user or their machine caused, None for a bug.

    An OSError (read-only folder, full disk, a path that cannot exist) names its file; a
    distill.integrity.ArtifactError (distill.store.StoreError among them) names the damaged
    artifact. The integrity module is looked up, not imported: an exception cannot come from a
    module never loaded, and ``doublebind --help`` stays free of torch."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):
        if exc.filename is None or not exc.strerror:
            return str(exc)
        name = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return f"{name}: {exc.strerror}"
    integrity = sys.modules.get("distill.integrity")
    if integrity is not None and isinstance(exc, integrity.ArtifactError):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    # nothing is ever downloaded: set the hub's offline switches before anything imports transformers
    from distill.text.offline import go_offline
    go_offline()
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted: finished stages are kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:
        line = fault_line(exc)
        if line is None:
            raise
        print("error: " + " ".join(line.split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
