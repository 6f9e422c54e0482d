"""The forwarding baselines: the same facts sent by Customer.io's and Segment's Python SDKs.

- ``customerio``: the official ``customerio`` client (Track API, HTTPS only), one call per
  fact: ``identify``, ``add_device``, ``track``; it has no call for push delivery metrics, so
  those go as plain HTTPS ``POST /api/v1/metrics`` requests on a ``requests`` session.
- ``segment``: ``segment-analytics-python`` (its default batching: 100 messages a request,
  one consumer thread) to the Pipelines stand-in: ``identify``, and ``track`` for devices
  (``Device Created or Updated``), events and delivery metrics (``Report Delivery Event``).

The CA of the stand-in's certificate comes in ``REQUESTS_CA_BUNDLE``. The last stdout line is
the result as JSON: elapsed seconds from the first call to the last answer, and failures.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime

import requests

from bench.standin import API_KEY, CDP_API_KEY, SITE_ID
from bench.workload import Facts


def with_customerio(url: str, facts: Facts) -> dict:
    from customerio.track import CustomerIO

    host, port = url.removeprefix("https://").split(":")
    cio = CustomerIO(site_id=SITE_ID, api_key=API_KEY, host=host, port=int(port))
    plain = requests.Session()
    failures = 0
    started = time.perf_counter()
    for c in range(facts.customers):
        body = facts.identify(c)
        cio.identify(id=body["customer_id"], email=body["email"], **body["attributes"])
    for d in range(facts.devices):
        token, body = facts.device(d)
        attributes = {k: v for k, v in body.items() if k not in ("customer_id", "platform")}
        cio.add_device(body["customer_id"], token, body["platform"], attributes=attributes)
    for e in range(facts.events):
        event = facts.event(e)
        cio.track(
            event["customer_id"],
            event["name"],
            data=event["properties"],
            id=event["id"],
            timestamp=int(event["timestamp"]),
        )
    for m in range(facts.metrics):
        metric = facts.metric(m)
        response = plain.post(
            f"{url}/api/v1/metrics",
            json={
                "delivery_id": metric["delivery_id"],
                "event": metric["metric"],
                "device_id": metric["token"],
                "timestamp": int(metric["timestamp"]),
            },
            timeout=10,
        )
        failures += response.status_code >= 300
    elapsed = time.perf_counter() - started
    cio.close()
    plain.close()
    return {"elapsed": elapsed, "failures": failures}


def with_segment(url: str, facts: Facts) -> dict:
    from segment.analytics.client import Client

    errors: list[str] = []
    client = Client(
        write_key=CDP_API_KEY,
        host=url,
        max_queue_size=facts.total + 1,  # the default 10,000 would drop facts
        on_error=lambda error, batch: errors.append(str(error)),
    )
    moment = datetime.fromtimestamp(facts.timestamp, UTC)
    dropped = 0
    started = time.perf_counter()
    for c in range(facts.customers):
        body = facts.identify(c)
        ok, _ = client.identify(
            body["customer_id"], {"email": body["email"], **body["attributes"]}, timestamp=moment
        )
        dropped += not ok
    for d in range(facts.devices):
        token, body = facts.device(d)
        properties = {k: v for k, v in body.items() if k not in ("customer_id", "platform")}
        ok, _ = client.track(
            body["customer_id"],
            "Device Created or Updated",
            properties,
            context={"device": {"token": token, "type": body["platform"]}},
            timestamp=moment,
        )
        dropped += not ok
    for e in range(facts.events):
        event = facts.event(e)
        ok, _ = client.track(
            event["customer_id"],
            event["name"],
            event["properties"],
            timestamp=moment,
            message_id=event["id"],
        )
        dropped += not ok
    for m in range(facts.metrics):
        metric = facts.metric(m)
        ok, _ = client.track(
            facts.customer_id(m % facts.customers),
            "Report Delivery Event",
            {
                "deliveryId": metric["delivery_id"],
                "metric": metric["metric"],
                "recipient": metric["token"],
            },
            timestamp=moment,
        )
        dropped += not ok
    client.flush()
    elapsed = time.perf_counter() - started
    client.join()
    return {"elapsed": elapsed, "failures": len(errors) + dropped, "errors": errors[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_clients")
    parser.add_argument("sdk", choices=["customerio", "segment"])
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT of the stand-in")
    parser.add_argument("--facts", type=int, required=True)
    parser.add_argument("--timestamp", type=float, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    facts = Facts(args.facts, args.timestamp)
    run = with_customerio if args.sdk == "customerio" else with_segment
    print(json.dumps(run(args.url, facts)))


if __name__ == "__main__":
    main()
