"""The ``formwork`` command line: one click group, commands grouped by the stage they drive.

``python cli.py ...`` in a checkout and the installed ``formwork`` script are the same CLI.
Mistakes a user can make are printed as located problems with a non-zero exit code;
a traceback means a bug in Formwork.
"""

from __future__ import annotations

import click

from formwork import __version__
from formwork.cli.access import access_group, departments_group, tokens_group, users_group
from formwork.cli.database import migrate_command, plan_command, seed_command
from formwork.cli.metadata import validate_command
from formwork.cli.scaffold import init_command
from formwork.cli.serve import serve_command
from formwork.cli.transfer import export_command, import_command
from formwork.cli.workflow import tasks_command, worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="formwork")
def cli() -> None:
    """Formwork: run a deployment described by metadata files."""


for command in (validate_command, plan_command, migrate_command, seed_command, serve_command, init_command, import_command, export_command,
                users_group, departments_group, tokens_group, access_group, worker_command, tasks_command):
    cli.add_command(command)


def main() -> None:
    """Entry point of the console script and of cli.py."""
    cli(prog_name="formwork")
