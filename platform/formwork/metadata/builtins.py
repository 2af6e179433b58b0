"""The objects every app has before any file is read: the ``user`` and ``department`` entities
and the ``admin`` role.

They are written here as metadata (the same shape a file would have) and form
layer zero of every project, so an entity file named ``user`` or
``department`` merges fields into them exactly like an overlay does.
"""

from __future__ import annotations

from typing import Any

from formwork.metadata.loader import Located, LocatedList
from formwork.metadata.model import ADMIN_ROLE
from formwork.problems import Place

BUILTIN_PLACE = Place("<built-in>")
BUILTIN_TABLES = {"user": "fw_user", "department": "fw_department"}

_DEFINITIONS: tuple[dict[str, Any], ...] = (
    {
        "kind": "entity",
        "name": "user",
        "label": {"en": "User", "zh": "用户"},
        "title_field": "full_name",
        "fields": {
            "username": {"type": "string", "label": {"en": "Username", "zh": "用户名"}, "max_length": 150, "required": True, "unique": True},
            "full_name": {"type": "string", "label": {"en": "Full name", "zh": "姓名"}, "max_length": 200},
            "email": {"type": "email", "label": {"en": "Email", "zh": "电子邮件"}},
            "department": {"type": "link", "to": "department", "label": {"en": "Department", "zh": "部门"}},
            "manager": {"type": "link", "to": "user", "label": {"en": "Manager", "zh": "上级"}},
            "active": {"type": "boolean", "label": {"en": "Active", "zh": "启用"}, "default": True},
        },
    },
    {
        "kind": "entity",
        "name": "department",
        "label": {"en": "Department", "zh": "部门"},
        "title_field": "name",
        "fields": {
            "name": {"type": "string", "label": {"en": "Name", "zh": "名称"}, "max_length": 200, "required": True},
            "code": {"type": "string", "label": {"en": "Code", "zh": "编码"}, "max_length": 50, "unique": True},
            "parent": {"type": "link", "to": "department", "label": {"en": "Parent department", "zh": "上级部门"}},
            "manager": {"type": "link", "to": "user", "label": {"en": "Manager", "zh": "负责人"}},
        },
    },
    {
        "kind": "role",
        "name": ADMIN_ROLE,
        "label": {"en": "Administrator", "zh": "管理员"},
    },
)


def _locate(value: Any) -> Any:
    if isinstance(value, dict):
        located = Located(place=BUILTIN_PLACE)
        for key, item in value.items():
            located[key] = _locate(item)
        return located
    if isinstance(value, list):
        items = LocatedList(place=BUILTIN_PLACE)
        items.extend(_locate(item) for item in value)
        items.item_places = [BUILTIN_PLACE] * len(items)
        return items
    return value


def builtin_objects() -> list[Located]:
    """Fresh copies of the built-in objects, as located metadata (callers may mutate them)."""
    return [_locate(definition) for definition in _DEFINITIONS]


def builtin_fields() -> dict[str, dict[str, str]]:
    """Entity name -> {field name: type} of the built-in fields an app may not remove or retype."""
    return {
        d["name"]: {name: spec["type"] for name, spec in d["fields"].items()}
        for d in _DEFINITIONS
        if d["kind"] == "entity"
    }
