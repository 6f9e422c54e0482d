"""``relay push test`` and ``relay deliveries show``."""

from __future__ import annotations

import click

from relay.cli.common import app_option, config_option, echo_json, fail, run_with_store
from relay.models.push import TestPushIn, TestPushOut
from relay.observability import Metrics
from relay.push.providers import Providers
from relay.push.service import PushService
from relay.settings import Settings
from relay.store import Store


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
) -> None:
    """Send a test push in Customer.io's payload layout; prints the delivery id and results."""
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

    echo_json(run_with_store(settings, send))


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
