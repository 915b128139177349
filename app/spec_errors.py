"""Turn pydantic validation errors into one readable line per problem.

Each line names the field by its dotted path in the spec (``students[2].technique``) and,
for a misspelt key, lists the keys that are allowed at that place.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError


def field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``loc`` (None if unknown)."""
    current = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if current else None
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current


def _inner_model(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def describe(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = field_path(loc)
        where = f"{prefix}{path}" if path else prefix.rstrip(".") or "spec"
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            allowed = ", ".join(owner.model_fields) if owner else "?"
            lines.append(f"{where}: unknown field; allowed here: {allowed}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg} (got {err.get('input')!r})" if "input" in err and not
                         isinstance(err.get("input"), dict) else f"{where}: {msg}")
    return lines
