"""Purchasing hooks of the example deployment: budget limits, decision dates, vendor data.

How Formwork calls a hook (the same for every module in this folder):

- Entity hooks (``hooks:`` of an entity: before_validate, before_save, after_save,
  before_delete, after_delete) and workflow transition hooks are called as
  ``fn(record: dict, ctx)``. ``record`` holds the record's field values by name (a
  table field holds a list of row dicts; a link holds the target's id). ``ctx`` has
  ``.user`` (the acting ``Actor``: user_id, username, roles, department_id), ``.app``
  (the compiled ``App``), ``.channel`` (where the write came from: "api", "screen",
  "import", "workflow", "plugin", "seed", "cli"), ``.old`` (the record as stored before
  this write, or None when it is created) and ``.service`` (the ``RecordService``:
  records written through it join the same transaction). Hooks that run before the
  write may change ``record`` in place; the changes are saved.
- Compute hooks (``compute_hook:`` of a field) are called the same way and return
  the field's value.
- Validators (``validators:`` of a field) are called the same way and return None
  when the value is fine.
- Actions (``actions:`` of an entity) are called the same way and return a dict
  with at least ``message`` for the user.

Any hook refuses the operation by raising ``PluginError(message, field)``: the user
sees the message next to the field, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formwork.plugins import PluginError, hook

# Per-request budget limits by purchase category (CNY). Goods for resale have none:
# their volume is governed by the CEO step of the approval instead.
CATEGORY_LIMITS = {
    "office": Decimal("20000"),
    "it": Decimal("150000"),
    "services": Decimal("80000"),
}
CATEGORY_NAMES = {
    "office": "office supplies 办公用品",
    "it": "IT equipment IT设备",
    "services": "services 服务采购",
}

DECIDED = ("approved", "rejected")

# Weights of the 17 leading characters of a unified social credit code (GB 32100-2015).
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _decimal(value: Any) -> Decimal:
    """A field value (Decimal, int, float, numeric string or None) as a Decimal."""
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _request_total(record: dict) -> Decimal:
    """The stored total, or the sum of the lines when the total is not computed yet."""
    if record.get("total") is not None:
        return _decimal(record["total"])
    return sum(
        (
            _decimal(line.get("quantity")) * _decimal(line.get("unit_price"))
            for line in record.get("lines") or []
        ),
        Decimal(0),
    )


@hook("purchasing.check_budget")
def check_budget(record: dict, ctx: Any) -> None:
    """Refuse a purchase request whose total exceeds its category's per-request limit."""
    limit = CATEGORY_LIMITS.get(record.get("category") or "")
    if limit is None:
        return
    total = _request_total(record)
    if total > limit:
        name = CATEGORY_NAMES[record["category"]]
        raise PluginError(
            f"A request for {name} may not exceed {limit:,.0f} CNY (this one is {total:,.2f}); "
            f"split it or ask finance for a budget exception / 超出单笔预算上限",
            field="total",
        )


@hook("purchasing.stamp_decision")
def stamp_decision(record: dict, ctx: Any) -> None:
    """Fill ``decided_on`` when the approval approves or rejects; clear it when resubmitted.

    A record created already decided (imported or demo data) keeps the date it brings.
    """
    status = record.get("status")
    if status not in DECIDED:
        if status is not None:
            record["decided_on"] = None
        return
    old = ctx.old if ctx is not None else None
    if old is None:
        if record.get("decided_on") is None:
            record["decided_on"] = dt.date.today()
    elif old.get("status") != status:
        record["decided_on"] = dt.date.today()


@hook("purchasing.check_credit_code")
def check_credit_code(record: dict, ctx: Any) -> None:
    """Check a vendor's unified social credit code (统一社会信用代码) and its check character."""
    code = (record.get("tax_id") or "").strip().upper()
    if not code:
        return
    if len(code) != 18 or any(ch not in CREDIT_CODE_ALPHABET for ch in code):
        raise PluginError(
            "A unified social credit code has 18 characters: digits and capital letters except I, O, S, V, Z / 统一社会信用代码应为18位",
            field="tax_id",
        )
    weighted = sum(
        CREDIT_CODE_ALPHABET.index(ch) * weight
        for ch, weight in zip(code[:17], CREDIT_CODE_WEIGHTS, strict=True)
    )
    expected = CREDIT_CODE_ALPHABET[(31 - weighted % 31) % 31]
    if code[17] != expected:
        raise PluginError(
            f"The check character of this credit code should be {expected}; please compare it with the business licence / 校验位不正确",
            field="tax_id",
        )


@hook("purchasing.order_text")
def order_text(record: dict, ctx: Any) -> dict:
    """The purchase order as plain text a buyer pastes into an e-mail or WeChat to the vendor."""
    lines = record.get("lines") or []
    if not lines:
        raise PluginError("The order has no lines yet / 订单没有明细", field="lines")
    vendor = ctx.service.get("vendor", record["vendor"], ctx.user) if record.get("vendor") else {}
    rows = [
        f"{vendor.get('name') or ''}:",
        f"Purchase order {record.get('code') or ''} ({record.get('order_date') or ''})",
    ]
    for number, line in enumerate(lines, start=1):
        product = ctx.service.get("product", line["product"], ctx.user)
        quantity = _decimal(line.get("quantity"))
        price = _decimal(line.get("unit_price"))
        rows.append(
            f"{number}. {product['sku']} {product['name']}: {quantity:,.2f} {product['unit']} x {price:,.2f}"
        )
    rows.append(f"Total incl. VAT: {_decimal(record.get('total')):,.2f} CNY")
    if record.get("expected_on"):
        rows.append(f"Please deliver by {record['expected_on']}.")
    return {"message": f"Order text ready ({len(lines)} lines)", "text": "\n".join(rows)}
