"""/ui/test-push — send (or dry-run) a test push to a token or a customer; one result row
per device, linking to the delivery page where QA watches the trace fill."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from relay.api.limits import check_id
from relay.api.state import PUSH
from relay.errors import ClientError, FieldError, Unavailable
from relay.models.push import TestPushIn, TestPushOut
from relay.ui.auth import page
from relay.ui.render import render
from relay.ui.state import VIEWER

FIELDS = ("token", "customer_id", "title", "body", "deep_link")


def _form_values(form: Any) -> dict[str, str]:
    values = {}
    for name in FIELDS:
        value = form.get(name, "")
        values[name] = value.strip() if isinstance(value, str) else ""
    return values


def parse(values: dict[str, str], dry_run: bool) -> TestPushIn | str:
    """The API's request struct from the form, or what is wrong with the form."""
    if bool(values["token"]) == bool(values["customer_id"]):
        return "Give either a device token or a customer id (one of them)."
    body: dict[str, object] = {k: v for k, v in values.items() if v}
    body["dry_run"] = dry_run
    try:
        request = msgspec.convert(body, TestPushIn)
    except msgspec.ValidationError as exc:
        field = str(exc).rpartition("$.")[2].rstrip("`")
        return f"{field.replace('_', ' ')}: {str(exc).split(' - at')[0]}"
    errors: list[FieldError] = []
    check_id(errors, "customer_id", request.customer_id)
    if errors:
        return f"customer id: {errors[0].message}"
    return request


@page
async def push_form(request: web.Request) -> web.StreamResponse:
    return render(
        request,
        "test_push.html",
        values=dict.fromkeys(FIELDS, ""),
        dry_run=False,
        error=None,
        outcome=None,
    )


@page
async def send(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = _form_values(form)
    dry_run = form.get("dry_run") in ("on", "1", "true")
    parsed = parse(values, dry_run)
    error: str | None = None
    outcome: TestPushOut | None = None
    if isinstance(parsed, str):
        error = parsed
    else:
        try:
            outcome = await request.app[PUSH].test_push(request[VIEWER].app_id, parsed)
        except (ClientError, Unavailable) as exc:  # unknown token, unsendable device, too big
            error = exc.detail
    return render(
        request, "test_push.html", values=values, dry_run=dry_run, error=error, outcome=outcome
    )
