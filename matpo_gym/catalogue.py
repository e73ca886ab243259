"""Name resolution for the user-editable catalogue (``envs/``, ``policies/``, ``trainers/``).

A name resolves, in order, as: an explicit file path; ``./<kind>/<name>.toml`` in the current
directory; the built-in catalogue shipped inside the package. So a checkout can add or override
entries, and an installed wheel still knows the built-in ones.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

Kind = Literal["envs", "policies", "trainers"]
SINGULAR = {"envs": "env", "policies": "policy", "trainers": "trainer"}


class CatalogueError(LookupError):
    """An unknown catalogue name."""


def builtin_dir(kind: Kind) -> Path:
    """The catalogue folder shipped with the package."""
    return Path(str(resources.files("matpo_gym") / "catalogue" / kind))


def search_dirs(kind: Kind) -> list[Path]:
    """Folders searched for names, highest priority first."""
    local = Path.cwd() / kind
    dirs = [local] if local.is_dir() else []
    builtin = builtin_dir(kind)
    if builtin.is_dir() and all(builtin.resolve() != d.resolve() for d in dirs):
        dirs.append(builtin)
    return dirs


def available(kind: Kind) -> list[str]:
    """Every name that resolves, sorted."""
    names = {p.stem for d in search_dirs(kind) for p in d.glob("*.toml")}
    return sorted(names)


def resolve(kind: Kind, name: str) -> Path:
    """The file that ``name`` refers to, or a :class:`CatalogueError` listing the valid names."""
    as_path = Path(name)
    if as_path.suffix == ".toml":  # a path, never a name
        if as_path.is_file():
            return as_path
        shipped = builtin_dir(kind) / as_path.name
        if not as_path.is_absolute() and as_path.parent == Path(kind) and shipped.is_file():
            return shipped  # `trainers/NAME.toml`, as the docs write it, outside a checkout
        where = "" if as_path.is_absolute() else f" (relative to {Path.cwd()})"
        raise CatalogueError(f"No such {SINGULAR[kind]} file: {as_path}{where}. "
                             f"Catalogue names: {', '.join(available(kind)) or 'none'}.")
    for folder in search_dirs(kind):
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise CatalogueError(
        f"Unknown {SINGULAR[kind]} {name!r}. Available: {', '.join(available(kind)) or 'none'}. "
        f"Pass a path to a .toml file, or add {kind}/{name}.toml."
    )
