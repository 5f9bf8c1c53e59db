"""Operations endpoints: liveness, readiness, Prometheus metrics, OpenAPI and offline docs."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agentsms import metrics
from agentsms.app import WARM_UP_PATH, create_app, warm_up_routes
from agentsms.store import migrate
from tests.conftest import Gateway
from tests.conftest import test_settings as settings_for
from tests.integration.helpers import settle


async def test_healthz(gateway: Gateway) -> None:
    response = await gateway.client.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_database_and_migrations(gateway: Gateway) -> None:
    response = await gateway.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["migrations"]["current"] == body["migrations"]["head"] == migrate.head_revision()
    async with gateway.db.read() as conn:
        assert await migrate.current_revision(conn) == migrate.head_revision()


async def test_readyz_reads_the_migration_scripts_once(gateway: Gateway) -> None:
    # Finding the head revision loads every migration script (~200 ms on the event loop):
    # a readiness probe every few seconds must not pay it each time.
    before = migrate.head_revision.cache_info()
    for _ in range(3):
        assert (await gateway.client.get("/readyz")).status_code == 200
    after = migrate.head_revision.cache_info()
    assert after.misses == 1  # read once in this process, whichever test came first
    assert after.hits - before.hits >= 2  # at most the first of the three probes read them
    newest = sorted((Path(migrate.__file__).parent / "migrations" / "versions").glob("0*.py"))[-1]
    assert newest.stem == migrate.head_revision()


async def test_metrics_expose_requests_messages_queue_and_latencies(gateway: Gateway) -> None:
    response = await gateway.client.post("/v1/messages", json={"to": "+14155553301", "body": "m"})
    message_id = response.json()["id"]
    await settle(gateway, [message_id])
    queued = await gateway.client.post(
        "/v1/messages", json={"to": "+14155553301", "body": "later", "send_at": 4102444800}
    )

    metrics = await gateway.client.get("/metrics")

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(metrics.text)}
    for name in (
        "agentsms_http_requests",
        "agentsms_http_request_seconds",
        "agentsms_messages",
        "agentsms_queue_depth",
        "agentsms_job_latency_seconds",
        "agentsms_provider_send_seconds",
    ):
        assert name in families, name
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    posts = samples[
        (
            "agentsms_http_requests_total",
            (("method", "POST"), ("route", "/v1/messages"), ("status", "202")),
        )
    ]
    assert posts >= 2
    assert samples[("agentsms_messages", (("status", "delivered"),))] >= 1
    assert samples[("agentsms_messages", (("status", "scheduled"),))] >= 1
    assert samples[("agentsms_queue_depth", (("kind", "message.send"), ("status", "queued")))] >= 1
    assert samples[("agentsms_job_latency_seconds_count", (("kind", "message.send"),))] >= 1
    assert samples[("agentsms_provider_send_seconds_count", (("provider", "simulator"),))] >= 1
    await gateway.client.post(f"/v1/messages/{queued.json()['id']}/cancel")


async def test_openapi_describes_the_api(gateway: Gateway) -> None:
    response = await gateway.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "agentsms"
    paths = spec["paths"]
    for path, method in [
        ("/v1/messages", "post"),
        ("/v1/messages", "get"),
        ("/v1/messages/{message_id}", "get"),
        ("/v1/messages/{message_id}/cancel", "post"),
        ("/v1/batches", "post"),
        ("/v1/batches/{batch_id}", "get"),
        ("/v1/batches/{batch_id}/messages", "get"),
        ("/v1/numbers", "post"),
        ("/v1/numbers", "get"),
        ("/v1/numbers/{number_id}", "delete"),
        ("/v1/project", "get"),
        ("/v1/project", "patch"),
        ("/v1/simulator/inbound", "post"),
        ("/healthz", "get"),
    ]:
        assert method in paths.get(path, {}), (method, path)
    post = paths["/v1/messages"]["post"]
    assert "202" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in post.get("parameters", []))
    schemas = spec["components"]["schemas"]
    assert {"MessageCreate", "Message", "BatchCreate", "Batch", "Problem"} <= set(schemas)


async def test_docs_are_served_from_local_static_files(gateway: Gateway) -> None:
    response = await gateway.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert not [a for a in assets if a.startswith(("http://", "https://", "//"))], assets
    scripts = [a for a in assets if a.endswith(".js")]
    styles = [a for a in assets if a.endswith(".css")]
    assert scripts
    assert styles
    for asset in scripts + styles:
        served = await gateway.client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset
    bundle = await gateway.client.get(scripts[0])
    assert "SwaggerUIBundle" in bundle.text


async def test_bootstrap_key_gets_a_project_and_one_simulator_number(gateway: Gateway) -> None:
    key = "ask_" + secrets.token_urlsafe(16)
    settings = settings_for(gateway.settings.database_url, bootstrap_api_key=key)
    project_ids = []
    for _ in range(2):  # a restart finds what the first start made
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {key}"},
            ) as client,
        ):
            project = await client.get("/v1/project")
            numbers = (await client.get("/v1/numbers")).json()["data"]
            sent = await client.post("/v1/messages", json={"to": "+14155553302", "body": "hi"})
            canceled = await client.post(f"/v1/messages/{sent.json()['id']}/cancel")
        assert project.status_code == 200
        project_ids.append(project.json()["id"])
        assert [(n["number"], n["provider"], n["throughput_mps"]) for n in numbers] == [
            ("+14155550100", "simulator", 100.0)
        ]
        assert sent.status_code == 202
        assert canceled.status_code == 200
    assert project_ids[0] == project_ids[1]
    assert project_ids[0].startswith("proj_")


def _unmatched_requests() -> float:
    value = metrics.registry.get_sample_value(
        "agentsms_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}
    )
    return value or 0.0


async def test_routes_warmed_up_before_serving_then_serve_as_usual(gateway: Gateway) -> None:
    # `serve` warms the routing tables before it forks its API processes: nothing counted,
    # and the application answers as it would have.
    key = "ask_" + secrets.token_urlsafe(24)
    app = create_app(settings_for(gateway.settings.database_url, bootstrap_api_key=key))
    unmatched = _unmatched_requests()
    await warm_up_routes(app)
    assert _unmatched_requests() == unmatched
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/v1/project")).status_code == 200
        assert (await client.get(WARM_UP_PATH)).status_code == 404
    assert _unmatched_requests() == unmatched + 1
