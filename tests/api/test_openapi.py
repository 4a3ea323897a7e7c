"""The OpenAPI document is structurally valid 3.1 and matches what the renderers produce.

`openapi-spec-validator` is not a dependency, so the checks here walk the document:
every route and operation, every `$ref`, every security scheme, and each 200 schema
against a real rendered body.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from api.app import AppServices, AppSettings, create_app
from api.dialects import (
    eulerstream_v1_response,
    eulerstream_v2_response,
    own_response,
    signature_response,
)
from api.errors import ApiError, eulerstream_error_body, structured_error_body
from api.openapi import openapi_document
from signer import SignResult
from tests.redis_server import private_redis
from tests.signer.conftest import FETCH_URL
from tests.workers.conftest import running_worker
from workers import QueueSettings, SignQueue

DOC = openapi_document("1.2.3")


def _served_routes() -> set[tuple[str, str]]:
    """Every (path, method) the real application serves, but the catch-alls."""
    app = create_app(AppSettings(), AppServices(SignQueue(QueueSettings())))
    return {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None
        and route.method not in ("HEAD", "OPTIONS", "*")
        and "{tail" not in route.resource.canonical
    }


ROUTES = _served_routes()
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = DOC["components"]["schemas"][name]
    return schema


def _schema_for(path: str, method: str, status: str = "200") -> dict[str, Any]:
    response = DOC["paths"][path][method]["responses"][status]
    return _resolve(response["content"]["application/json"]["schema"])


def test_top_level() -> None:
    assert DOC["openapi"].startswith("3.1.")
    assert DOC["info"]["version"] == "1.2.3"
    assert DOC["info"]["title"]
    json.dumps(DOC)  # serialisable as served at /openapi.json


def test_every_route_is_described() -> None:
    described = {(path, method) for path, method, _ in _operations()}
    assert described == ROUTES


def test_operations_are_well_formed() -> None:
    ids = []
    for path, method, operation in _operations():
        assert path.startswith("/")
        assert method in HTTP_METHODS
        responses = operation["responses"]
        assert responses, f"{method} {path} has no responses"
        assert any(code.startswith("2") for code in responses)
        for code, response in responses.items():
            assert re.fullmatch(r"[1-5]\d\d", code)
            assert response["description"]
        for parameter in operation.get("parameters", []):
            assert parameter["in"] in {"query", "header", "path", "cookie"}
            assert "schema" in parameter
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_refs_resolve_and_security_schemes_exist() -> None:
    schemas = DOC["components"]["schemas"]
    for node in _walk(DOC):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/")
            assert ref.removeprefix("#/components/schemas/") in schemas
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["apiKeyQuery"] == {"type": "apiKey", "in": "query", "name": "apiKey"}
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    for _, _, operation in _operations():
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes)


def test_request_body_media_types() -> None:
    paths = DOC["paths"]
    for path in ("/webcast/sign_url", "/webcast/sign_url/", "/tiktok/sign_url"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    assert set(paths["/signature"]["post"]["requestBody"]["content"]) == {
        "text/plain",
        "application/json",
    }


def _assert_matches(schema: dict[str, Any], value: object, where: str = "$") -> None:
    """A small JSON Schema check: types, required keys and exact property sets."""
    schema = _resolve(schema)
    kind = schema.get("type")
    if "const" in schema:
        assert value == schema["const"], where
    if kind == "object":
        assert isinstance(value, dict), where
        for name in schema.get("required", []):
            assert name in value, f"{where}.{name} missing"
        properties = schema.get("properties")
        if properties is not None:
            assert set(value) <= set(properties), f"{where}: {set(value) - set(properties)}"
            for name, item in value.items():
                _assert_matches(properties[name], item, f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                _assert_matches(extra, item, f"{where}.{name}")
    elif kind == "array":
        assert isinstance(value, list), where
        for index, item in enumerate(value):
            _assert_matches(schema["items"], item, f"{where}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), where
    elif kind in ("integer", "number"):
        assert not isinstance(value, bool), where
        assert isinstance(value, int if kind == "integer" else int | float), where
    elif kind == "boolean":
        assert isinstance(value, bool), where


def test_response_schemas_match_rendered_bodies(signed: SignResult) -> None:
    _assert_matches(_schema_for("/webcast/sign_url", "get"), eulerstream_v1_response(signed))
    for path in ("/webcast/sign_url", "/webcast/sign_url/", "/tiktok/sign_url"):
        _assert_matches(_schema_for(path, "post"), eulerstream_v2_response(signed))
    _assert_matches(_schema_for("/signature", "post"), signature_response(signed))
    _assert_matches(_schema_for("/api/signature", "post"), own_response(signed, 2.5))


@pytest.mark.parametrize("status", ["400", "429", "503"])
def test_error_schemas_match_rendered_bodies(status: str) -> None:
    error = ApiError(429, "RATE_LIMIT_ERROR", "slow", retry_after=3, limit_label="minute")
    _assert_matches(_schema_for("/tiktok/sign_url", "post", status), eulerstream_error_body(error))
    schema = _schema_for("/api/signature", "post", status)
    body = structured_error_body(ApiError(400, "VALIDATION_ERROR", "bad"))
    _assert_matches(schema, body)


# --- routing over HTTP: merged slashes, 405 with Allow, malformed URLs -----------------


@pytest.fixture(scope="module")
def redis_for_routes() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
async def served(redis_for_routes: str) -> AsyncIterator[str]:
    """The real application over loopback, with one native worker signing."""
    settings = QueueSettings(REDIS_URL=redis_for_routes, prefix=f"routes-{uuid.uuid4().hex[:8]}")
    queue = SignQueue(settings)
    await queue.start()
    server = TestServer(create_app(AppSettings(), AppServices(queue)), host="127.0.0.1")
    await server.start_server()
    try:
        async with running_worker(settings):
            yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await queue.close()


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kwargs) as answer:
        return answer.status, dict(answer.headers), await answer.json(content_type=None)


async def test_repeated_slashes_are_served_in_place(served: str) -> None:
    # TikTok-Live-Connector 2.x with SIGN_API_URL=http://host/ posts to //tiktok/sign_url.
    for path in ("//tiktok/sign_url", "/tiktok//sign_url", "///webcast/sign_url/"):
        status, _, body = await _call("POST", f"{served}{path}", json={"url": FETCH_URL})
        assert (status, body["code"]) == (200, 200), (path, body)
    status, _, body = await _call("GET", f"{served}//webcast/sign_url", params={"url": FETCH_URL})
    assert (status, body["code"]) == (200, 200), body
    status, _, body = await _call("GET", f"{served}//health")
    assert status == 200, body
    status, _, body = await _call("GET", f"{served}//nope//")
    assert (status, body["error"]["code"]) == (404, 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/webcast/sign_url", "GET, OPTIONS, POST"),
        ("DELETE", "/api/signature", "OPTIONS, POST"),
        ("GET", "/signature", "OPTIONS, POST"),
        ("POST", "/health", "GET, OPTIONS"),
        ("PATCH", "//openapi.json", "GET, OPTIONS"),
        ("DELETE", "/admin/users", "GET, HEAD, OPTIONS, POST"),
    ],
)
async def test_an_unserved_method_is_a_405_with_allow(
    served: str, method: str, path: str, allow: str
) -> None:
    status, headers, body = await _call(method, f"{served}{path}")
    assert status == 405
    assert headers["Allow"] == allow
    assert body["status"] == "error"
    assert (body["error"]["code"], body["error"]["type"]) == (405, "VALIDATION_ERROR")


async def test_unknown_paths_are_404_and_preflight_is_204(served: str) -> None:
    status, _, body = await _call("DELETE", f"{served}/nope")
    assert (status, body["error"]["code"]) == (404, 404)
    async with aiohttp.ClientSession() as http, http.options(f"{served}/anything") as answer:
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/webcast/sign_url", "eulerstream"),
        ("/tiktok/sign_url", "eulerstream"),
        ("/api/signature", "structured"),
        ("/signature", "structured"),
    ],
)
async def test_a_malformed_url_is_a_400_on_every_sign_route(
    served: str, path: str, dialect: str
) -> None:
    # urlsplit raised ValueError on this in the API itself: a 500 (issue 15.3).
    status, _, body = await _call(
        "POST", f"{served}{path}", json={"url": "https://[www.tiktok.com]/"}
    )
    assert status == 400
    message = body["message"] if dialect == "eulerstream" else body["error"]["message"]
    assert "'url'" in message
