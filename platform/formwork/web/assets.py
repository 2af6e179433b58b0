"""Where the screens' templates and static assets live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

import formwork


def ui_root() -> Path:
    """The ``ui`` folder holding ``templates/`` and ``static/``.

    A wheel carries it inside the package (``formwork/ui``); a checkout keeps it at the
    repository root, two levels above ``platform/formwork``.
    """
    package = Path(formwork.__file__).resolve().parent
    installed = package / "ui"
    if installed.is_dir():
        return installed
    return package.parent.parent / "ui"
