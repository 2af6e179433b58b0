"""The built wheel carries the ui assets and JSON Schemas and works outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_contains_ui_and_schemas_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next(tmp_path.glob("formwork-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("formwork/ui/templates/") for n in names), names
    assert any(n.startswith("formwork/metadata/schemas/") and n.endswith(".json") for n in names)
    assert not any(n.startswith("platform/") for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = (
        "import formwork, pathlib, platform\n"
        "from formwork.web.assets import ui_root\n"
        "root = ui_root()\n"
        "assert pathlib.Path(formwork.__file__).parent in root.parents, root\n"
        "assert (root / 'templates').is_dir()\n"
        "from formwork.metadata.schema import kind_schema\n"
        "assert kind_schema('entity')['type'] == 'object'\n"
        "print(platform.python_implementation())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=outside, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_platform_folder_is_not_a_package() -> None:
    assert not (REPO / "platform" / "__init__.py").exists()
