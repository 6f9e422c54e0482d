"""Operations routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import jsonschema
from openapi_spec_validator import validate

from tests.support import Api, RelayServer


async def test_healthz_answers_without_a_key(relay: RelayServer) -> None:
    answer = await relay.api().get("/healthz")
    assert answer.status == 200
    assert answer.body == {"status": "ok"}


async def test_readyz_is_ready_with_forwarding_disabled_without_credentials(
    relay: RelayServer,
) -> None:
    answer = await relay.api().get("/readyz")
    assert answer.status == 200
    assert answer.body["forwarding"] == "disabled"
    assert answer.body["storage"] == "ok"


async def test_readyz_is_503_with_a_reason_once_storage_is_closed(relay: RelayServer) -> None:
    await relay.store.close()
    answer = await relay.api().get("/readyz")
    assert answer.status == 503
    assert answer.headers["Retry-After"]
    assert "storage" in answer.body["reason"]


async def test_writes_are_refused_with_503_once_storage_is_closed(relay: RelayServer) -> None:
    app_api = await relay.app_api()
    await relay.store.close()
    answer = await app_api.put("/v1/devices/tok", {"platform": "ios"})
    assert answer.status == 503
    assert answer.content_type == "application/problem+json"
    assert answer.headers["Retry-After"]


async def test_metrics_count_requests_by_route_and_status(relay: RelayServer, app_api: Api) -> None:
    await app_api.put("/v1/devices/tok", {"platform": "ios"})
    await app_api.post(
        "/v1/metrics", {"metrics": [{"id": "m1", "metric": "opened", "token": "tok"}]}
    )
    text = (await relay.api().get("/metrics")).text
    assert (
        'relay_http_requests_total{method="PUT",route="/v1/devices/{token}",status="201"} 1.0'
        in text
    )
    assert 'relay_ingested_items_total{kind="metrics",outcome="accepted"} 1.0' in text
    assert "relay_storage_write_duration_seconds_count" in text


async def test_metrics_count_a_redirect_with_its_own_status(relay: RelayServer) -> None:
    assert (await relay.api().get("/ui")).status == 200  # followed to the login page
    text = (await relay.api().get("/metrics")).text
    assert 'relay_http_requests_total{method="GET",route="/ui",status="303"} 1.0' in text


async def test_metrics_count_methods_http_does_not_define_under_one_label(
    relay: RelayServer,
) -> None:
    for method in ("PROPFIND", "MKCOL"):
        assert (await relay.api().request(method, "/v1/metrics")).status == 405
    text = (await relay.api().get("/metrics")).text
    assert 'relay_http_requests_total{method="other",route="unmatched",status="405"} 2.0' in text
    assert "PROPFIND" not in text


async def test_openapi_is_a_valid_openapi_3_1_document(relay: RelayServer) -> None:
    document = (await relay.api().get("/openapi.json")).body
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_openapi_describes_every_api_route_relay_serves(relay: RelayServer) -> None:
    """Every route but the dashboard's HTML pages (/ui/), which are no API."""
    document = (await relay.api().get("/openapi.json")).body
    assert relay.runner is not None
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in relay.runner.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/ui")
    }
    described = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == described


async def test_openapi_request_schemas_accept_what_relay_accepts(
    relay: RelayServer, app_api: Api
) -> None:
    document = (await relay.api().get("/openapi.json")).body
    operation = document["paths"]["/v1/metrics"]["post"]
    schema = {
        **operation["requestBody"]["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    body = {"metrics": [{"id": "m1", "metric": "opened", "token": "tok", "timestamp": 1700000000}]}
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    assert (await app_api.post("/v1/metrics", body)).status == 200
    bad = {"metrics": [{"id": "m1", "metric": "opened"}]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
