"""``relay push test`` and ``relay deliveries show``."""

from __future__ import annotations

import click

from relay.cli.common import app_option, config_option, echo_json, fail, run_with_store
from relay.domain import Store
from relay.models.push import TestPushIn, TestPushOut
from relay.observability import Metrics
from relay.push.providers import Providers
from relay.push.service import PushService
from relay.redact import mask_token
from relay.settings import Settings


@click.group()
def push() -> None:
    """Send test pushes through APNs/FCM."""


@push.command()
@config_option
@app_option
@click.option("--token", default=None, help="Send to this device token.")
@click.option("--customer", default=None, help="Send to every reachable device of this customer.")
@click.option("--title", default=None)
@click.option("--body", default=None)
@click.option("--deep-link", default=None, help="Link the app opens (CIO.push.link).")
@click.option("--image", default=None, help="Image URL.")
@click.option("--dry-run", is_flag=True, help="Validate only; nothing reaches a device.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer instead.")
def test(
    settings: Settings,
    app_id: str,
    token: str | None,
    customer: str | None,
    title: str | None,
    body: str | None,
    deep_link: str | None,
    image: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Send a test push in Customer.io's payload layout: the delivery id, then a line per
    target (masked token, platform, status, error). Exit 1 when no target got it."""
    if (token is None) == (customer is None):
        fail("give exactly one of --token or --customer", status=2)
    request = TestPushIn(
        token=token,
        customer_id=customer,
        title=title,
        body=body,
        deep_link=deep_link,
        image=image,
        dry_run=dry_run,
    )

    async def send(store: Store) -> TestPushOut:
        providers = Providers(settings)
        try:
            return await PushService(store, providers, settings, Metrics()).test_push(
                app_id, request
            )
        finally:
            await providers.close()

    outcome = run_with_store(settings, send)
    if as_json:
        echo_json(outcome)
    else:
        click.echo(f"delivery {outcome.delivery_id}")
        for result in outcome.results:
            detail = f"  {result.error}" if result.error else ""
            click.echo(f"{mask_token(result.token)}  {result.platform}  {result.status}{detail}")
    if not any(result.status in ("sent", "validated") for result in outcome.results):
        fail("no target got the push (see the statuses above)")


@click.group()
def deliveries() -> None:
    """Follow deliveries end to end."""


@deliveries.command()
@config_option
@app_option
@click.argument("delivery_id")
def show(settings: Settings, app_id: str, delivery_id: str) -> None:
    """Print a delivery's funnel and timeline as JSON."""
    echo_json(run_with_store(settings, lambda store: store.delivery_trace(app_id, delivery_id)))
