"""`/docs`: the OpenAPI document as a page a person reads, drawn on the server.

Routes are grouped by their tag (one per client dialect, then connect, admin and
operations), each with its parameters, request body fields, responses, an example
request (`curl`) and example answers built from the same schemas the document holds. A
search box filters the routes as one types (our own script, served by `/docs/...` with
the stylesheet): nothing is fetched from another origin, so it works offline, and the
page reads the same without JavaScript.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

__all__ = ["REFERENCE_ASSETS", "REFERENCE_HEADERS", "reference_html"]

Schema = dict[str, Any]

MAX_DEPTH = 6
SAMPLE_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&room_id=7312345678901234567"
)
SAMPLE_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
# Sample values for fields whose name says what they hold better than their type does.
_NAMED: dict[str, object] = {
    "url": SAMPLE_URL,
    "roomUrl": "https://www.tiktok.com/@someone/live",
    "userAgent": SAMPLE_UA,
    "user_agent": SAMPLE_UA,
    "apiKey": "sk_AbCd1234_…",
    "email": "someone@example.com",
    "room_id": "7312345678901234567",
    "roomId": "7312345678901234567",
    "unique_id": "someone",
    "uniqueId": "someone",
    "prefix": "sk_AbCd1234",
    "tier": "free",
}
_METHOD_ORDER = {"get": 0, "post": 1, "patch": 2, "put": 3, "delete": 4}

REFERENCE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _resolve(schema: Schema, document: Schema) -> Schema:
    seen = 0
    while "$ref" in schema and seen < MAX_DEPTH:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = document.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema


def _ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def sample(
    schema: Schema, document: Schema, name: str = "", depth: int = 0, *, lean: bool = False
) -> object:
    """A plausible value for `schema`: its example, default or first enum value, else one
    drawn from its type (and, for some fields, its name). `lean` keeps to an object's
    required fields and the well-known ones (a request's smallest useful body)."""
    schema = _resolve(schema, document)
    if depth > MAX_DEPTH:
        return None
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for combined in ("oneOf", "anyOf"):
        if schema.get(combined):
            options = [o for o in schema[combined] if _resolve(o, document).get("type") != "null"]
            return sample((options or schema[combined])[0], document, name, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, object] = {}
        for part in schema["allOf"]:
            value = sample(part, document, name, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if name in _NAMED and kind in (None, "string"):
        return _NAMED[name]
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        return {
            key: sample(value, document, key, depth + 1, lean=lean)
            for key, value in schema.get("properties", {}).items()
            if not lean or key in required or (depth == 0 and key in ("url", "userAgent"))
        }
    if kind == "array":
        return [sample(schema.get("items", {}), document, name, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2024-01-01T12:00:00Z"
    return name or "string"


def _type_of(schema: Schema, document: Schema) -> str:
    named = _ref_name(schema)
    resolved = _resolve(schema, document)
    kind = resolved.get("type")
    if isinstance(kind, list):
        text = " | ".join(str(k) for k in kind)
    elif kind == "array":
        text = f"array of {_type_of(resolved.get('items', {}), document)}"
    elif kind:
        text = str(kind)
    elif resolved.get("oneOf") or resolved.get("anyOf"):
        options = resolved.get("oneOf") or resolved.get("anyOf") or []
        text = " | ".join(_type_of(o, document) for o in options)
    else:
        text = "any"
    if resolved.get("enum"):
        text += ": " + ", ".join(json.dumps(v) for v in resolved["enum"])
    return f"{named} ({text})" if named and kind == "object" else text


def _inline(text: str) -> str:
    """Escaped text with `code` spans, as the document's descriptions write them."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _field_rows(schema: Schema, document: Schema) -> list[tuple[str, str, bool, str]]:
    resolved = _resolve(schema, document)
    required = set(resolved.get("required", []))
    rows = []
    for name, field in resolved.get("properties", {}).items():
        described = _resolve(field, document)
        rows.append(
            (
                name,
                _type_of(field, document),
                name in required,
                str(field.get("description") or described.get("description") or ""),
            )
        )
    return rows


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        '<div class="scroll" tabindex="0" role="region" aria-label="Table, scrolls sideways">'
        f"<table><thead><tr>{header}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _curl(method: str, path: str, op: Schema, document: Schema, origin: str) -> str:
    query: list[str] = []
    headers: list[str] = []
    for parameter in op.get("parameters", []):
        parameter = _resolve(parameter, document)
        value = sample(parameter.get("schema", {}), document, parameter["name"])
        if parameter.get("in") == "path":
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter.get("in") == "query" and parameter.get("required"):
            query.append(f"{parameter['name']}={value}")
    security = [next(iter(s), None) for s in op.get("security", [])]
    if "apiKeyHeader" in security:
        headers.append("X-Api-Key: sk_AbCd1234_…")
    if "adminToken" in security or "adminBearer" in security:
        headers.append("Authorization: Bearer $SIGNER_ADMIN_TOKEN")
    url = origin + path + ("?" + "&".join(query) if query else "")
    parts = ["curl"]
    if method != "get":
        parts += ["-X", method.upper()]
    for header in headers:
        parts += ["-H", header]
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = sample(content["application/json"].get("schema", {}), document, lean=True)
        parts += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    elif "text/plain" in content:
        parts += ["-H", "Content-Type: text/plain", "--data", SAMPLE_URL]
    elif content:
        kind, media = next(iter(content.items()))
        body = sample(media.get("schema", {}), document, lean=True)
        parts += ["-H", f"Content-Type: {kind}", "--data", json.dumps(body)]
    parts.append(url)
    return " \\\n  ".join(
        " ".join(shlex.quote(p) for p in parts[i : i + 2])
        if parts[i].startswith("-")
        else shlex.quote(parts[i])
        for i in _curl_groups(parts)
    )


def _curl_groups(parts: list[str]) -> list[int]:
    """Indexes where each line of the curl command starts: the command, then each option
    with its value, then the URL."""
    starts, index = [0], 1
    while index < len(parts):
        starts.append(index)
        index += 2 if parts[index].startswith("-") else 1
    return starts


def _operation(method: str, path: str, op: Schema, document: Schema, origin: str) -> str:
    op_id = str(op.get("operationId") or f"{method}-{path}")
    anchor = re.sub(r"[^A-Za-z0-9_-]", "-", op_id)
    summary = str(op.get("summary", ""))
    tags = " ".join(op.get("tags", []))
    words = escape(f"{method} {path} {summary} {tags} {op.get('description', '')}".lower())
    parts = [
        f'<section class="operation" id="{anchor}" data-search="{words}">',
        f'<h3><span class="method {method}">{method.upper()}</span> '
        f"<code>{escape(path)}</code></h3>",
        f"<p>{_inline(summary)}</p>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_inline(str(op['description']))}</p>")
    parameters = [_resolve(p, document) for p in op.get("parameters", [])]
    if parameters:
        rows = [
            (
                f"<code>{escape(p['name'])}</code>",
                escape(str(p.get("in", ""))),
                "yes" if p.get("required") else "no",
                escape(_type_of(p.get("schema", {}), document)),
                _inline(str(p.get("description", ""))),
            )
            for p in parameters
        ]
        parts += ["<h4>Parameters</h4>", _table(("Name", "In", "Required", "Type", "About"), rows)]
    content = op.get("requestBody", {}).get("content", {})
    if content:
        kinds = ", ".join(f"<code>{escape(k)}</code>" for k in content)
        parts.append(f"<h4>Body</h4><p>As {kinds}.</p>")
        schema = next(iter(content.values())).get("schema", {})
        fields = _field_rows(schema, document)
        if fields:
            field_rows = [
                (f"<code>{escape(n)}</code>", escape(t), "yes" if r else "no", _inline(d))
                for n, t, r, d in fields
            ]
            parts.append(_table(("Field", "Type", "Required", "About"), field_rows))
    parts.append("<h4>Example request</h4>")
    parts.append(f"<pre><code>{escape(_curl(method, path, op, document, origin))}</code></pre>")
    parts.append("<h4>Responses</h4><dl class='responses'>")
    for status, response in op.get("responses", {}).items():
        parts.append(
            f"<dt><span class='status s{str(status)[0]}'>{escape(str(status))}</span></dt>"
        )
        parts.append(f"<dd>{_inline(str(response.get('description', '')))}")
        media = response.get("content", {}).get("application/json")
        if media is not None and str(status) in ("200", "201", "400", "401", "429"):
            example = json.dumps(sample(media.get("schema", {}), document), indent=2)
            parts.append(
                f"<details><summary>Example</summary><pre><code>{escape(example)}</code></pre></details>"
            )
        parts.append("</dd>")
    parts.append("</dl></section>")
    return "".join(parts)


def reference_html(document: Schema, origin: str) -> str:
    """The whole page for `document`; examples address `origin` (this server's)."""
    groups: dict[str, list[tuple[str, str, Schema]]] = {}
    for path, operations in document.get("paths", {}).items():
        for method, op in operations.items():
            if method not in _METHOD_ORDER:
                continue
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append((method, path, op))
    info = document.get("info", {})
    title = escape(str(info.get("title", "API")))
    nav, body = [], []
    for tag, operations in groups.items():
        slug = re.sub(r"[^A-Za-z0-9]+", "-", tag).strip("-").lower()
        nav.append(
            f'<li><a href="#group-{slug}">{escape(tag)}</a> '
            f'<span class="count">{len(operations)}</span></li>'
        )
        body.append(f'<section class="group" id="group-{slug}"><h2>{escape(tag)}</h2>')
        for method, path, op in operations:
            body.append(_operation(method, path, op, document, origin))
        body.append("</section>")
    description = _inline(str(info.get("description", "")))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API reference</title>
<link rel="stylesheet" href="/docs/reference.css">
<script src="/docs/reference.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/docs">{title} <span class="version">
{escape(str(info.get("version", "")))}</span></a>
<nav aria-label="Elsewhere"><a href="/openapi.json">openapi.json</a>
<a href="/console/">Console</a> <a href="/health">Health</a></nav></header>
<div class="layout">
<aside><label for="filter">Search the routes</label>
<input id="filter" type="search" placeholder="sign_url, connect, 429…" autocomplete="off">
<nav aria-label="Groups"><ul>{"".join(nav)}</ul></nav></aside>
<main id="main"><h1>API reference</h1><p>{description}</p>
<p class="nomatch" hidden>No route matches.</p>
{"".join(body)}
</main></div>
</body>
</html>
"""


def _asset(name: str) -> str:
    return (resources.files("api") / "static" / name).read_text(encoding="utf-8")


# What `/docs/{name}` serves: name -> (content type, text), read once.
REFERENCE_ASSETS: dict[str, tuple[str, str]] = {
    "reference.css": ("text/css", _asset("reference.css")),
    "reference.js": ("text/javascript", _asset("reference.js")),
}
