"""The project file of a deployment (``formwork.yaml``) and where its parts live."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from formwork.metadata.loader import Located, load_file
from formwork.problems import Place, Problem, ProblemsFound, did_you_mean

PROJECT_FILE = "formwork.yaml"
PROJECT_KEYS = ("name", "label", "version", "metadata", "plugins", "database", "demo", "locales", "default_locale", "secret_key")

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True)
class Project:
    """A deployment folder: its layers of metadata, plugin folders and database."""

    root: Path
    name: str
    layers: tuple[Path, ...]
    plugin_dirs: tuple[Path, ...]
    demo_dirs: tuple[Path, ...]
    database_url: str
    instance_dir: Path
    version: str = "0"
    label: dict | None = None
    locales: tuple[str, ...] = ("en",)
    default_locale: str = "en"
    secret_key: str | None = None
    locales_declared: bool = False  # formwork.yaml lists `locales` (else labels may use any locale)

    def display(self, path: Path) -> str:
        """A file's name as errors show it: relative to the project root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with environment values."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match) -> str:
        value = env.get(match.group("name"))
        if value:
            return value
        return match.group("default") or ""

    return _ENV_REF.sub(replace, text)


def _string_list(data: Located, key: str, default: list[str], file: str, problems: list[Problem]) -> list[str]:
    value = data.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem("FW-E020", f"'{key}' must be a folder or a list of folders", data.value_place(key), key))
        return []
    return value


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding formwork.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def load_project(root: Path, environ: dict[str, str] | None = None) -> Project:
    """Read ``root/formwork.yaml``. Raises ProblemsFound with every mistake in it."""
    root = root.resolve()
    env = os.environ if environ is None else environ
    path = root / PROJECT_FILE
    if not path.is_file():
        raise ProblemsFound(
            [Problem("FW-E021", f"no {PROJECT_FILE} in {root}", Place(str(root)), hint="run inside a deployment folder, pass --project DIR, or create one with 'formwork init DIR'")]
        )
    source, problems = load_file(path, PROJECT_FILE)
    if problems:
        raise ProblemsFound(problems)
    data = source.data
    assert data is not None
    for key in data:
        if key not in PROJECT_KEYS:
            problems.append(Problem("FW-E101", f"unknown key '{key}'", data.place_of(key), key, did_you_mean(key, PROJECT_KEYS)))
    layer_names = _string_list(data, "metadata", ["metadata"], PROJECT_FILE, problems)
    plugin_names = _string_list(data, "plugins", ["plugins"], PROJECT_FILE, problems)
    demo_names = _string_list(data, "demo", [], PROJECT_FILE, problems)
    layers = []
    for index, name in enumerate(layer_names):
        folder = (root / name).resolve()
        if not folder.is_dir():
            place = data["metadata"].place_of(index) if isinstance(data.get("metadata"), list) else data.value_place("metadata")
            problems.append(Problem("FW-E022", f"metadata folder '{name}' does not exist", place, f"metadata[{index}]"))
        layers.append(folder)
    plugin_dirs = tuple((root / name).resolve() for name in plugin_names)
    demo_dirs = tuple((root / name).resolve() for name in demo_names)
    instance_dir = root / "instance"
    database = env.get("DATABASE_URL") or expand_env(str(data.get("database") or ""), env)
    if not database:
        database = f"sqlite:///{instance_dir / 'formwork.db'}"
    elif database.startswith("sqlite:///") and not database.startswith("sqlite:////"):
        relative = database[len("sqlite:///"):]
        if relative and relative != ":memory:":
            database = f"sqlite:///{(root / relative).resolve()}"
    locales = data.get("locales", ["en"])
    if not isinstance(locales, list) or not all(isinstance(x, str) for x in locales):
        problems.append(Problem("FW-E020", "'locales' must be a list of locale codes such as [en, zh]", data.value_place("locales"), "locales"))
        locales = ["en"]
    label = data.get("label")
    if isinstance(label, str):
        label = {"en": label}
    if problems:
        raise ProblemsFound(problems)
    return Project(
        root=root,
        name=str(data.get("name") or root.name),
        layers=tuple(layers),
        plugin_dirs=plugin_dirs,
        demo_dirs=demo_dirs,
        database_url=database,
        instance_dir=instance_dir,
        version=str(data.get("version", "0")),
        label=dict(label) if isinstance(label, dict) else None,
        locales=tuple(locales),
        locales_declared="locales" in data,
        default_locale=str(data.get("default_locale", locales[0] if locales else "en")),
        secret_key=env.get("FORMWORK_SECRET_KEY") or (str(data["secret_key"]) if data.get("secret_key") else None),
    )
