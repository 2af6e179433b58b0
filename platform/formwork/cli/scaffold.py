"""``formwork init DIR``: a new deployment folder that validates and serves at once."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

PROJECT_TEMPLATE = """\
# The project file of the {name} deployment. See docs/metadata-reference.md.
name: {name}
label: {{en: {title}}}
version: "0.1"
locales: [en, zh]
metadata: [metadata]      # layers: later folders override earlier ones
plugins: [plugins]
demo: [demo]
database: ${{DATABASE_URL:-sqlite:///instance/formwork.db}}
"""

ENTITY_TEMPLATE = """\
kind: entity
name: customer
label: {en: Customer, zh: 客户}
title_field: name
hooks: {before_save: customers.normalise_name}
fields:
  name:    {type: string, label: {en: Name, zh: 名称}, max_length: 120, required: true, unique: true}
  level:   {type: choice, label: {en: Level, zh: 等级}, options: [A, B, C], default: B}
  contact: {type: string, label: {en: Contact, zh: 联系人}, max_length: 60}
  email:   {type: email, label: {en: E-mail, zh: 邮箱}}
  credit_limit: {type: decimal, label: {en: Credit limit, zh: 信用额度}, digits: [14, 2], min: 0, default: 0}
  notes:   {type: text, label: {en: Notes, zh: 备注}}
"""

FORM_TEMPLATE = """\
kind: form
name: customer
entity: customer
label: {en: Customer, zh: 客户}
layout:
  - section: {en: Customer, zh: 客户信息}
    columns: 2
    fields: [name, level, contact, email, credit_limit]
  - section: {en: Notes, zh: 备注}
    fields: [notes]
list: {columns: [name, level, contact, credit_limit], search: [name, contact], sort: [name]}
"""

PLUGIN_TEMPLATE = '''\
"""Plugins of this deployment: code for what metadata cannot say.

Register a function under a name with @hook and refer to that name from metadata,
for example ``hooks: {before_save: customers.normalise_name}`` in an entity file.
"""

from formwork.plugins import hook


@hook("customers.normalise_name")
def normalise_name(record, ctx):
    """Trim spaces around a customer's name before it is saved."""
    if record.get("name"):
        record["name"] = record["name"].strip()
'''

DEMO_TEMPLATE = """\
entity: customer
records:
  - {name: Acme Trading, level: A, contact: Li Wei, email: li.wei@example.com, credit_limit: 50000}
  - {name: Blue River Foods, level: B, contact: Zhang Min, email: zhang.min@example.com}
"""

GITIGNORE_TEMPLATE = "instance/\n__pycache__/\n"


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Deployment name (default: the folder's name).")
def init_command(directory: Path, name: str | None) -> None:
    """Create a new deployment folder with a starter entity, form, plugin and demo data."""
    name = name or re.sub(r"[^a-z0-9_]+", "_", directory.resolve().name.lower()).strip("_") or "deployment"
    if (directory / "formwork.yaml").exists():
        click.echo(f"{directory / 'formwork.yaml'} already exists; nothing was changed.", err=True)
        sys.exit(1)
    files = {
        "formwork.yaml": PROJECT_TEMPLATE.format(name=name, title=name.replace("_", " ").title()),
        "metadata/customer/customer.yaml": ENTITY_TEMPLATE,
        "metadata/customer/customer_form.yaml": FORM_TEMPLATE,
        "plugins/customers.py": PLUGIN_TEMPLATE,
        "demo/01_customers.yaml": DEMO_TEMPLATE,
        ".gitignore": GITIGNORE_TEMPLATE,
    }
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    click.echo(f"Created deployment '{name}' in {directory}.")
    click.echo(f"Next: cd {directory} && formwork validate && formwork serve")
