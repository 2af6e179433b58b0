"""Metadata: read a deployment's files, merge layers, validate, and compile a frozen ``App``.

Public API::

    validate_project(project, registry=None) -> (App | None, [Problem])
    compile_project(project, registry=None) -> App      # raises ProblemsFound
    load_app(root) -> App                               # load_project + compile_project
"""

from formwork.metadata.compiler import compile_project, load_app, metadata_hash, validate_project
from formwork.metadata.project import Project, find_project_root, load_project

__all__ = [
    "Project",
    "compile_project",
    "find_project_root",
    "load_app",
    "load_project",
    "metadata_hash",
    "validate_project",
]
