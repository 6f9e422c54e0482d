"""The requests the benchmarks send, built the same way by relay's load and by the baselines."""

from __future__ import annotations

from dataclasses import dataclass

APP = "default"


def metric_item(prefix: str, i: int, token: str, timestamp: float) -> dict:
    """The i-th metric of a run: 70% delivered, 30% opened, each naming its own delivery."""
    return {
        "id": f"{prefix}-{i}",
        "metric": "opened" if i % 10 >= 7 else "delivered",
        "token": token,
        "delivery_id": f"{prefix}-d{i}",
        "timestamp": timestamp,
        "source": "app",
    }


# -- forwarding: 100,000 facts of four kinds ------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Identifies, devices, events and delivery metrics; each becomes one Customer.io operation.

    Shares: 10% identifies, 15% devices, 25% events, 50% delivery metrics. Every device and
    event belongs to an identified customer, and every metric names its own delivery, so
    relay's outbox holds exactly ``total`` operations.
    """

    total: int
    timestamp: float

    @property
    def customers(self) -> int:
        return max(1, self.total // 10)

    @property
    def devices(self) -> int:
        return max(1, self.total * 15 // 100)

    @property
    def events(self) -> int:
        return max(1, self.total // 4)

    @property
    def metrics(self) -> int:
        return self.total - self.customers - self.devices - self.events

    def customer_id(self, c: int) -> str:
        return f"fwd-cus-{c:07d}"

    def identify(self, c: int) -> dict:
        return {
            "customer_id": self.customer_id(c),
            "email": f"fwd{c}@example.com",
            "attributes": {"plan": "pro" if c % 3 == 0 else "free", "first_app_version": "5.1.0"},
        }

    def device(self, d: int) -> tuple[str, dict]:
        token = f"{d:08x}" * 8
        return token, {
            "platform": "ios" if d % 2 == 0 else "android",
            "customer_id": self.customer_id(d % self.customers),
            "app_version": "5.1.0",
            "os_version": "17.4",
            "device_model": "iPhone15,2",
            "locale": "en-US",
            "push_enabled": True,
        }

    def event(self, e: int) -> dict:
        return {
            "id": f"fwd-evt-{e}",
            "name": "Product Viewed" if e % 2 else "Added to Cart",
            "customer_id": self.customer_id(e % self.customers),
            "timestamp": self.timestamp,
            "properties": {"product_id": f"sku-{e % 500}", "price": 19.99},
        }

    def metric(self, m: int) -> dict:
        token, _ = self.device(m % self.devices)
        return {
            "id": f"fwd-met-{m}",
            "metric": "opened" if m % 4 == 3 else "delivered",
            "token": token,
            "delivery_id": f"fwd-dlv-{m}",
            "timestamp": self.timestamp,
        }
