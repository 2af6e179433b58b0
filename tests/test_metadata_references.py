"""Semantic mistakes: every reference must resolve, names must be usable, flows must be sound.

Each case adds or replaces files in a small valid sales project and shows the
exact lines ``formwork validate`` prints, hints included; nothing compiles.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from metadata_project import problem_lines, validate, write_project

BASE = {
    "metadata/sales/sales_order.yaml": """
        kind: entity
        name: sales_order
        title_field: title
        fields:
          title: {type: string, max_length: 80, required: true}
          amount: {type: decimal, digits: [12, 2], min: 0}
          customer: {type: link, to: customer}
          owner: {type: link, to: user, default: $user}
          region: {type: link, to: department}
          lines: {type: table, entity: sales_order_line}
          note: text
          due: date
        hooks: {before_save: shop.check_credit}
        actions:
          ship: {hook: shop.ship}
    """,
    "metadata/sales/sales_order_line.yaml": """
        kind: entity
        name: sales_order_line
        fields:
          product: {type: string, required: true}
          quantity: {type: integer, min: 1}
          price: {type: decimal, digits: [12, 2]}
    """,
    "metadata/sales/customer.yaml": """
        kind: entity
        name: customer
        title_field: name
        fields:
          name: {type: string, required: true}
    """,
    "metadata/roles/sales.yaml": """
        kind: role
        name: sales
        grants:
          sales_order: {actions: [create, read, update, ship], rows: own}
          customer: {actions: [read]}
    """,
    "metadata/roles/manager.yaml": """
        kind: role
        name: manager
        inherits: [sales]
    """,
}
PLUGINS = {
    "shop.py": """
        from formwork.plugins import hook

        @hook("shop.check_credit")
        def check_credit(record, ctx):
            return None

        @hook("shop.ship")
        def ship(record, ctx):
            return None
    """,
}


def test_the_base_project_is_valid(tmp_path: Path) -> None:
    write_project(tmp_path, BASE, plugins=PLUGINS)
    app, problems = validate(tmp_path)
    assert problems == []
    assert app is not None and "sales_order" in app.entities


CASES = [
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  client: {type: link, to: custome}
            """,
        },
        [
            "metadata/x.yaml:4: fields.client.to: [FW-E210] entity 'custome' does not exist — did you mean 'customer'?",
        ],
        id="link_to_unknown_entity",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  lines: {type: table, entity: invoice_line}
            """,
        },
        [
            "metadata/x.yaml:4: fields.lines.entity: [FW-E210] entity 'invoice_line' does not exist — did you mean 'invoice'?",
        ],
        id="table_of_unknown_entity",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  lines: {type: table, entity: sales_order_line}
            """,
        },
        [
            "metadata/sales/sales_order.yaml:10: fields.lines.entity: [FW-E216] entity 'sales_order_line' already holds the rows of invoice.lines; a row entity serves one table field — declare a separate row entity, e.g. 'sales_order_lines'",
        ],
        id="child_entity_in_two_tables",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                title_field: number
                fields:
                  code: string
                indexes: [[code, dated]]
                unique: [[cod]]
            """,
        },
        [
            "metadata/x.yaml:3: title_field: [FW-E211] 'number' is not a field of entity 'invoice' — fields of invoice: code",
            "metadata/x.yaml:6: indexes[0][1]: [FW-E211] 'dated' is not a field of entity 'invoice' — did you mean 'updated_by'?",
            "metadata/x.yaml:7: unique[0][0]: [FW-E211] 'cod' is not a field of entity 'invoice' — did you mean 'code'?",
        ],
        id="unknown_title_field_and_index_fields",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  code: integer
                number: {field: code, pattern: "INV-{YYYY}-{NNN}"}
            """,
        },
        [
            "metadata/x.yaml:5: number.field: [FW-E220] number field 'code' is an integer field; a document number needs a string field",
            "metadata/x.yaml:5: number.pattern: [FW-E226] number pattern 'INV-{YYYY}-{NNN}' has an unknown token {NNN} — tokens: {YYYY} {YY} {MM} {DD} and {#####} for the zero-padded sequence",
        ],
        id="number_field_not_string_and_bad_token",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: form
                name: invoice
                entity: invoice
            """,
        },
        [
            "metadata/x.yaml:3: entity: [FW-E210] entity 'invoice' does not exist",
        ],
        id="form_of_unknown_entity",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: form
                name: sales_order
                layout:
                  - section: Main
                    fields: [title, amout]
                list:
                  columns: [title, customer.nam]
                  filters: [status]
                  search: [titel]
                  sort: [-created]
            """,
        },
        [
            "metadata/x.yaml:5: layout[0].fields[1]: [FW-E211] 'amout' is not a field of entity 'sales_order' — did you mean 'amount'?",
            "metadata/x.yaml:7: list.columns[1]: [FW-E211] 'nam' is not a field of entity 'customer' — did you mean 'name'?",
            "metadata/x.yaml:8: list.filters[0]: [FW-E211] 'status' is not a field of entity 'sales_order' — fields of sales_order: title, amount, customer, owner, region, lines, note, due",
            "metadata/x.yaml:9: list.search[0]: [FW-E211] 'titel' is not a field of entity 'sales_order' — did you mean 'title'?",
            "metadata/x.yaml:10: list.sort[0]: [FW-E211] 'created' is not a field of entity 'sales_order' — did you mean 'created_by'?",
        ],
        id="form_unknown_fields",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_ordr
                states: [draft, confirmed, closed]
                initial: draf
                transitions:
                  - {name: confirm, from: draft, to: confirmd, roles: [sale]}
                  - {name: close, from: [confirmed, shipped], to: closed}
            """,
        },
        [
            "metadata/x.yaml:3: entity: [FW-E210] entity 'sales_ordr' does not exist — did you mean 'sales_order'?",
            "metadata/x.yaml:5: initial: [FW-E212] state 'draf' is not one of the states: draft, confirmed, closed — did you mean 'draft'?",
            "metadata/x.yaml:7: transitions[0].to: [FW-E212] state 'confirmd' is not one of the states: draft, confirmed, closed — did you mean 'confirmed'?",
            "metadata/x.yaml:7: transitions[0].roles[0]: [FW-E213] role 'sale' does not exist — did you mean 'sales'?",
            "metadata/x.yaml:8: transitions[1].from[1]: [FW-E212] state 'shipped' is not one of the states: draft, confirmed, closed",
        ],
        id="workflow_unknown_entity_states_roles",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: approval
                name: order_approval
                entity: sales_ordr
                steps:
                  - {name: boss, approvers: {role: manager}}
            """,
        },
        [
            "metadata/x.yaml:3: entity: [FW-E210] entity 'sales_ordr' does not exist — did you mean 'sales_order'?",
        ],
        id="approval_unknown_entity",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: approval
                name: order_approval
                entity: sales_order
                steps:
                  - name: first
                    approvers: [{role: managr}, {field: customer}, {manager_of: ownr}, {department_head: title}]
                  - name: second
                    approvers: {manager_chain: {until_role: boss}, of: owner}
                escalate: {after: 72h, to: {manager_of: approver}}
            """,
        },
        [
            "metadata/x.yaml:6: steps[0].approvers[0].role: [FW-E213] role 'managr' does not exist — did you mean 'manager'?",
            "metadata/x.yaml:6: steps[0].approvers[1].field: [FW-E220] 'customer' is a link to customer; it must link to user",
            "metadata/x.yaml:6: steps[0].approvers[2].manager_of: [FW-E211] 'ownr' is not a field of entity 'sales_order' — did you mean 'owner'?",
            "metadata/x.yaml:6: steps[0].approvers[3].department_head: [FW-E220] department_head field 'title' is a string field; it must link to department",
            "metadata/x.yaml:8: steps[1].approvers[0].manager_chain.until_role: [FW-E213] role 'boss' does not exist — known roles: admin, manager, sales",
        ],
        id="approver_references",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  total: {type: decimal, compute_hook: shop.total}
                  code: {type: string, validators: [shop.check_credi]}
                hooks: {after_save: shop.notify}
                actions:
                  send: {hook: shop.shipp}
            """,
        },
        [
            "metadata/x.yaml:4: fields.total.compute_hook: [FW-E214] plugin hook 'shop.total' is not registered — register it with @hook('shop.total') in a module of the project's plugin folders",
            "metadata/x.yaml:5: fields.code.validators[0]: [FW-E214] plugin hook 'shop.check_credi' is not registered — did you mean 'shop.check_credit'?",
            "metadata/x.yaml:6: hooks.after_save: [FW-E214] plugin hook 'shop.notify' is not registered — did you mean 'shop.ship'?",
            "metadata/x.yaml:8: actions.send.hook: [FW-E214] plugin hook 'shop.shipp' is not registered — did you mean 'shop.ship'?",
        ],
        id="unknown_plugin_hooks",
    ),
    pytest.param(
        {
            "metadata/roles/sales.yaml": """
                kind: role
                name: sales
                grants:
                  sales_order: {actions: [read, shipp], hidden: [amont], read_only: [titl]}
                  invoice: {actions: [read]}
            """,
        },
        [
            "metadata/roles/sales.yaml:4: grants.sales_order.actions[1]: [FW-E215] action 'shipp' does not exist on sales_order — did you mean 'ship'?",
            "metadata/roles/sales.yaml:4: grants.sales_order.hidden[0]: [FW-E211] 'amont' is not a field of entity 'sales_order' — did you mean 'amount'?",
            "metadata/roles/sales.yaml:4: grants.sales_order.read_only[0]: [FW-E211] 'titl' is not a field of entity 'sales_order' — did you mean 'title'?",
            "metadata/roles/sales.yaml:5: grants.invoice: [FW-E210] entity 'invoice' does not exist — known entities: customer, department, sales_order, sales_order_line, user",
        ],
        id="role_grant_references",
    ),
    pytest.param(
        {
            "metadata/roles/manager.yaml": """
                kind: role
                name: manager
                inherits: [sale]
            """,
        },
        [
            "metadata/roles/manager.yaml:3: inherits[0]: [FW-E213] role 'sale' does not exist — did you mean 'sales'?",
        ],
        id="role_inherits_unknown",
    ),
    pytest.param(
        {
            "metadata/roles/sales.yaml": """
                kind: role
                name: sales
                inherits: [manager]
            """,
        },
        [
            "metadata/roles/manager.yaml:3: inherits: [FW-E217] roles inherit from each other in a cycle: manager -> sales -> manager — remove one of the 'inherits' entries",
        ],
        id="role_cycle",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: report
                name: sales_by_region
                source: sales_order
                group_by: [region.nam, customer.name]
                measures: {total: sum(amount)}
                sort: [-totl]
                chart: {type: bar, x: region, y: [total, count]}
                roles: [sales, finance]
            """,
        },
        [
            "metadata/x.yaml:4: group_by[0]: [FW-E211] 'nam' is not a field of entity 'department' — did you mean 'name'?",
            "metadata/x.yaml:6: sort[0]: [FW-E228] sort key 'totl' is not a group key, measure or column of this report — did you mean 'total'?",
            "metadata/x.yaml:7: chart.x: [FW-E228] chart x 'region' is not a group key or column of this report — did you mean 'region.nam'?",
            "metadata/x.yaml:7: chart.y[1]: [FW-E228] chart y 'count' is not a measure of this report — measures: total",
            "metadata/x.yaml:8: roles[1]: [FW-E213] role 'finance' does not exist — known roles: admin, manager, sales",
        ],
        id="report_references",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: report
                name: sales_list
                source: sales
                columns: [title]
            """,
        },
        [
            "metadata/x.yaml:3: source: [FW-E210] source entity 'sales' does not exist — did you mean 'sales_order'?",
        ],
        id="report_unknown_source",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: report
                name: sales_by_customer
                source: sales_order
                group_by: [customer.name]
                measures: {total: sum(title), orders: count(), amount: sum(amount)}
            """,
        },
        [
            "metadata/x.yaml:5: measures.total: [FW-E408] sum() cannot take text; measures need numeric fields"
            ' (column 5 of "sum(title)") — sum(number per row) -> number',
        ],
        id="measure_on_non_numeric_field",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, confirmed, archived]
                transitions:
                  - {name: confirm, from: draft, to: confirmed}
            """,
        },
        [
            "metadata/x.yaml:4: states[2].name: [FW-E218] state 'archived' cannot be reached from the initial state 'draft' — add a transition into it, or remove it",
        ],
        id="unreachable_state",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, {name: on_hold}, {name: done, final: true}]
                transitions:
                  - {name: hold, from: draft, to: on_hold}
                  - {name: finish, from: draft, to: done}
            """,
        },
        [
            "metadata/x.yaml:4: states[1].name: [FW-E219] state 'on_hold' is a dead end: no transition leaves it and it is not final — add a transition out of it, or mark it 'final: true'",
        ],
        id="dead_end",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, checking, fixing, done]
                transitions:
                  - {name: check, from: draft, to: checking}
                  - {name: fix, from: checking, to: fixing}
                  - {name: recheck, from: fixing, to: checking}
                  - {name: skip, from: draft, to: done}
            """,
        },
        [
            "metadata/x.yaml:4: states[1].name: [FW-E219] state 'checking' is a dead end: no final state can be reached from it — final states: done",
            "metadata/x.yaml:4: states[2].name: [FW-E219] state 'fixing' is a dead end: no final state can be reached from it — final states: done",
        ],
        id="endless_loop",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: order
                fields:
                  created_at: datetime
                  select: string
                  fw_secret: string
                  parent_id: integer
            """,
        },
        [
            "metadata/x.yaml:2: name: [FW-E202] entity name 'order' is reserved: it is a reserved word in SQL or in expressions — choose another name",
            "metadata/x.yaml:4: fields.created_at: [FW-E202] field name 'created_at' is reserved: Formwork adds this column itself — choose another name",
            "metadata/x.yaml:5: fields.select: [FW-E202] field name 'select' is reserved: it is a reserved word in SQL or in expressions — choose another name",
            "metadata/x.yaml:6: fields.fw_secret: [FW-E202] field name 'fw_secret' is reserved: names starting with fw_ belong to Formwork — drop the fw_ prefix",
            "metadata/x.yaml:7: fields.parent_id: [FW-E202] field name 'parent_id' is reserved: Formwork adds this column itself — choose another name",
        ],
        id="reserved_names",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: tasks
                fields: {title: string}
            """,
            "metadata/y.yaml": """
                kind: entity
                name: notifications
                fields: {title: string}
            """,
        },
        [
            "metadata/x.yaml:2: name: [FW-E202] entity name 'tasks' is reserved: /api/v1/tasks is a path of the REST API (workflow inbox, notifications, statistics, the caller's account) — choose another name, for example 'project_tasks'",
            "metadata/y.yaml:2: name: [FW-E202] entity name 'notifications' is reserved: /api/v1/notifications is a path of the REST API (workflow inbox, notifications, statistics, the caller's account) — choose another name, for example 'project_notifications'",
        ],
        id="entity_names_of_api_paths",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: ticket
                fields:
                  status: string
            """,
            "metadata/y.yaml": """
                kind: workflow
                name: ticket_flow
                entity: ticket
                states: [open, closed]
                transitions: [{name: close, from: open, to: closed}]
            """,
        },
        [
            "metadata/x.yaml:4: fields.status: [FW-E202] field name 'status' is reserved: a workflow or approval gives this entity its status — remove the field or rename it",
        ],
        id="status_reserved_with_a_flow",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: SalesInvoice
                fields:
                  Total Amount: decimal
                  "2nd": string
                  a_very_long_field_name_that_goes_on_and_on_beyond_fifty: string
            """,
        },
        [
            "metadata/x.yaml:2: name: [FW-E201] entity name 'SalesInvoice' is not snake_case (lower-case letters, digits and _, starting with a letter, at most 50 characters) — for example 'sales_invoice'",
            "metadata/x.yaml:4: fields.Total Amount: [FW-E201] field name 'Total Amount' is not snake_case (lower-case letters, digits and _, starting with a letter, at most 50 characters) — for example 'total_amount'",
            "metadata/x.yaml:5: fields.2nd: [FW-E201] field name '2nd' is not snake_case (lower-case letters, digits and _, starting with a letter, at most 50 characters)",
            "metadata/x.yaml:6: fields.a_very_long_field_name_that_goes_on_and_on_beyond_fifty: [FW-E201] field name 'a_very_long_field_name_that_goes_on_and_on_beyond_fifty' is not snake_case (lower-case letters, digits and _, starting with a letter, at most 50 characters) — for example 'a_very_long_field_name_that_goes_on_and_on_beyond'",
        ],
        id="bad_names",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  amount: {type: decimal, digits: [40, 2]}
                  rate: {type: decimal, digits: [5, 6]}
                  qty: {type: integer, min: 10, max: 1, max_length: 5}
                  kind: {type: choice}
                  size: {type: choice, options: [s, m, l], default: xl}
                  paid: {type: boolean, default: "yes"}
                  due: {type: date, default: tomorrow}
                  client: {type: string, to: customer}
            """,
        },
        [
            'metadata/x.yaml:4: fields.amount.digits: [FW-E222] digits [40, 2] are not sane: precision must be 1..38 and scale 0..precision — e.g. digits: [12, 2] for amounts up to 9,999,999,999.99',
            'metadata/x.yaml:5: fields.rate.digits: [FW-E222] digits [5, 6] are not sane: precision must be 1..38 and scale 0..precision — e.g. digits: [12, 2] for amounts up to 9,999,999,999.99',
            'metadata/x.yaml:6: fields.qty.min: [FW-E223] min 10 is greater than max 1 — swap them',
            "metadata/x.yaml:6: fields.qty.max_length: [FW-E230] 'max_length' does not apply to an integer field — only for: string, text, email",
            "metadata/x.yaml:7: fields.kind: [FW-E221] a choice field needs 'options' — e.g. options: [low, medium, high]",
            "metadata/x.yaml:8: fields.size.default: [FW-E221] default 'xl' is not one of the options: s, m, l — did you mean 'l'?",
            "metadata/x.yaml:9: fields.paid.default: [FW-E225] default 'yes' does not fit a boolean field — an expression default starts with '=' (e.g. '=today()') or '$' (e.g. '$user.department')",
            "metadata/x.yaml:10: fields.due.default: [FW-E225] default 'tomorrow' does not fit a date field — an expression default starts with '=' (e.g. '=today()') or '$' (e.g. '$user.department')",
            "metadata/x.yaml:11: fields.client.to: [FW-E230] 'to' does not apply to a string field — only for: link",
        ],
        id="field_rules",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: approval
                name: order_approval
                entity: sales_order
                steps:
                  - {name: board, approvers: {role: manager}, pass_ratio: 0.5}
            """,
        },
        [
            "metadata/x.yaml:5: steps[0].pass_ratio: [FW-E227] 'pass_ratio' only applies to mode 'all', and this step's mode is 'any' — add 'mode: all' or remove pass_ratio",
        ],
        id="pass_ratio_without_mode_all",
    ),
    pytest.param(
        {
            "metadata/app.yaml": """
                kind: app
                name: shop
                menu:
                  - {label: Sales, items: [sales_order, customers]}
            """,
        },
        [
            "metadata/app.yaml:4: menu[0].items[1]: [FW-E210] menu item 'customers' is neither an entity nor a report — did you mean 'customer'?",
        ],
        id="menu_item_unknown",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: approval
                name: order_approval
                entity: sales_order
                steps: [{name: boss, approvers: {role: manager}}]
            """,
            "metadata/y.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, done]
                transitions: [{name: finish, from: draft, to: done}]
            """,
        },
        [
            "metadata/y.yaml:3: entity: [FW-E234] entity 'sales_order' already has approval 'order_approval'; an entity has one workflow or approval — merge the two, or attach this one to another entity",
        ],
        id="two_flows_on_one_entity",
    ),

    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                fields:
                  amount: {type: decimal, check: "amount >= minimum", message: too small}
                  reason: {type: text, required_if: "amount + 1"}
                  total: {type: decimal, compute: "sum(lines.price)"}
                  due: {type: date, default: "=today() + "}
                  owner: {type: link, to: user, default: $usr}
            """,
            "metadata/f.yaml": """
                kind: form
                name: sales_order
                layout:
                  - {section: Main, fields: [title], visible_if: "amount > 'x'"}
            """,
            "metadata/w.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, done]
                transitions: [{name: finish, from: draft, to: done, when: "__import__('os')"}]
            """,
            "metadata/r.yaml": """
                kind: role
                name: clerk
                grants:
                  sales_order: {rows: "owner == $user and region.code == 3"}
            """,
            "metadata/rep.yaml": """
                kind: report
                name: sales_in_period
                source: sales_order
                params: {period: {type: daterange, default: this_quarter}}
                filter: "created_at in $perod"
                columns: [title, amount]
            """,
        },
        [
            'metadata/f.yaml:4: layout[0].visible_if: [FW-E407] cannot compare a decimal number with text using > (column 1 of "amount > \'x\'")',
            'metadata/r.yaml:4: grants.sales_order.rows: [FW-E407] cannot compare text with a whole number using == (column 20 of "owner == $user and region.code == 3")',
            'metadata/rep.yaml:5: filter: [FW-E411] unknown variable \'$perod\' (column 15 of "created_at in $perod") — did you mean \'$period\'?',
            'metadata/w.yaml:5: transitions[0].when: [FW-E403] names starting with \'_\' are not allowed: \'__import__\' (column 1 of "__import__(\'os\')")',
            'metadata/x.yaml:4: fields.amount.check: [FW-E406] unknown field \'minimum\' on invoice (column 11 of "amount >= minimum") — fields of invoice: amount, created_at, created_by, due, id, owner, reason, total, updated_at, updated_by, version',
            'metadata/x.yaml:5: fields.reason.required_if: [FW-E409] expression gives a decimal number but true/false is needed here (column 1 of "amount + 1") — a condition needs a comparison such as amount > 0',
            'metadata/x.yaml:6: fields.total.compute: [FW-E406] unknown field \'lines\' on invoice (column 5 of "sum(lines.price)") — fields of invoice: amount, created_at, created_by, due, id, owner, reason, total, updated_at, updated_by, version',
            'metadata/x.yaml:7: fields.due.default: [FW-E401] not a valid expression: invalid syntax (column 1 of "today() +")',
            'metadata/x.yaml:8: fields.owner.default: [FW-E411] unknown variable \'$usr\' (column 1 of "$usr") — did you mean \'$user\'?',
        ],
        id="expressions_everywhere",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: client
                renamed_from: customer
                fields:
                  full_name: {type: string, renamed_from: [name, title]}
                  title: string
            """,
        },
        [
            "metadata/x.yaml:3: renamed_from: [FW-E235] renamed_from 'customer' names an entity that still exists — remove renamed_from, or remove or rename entity 'customer'",
            "metadata/x.yaml:5: fields.full_name.renamed_from[1]: [FW-E235] renamed_from 'title' names a field of client that still exists — a rename moves the data of the old column into the new one; remove one of the two",
        ],
        id="renamed_from_something_that_still_exists",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: report
                name: sales_list
                source: sales_order
                params:
                  owner: {type: string, to: user}
                  size: {type: integer, options: [1, 2]}
                  region: {type: link}
                columns: [title, amount]
            """,
        },
        [
            "metadata/x.yaml:5: params.owner.to: [FW-E230] 'to' does not apply to a string parameter — only for: link",
            "metadata/x.yaml:6: params.size.options: [FW-E230] 'options' does not apply to an integer parameter — only for: choice",
            "metadata/x.yaml:7: params.region: [FW-E231] a link parameter needs 'to'",
        ],
        id="report_param_keys_for_another_type",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: entity
                name: invoice
                label: {en: Invoice, cn: 发票}
                fields:
                  kind: {type: choice, options: [{value: a, label: {en: A, fr: A}}]}
            """,
        },
        [
            "metadata/x.yaml:3: label.cn: [FW-E237] locale 'cn' is not one of the project's locales: en, zh — did you mean 'zh'? ('cn' is a country code; labels use language codes)",
            "metadata/x.yaml:5: fields.kind.options[0].label.fr: [FW-E237] locale 'fr' is not one of the project's locales: en, zh — add it to 'locales' in formwork.yaml, e.g. locales: [en, zh, fr]",
        ],
        id="label_in_a_locale_the_project_lacks",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: workflow
                name: order_flow
                entity: sales_order
                states: [draft, done]
                transitions:
                  - {name: finish, from: draft, to: done, hook: shop.shipp}
            """,
            "metadata/y.yaml": """
                kind: entity
                name: invoice
                fields:
                  text: string
            """,
            "metadata/z.yaml": """
                kind: approval
                name: invoice_approval
                entity: invoice
                steps:
                  - {name: pick, approvers: {plugin: shop.pick_approvers}}
            """,
        },
        [
            "metadata/x.yaml:6: transitions[0].hook: [FW-E214] plugin hook 'shop.shipp' is not registered — did you mean 'shop.ship'?",
            "metadata/z.yaml:5: steps[0].approvers[0].plugin: [FW-E214] plugin hook 'shop.pick_approvers' is not registered — register it with @hook('shop.pick_approvers') in a module of the project's plugin folders",
        ],
        id="unknown_transition_hook_and_approver_plugin",
    ),
    pytest.param(
        {
            "metadata/x.yaml": """
                kind: report
                name: sales_list
                source: sales_order
                columns: [title, amont, customer.nme, lines]
            """,
        },
        [
            "metadata/x.yaml:4: columns[1]: [FW-E211] 'amont' is not a field of entity 'sales_order' — did you mean 'amount'?",
            "metadata/x.yaml:4: columns[2]: [FW-E211] 'nme' is not a field of entity 'customer' — did you mean 'name'?",
            "metadata/x.yaml:4: columns[3]: [FW-E220] 'lines' is a table of sales_order_line (child rows), not a column",
        ],
        id="report_unknown_columns",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_semantic_mistake_is_reported(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    write_project(tmp_path, {**BASE, **files}, plugins=PLUGINS)
    assert problem_lines(tmp_path) == expected
