"""Inventory hooks of the example deployment: stock on hand follows the stock movements,
and shipping a sales order issues its goods.

Hooks are called as ``fn(record: dict, ctx)``; ``ctx`` has ``.user`` (the acting
user), ``.app``, ``.channel``, ``.old`` (the stored record before this write, or None)
and ``.service`` (the record service: writes through it join the same transaction).
Raising ``PluginError(message, field)`` refuses the write and nothing is kept, including
what the hook wrote through ``ctx.service``. The full convention is in ``purchasing.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formwork.plugins import PluginError, hook

# Writes a hook makes on the user's behalf: read-only fields such as on_hand accept them.
CHANNEL = "plugin"


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _signed(movement: dict | None) -> Decimal:
    """The movement's change to stock on hand: positive in, negative out."""
    if not movement:
        return Decimal(0)
    quantity = _decimal(movement.get("quantity"))
    return quantity if movement.get("direction") == "in" else -quantity


def _change_on_hand(ctx: Any, product_id: int | None, change: Decimal) -> None:
    """Add ``change`` to the product's stock on hand; refuse when it would drop below zero."""
    if product_id is None or change == 0:
        return
    product = ctx.service.get("product", product_id, ctx.user)
    on_hand = _decimal(product.get("on_hand"))
    if on_hand + change < 0:
        raise PluginError(
            f"Only {on_hand:,.2f} of {product['sku']} on hand: {-change:,.2f} cannot be issued / 库存不足",
            field="quantity",
        )
    ctx.service.update(
        "product", product_id, {"on_hand": on_hand + change}, ctx.user, CHANNEL, version=product["version"]
    )


@hook("inventory.apply_movement")
def apply_movement(record: dict, ctx: Any) -> None:
    """After a stock movement is saved, move the product's stock on hand by the difference."""
    old = ctx.old
    if old and old.get("product") != record.get("product"):
        _change_on_hand(ctx, old.get("product"), -_signed(old))
        _change_on_hand(ctx, record.get("product"), _signed(record))
    else:
        _change_on_hand(ctx, record.get("product"), _signed(record) - _signed(old))


@hook("inventory.reverse_movement")
def reverse_movement(record: dict, ctx: Any) -> None:
    """After a stock movement is deleted, take its effect off the product's stock on hand."""
    _change_on_hand(ctx, record.get("product"), -_signed(record))


@hook("inventory.ship_order")
def ship_order(record: dict, ctx: Any) -> None:
    """Ship a confirmed sales order: check it, book one outgoing stock movement (出库单) per
    line with the order number as reference, and stamp the ship date.

    An order ships only with lines of positive quantity, a shipping address and a waybill
    number; a line with more than the stock on hand refuses the whole shipment.
    """
    lines = record.get("lines") or []
    if not lines:
        raise PluginError("An order without lines cannot be shipped / 订单没有明细，不能发货", field="lines")
    for number, line in enumerate(lines, start=1):
        if _decimal(line.get("quantity")) <= 0:
            raise PluginError(
                f"Line {number} has no quantity to ship / 第{number}行发货数量无效", field="lines"
            )
    if not (record.get("shipping_address") or "").strip():
        raise PluginError(
            "Enter the shipping address before shipping / 请先填写收货地址", field="shipping_address"
        )
    if not (record.get("tracking_no") or "").strip():
        raise PluginError("Enter the waybill number of the carrier / 请填写物流单号", field="tracking_no")
    today = dt.date.today()
    for line in lines:
        ctx.service.create(
            "stock_movement",
            {
                "moved_on": today,
                "product": line["product"],
                "warehouse": record.get("warehouse") or "suzhou_main",
                "direction": "out",
                "quantity": line["quantity"],
                "reason": "sale",
                "reference": record.get("code"),
            },
            ctx.user,
            CHANNEL,
        )
    record["shipped_on"] = today
