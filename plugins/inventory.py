"""Inventory hooks of the example deployment: shipping a sales order.

Hooks are called as ``fn(record: dict, ctx)``; ``ctx`` has ``.user``, ``.app``,
``.channel`` and ``.old`` (the stored record before this write, or None). A
transition hook runs before the state changes and may fill fields of ``record``;
raising ``PluginError(message, field)`` refuses the transition and nothing is
written. The full convention is in ``purchasing.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formwork.plugins import PluginError, hook


@hook("inventory.ship_order")
def ship_order(record: dict, ctx: Any) -> None:
    """Check that a confirmed sales order can leave the warehouse, and stamp the ship date.

    An order ships only with at least one line, positive quantities, a shipping
    address and a waybill number; the warehouse then books the matching stock
    movements (出库单) with the order number as reference.
    """
    lines = record.get("lines") or []
    if not lines:
        raise PluginError("An order without lines cannot be shipped / 订单没有明细，不能发货", field="lines")
    for number, line in enumerate(lines, start=1):
        quantity = line.get("quantity")
        if quantity is None or Decimal(str(quantity)) <= 0:
            raise PluginError(
                f"Line {number} has no quantity to ship / 第{number}行发货数量无效", field="lines"
            )
    if not (record.get("shipping_address") or "").strip():
        raise PluginError(
            "Enter the shipping address before shipping / 请先填写收货地址", field="shipping_address"
        )
    if not (record.get("tracking_no") or "").strip():
        raise PluginError("Enter the waybill number of the carrier / 请填写物流单号", field="tracking_no")
    record["shipped_on"] = dt.date.today()
