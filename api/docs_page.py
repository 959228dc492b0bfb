"""The OpenAPI document as one self-contained HTML page: no scripts, no external stylesheets
or fonts, so it reads the same offline and behind a strict Content-Security-Policy.

Rendered from the document itself (not from the endpoint table), so the page shows exactly
what clients and generators are given."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
SCHEMA_REF = "#/components/schemas/"

_STYLE = """
:root { color-scheme: light dark; --line: #8884; --muted: #888; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; display: flex; }
nav { position: sticky; top: 0; height: 100vh; overflow-y: auto; flex: 0 0 auto;
      width: clamp(18rem, 28vw, 26rem); padding: 1rem; border-right: 1px solid var(--line);
      box-sizing: border-box; }
nav ul { list-style: none; padding-left: 0; margin: .2rem 0 1rem; }
/* Long paths wrap inside the sidebar instead of being cut off at its edge. */
nav li { margin: .25rem 0; }
nav li a { display: flex; gap: .4rem; align-items: baseline; }
nav li .method { flex: none; }
nav li code { overflow-wrap: anywhere; }
main { padding: 1rem 2rem; max-width: 70rem; min-width: 0; }
a { color: inherit; }
h1 small { color: var(--muted); font-weight: normal; font-size: .6em; }
article { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem .8rem;
          margin: 1rem 0; }
h3 code { font-size: 1rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
         border-bottom: 1px solid var(--line); }
th { font-weight: 600; }
code { font-family: ui-monospace, monospace; font-size: .9em; }
.method { display: inline-block; min-width: 4.2em; text-align: center; border-radius: 4px;
          font: 600 .8rem ui-monospace, monospace; padding: .1rem .3rem; color: #fff; }
.get { background: #2b6cb0; } .post { background: #2f855a; } .patch { background: #b7791f; }
.delete { background: #c53030; } .put { background: #6b46c1; }
.muted { color: var(--muted); }
"""


def render_docs(document: Mapping[str, Any]) -> str:
    info = document.get("info", {})
    title = str(info.get("title", "API"))
    operations = list(_operations(document))
    schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        _nav(document, operations, schemas),
        "<main>",
        f"<h1>{escape(title)} <small>{escape(str(info.get('version', '')))}"
        f" · OpenAPI {escape(str(document.get('openapi', '')))}</small></h1>",
        _paragraph(info.get("description")),
        '<p>The same document as JSON: <a href="openapi.json"><code>/openapi.json</code></a>.</p>',
    ]
    for tag in _tags(document, operations):
        parts.append(f'<section id="tag-{escape(tag["name"])}"><h2>{escape(tag["name"])}</h2>')
        parts.append(_paragraph(tag.get("description")))
        parts.extend(
            _operation(path, method, op)
            for path, method, op in operations
            if _tag(op) == tag["name"]
        )
        parts.append("</section>")
    parts.append('<section id="schemas"><h2>Schemas</h2>')
    parts.extend(_schema_article(name, schema) for name, schema in schemas.items())
    parts.append("</section></main></body></html>")
    return "\n".join(part for part in parts if part)


# ---------------------------------------------------------------------------- layout


def _operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _tag(operation: Mapping[str, Any]) -> str:
    tags = operation.get("tags") or ["other"]
    return str(tags[0])


def _tags(
    document: Mapping[str, Any], operations: list[tuple[str, str, Mapping[str, Any]]]
) -> list[Mapping[str, Any]]:
    declared: list[Mapping[str, Any]] = list(document.get("tags", []))
    names = {tag["name"] for tag in declared}
    for _, _, op in operations:
        if _tag(op) not in names:
            names.add(_tag(op))
            declared.append({"name": _tag(op)})
    return declared


def _anchor(operation: Mapping[str, Any], path: str, method: str) -> str:
    return "op-" + str(operation.get("operationId") or f"{method}-{path}")


def _nav(
    document: Mapping[str, Any],
    operations: list[tuple[str, str, Mapping[str, Any]]],
    schemas: Mapping[str, Any],
) -> str:
    parts = ["<nav>"]
    for tag in _tags(document, operations):
        parts.append(f"<strong>{escape(tag['name'])}</strong><ul>")
        for path, method, op in operations:
            if _tag(op) == tag["name"]:
                parts.append(
                    f'<li><a href="#{escape(_anchor(op, path, method))}">'
                    f'<span class="method {escape(method)}">{escape(method.upper())}</span> '
                    f"<code>{escape(path)}</code></a></li>"
                )
        parts.append("</ul>")
    parts.append('<strong><a href="#schemas">Schemas</a></strong><ul>')
    parts.extend(f'<li><a href="#schema-{escape(n)}">{escape(n)}</a></li>' for n in schemas)
    parts.append("</ul></nav>")
    return "".join(parts)


def _paragraph(text: Any) -> str:
    return f"<p>{_prose(text)}</p>" if text else ""


def _prose(text: Any) -> str:
    """Escaped text in which `backticked` spans become code, as in the descriptions."""
    pieces = str(text).split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: show the text as it is
        return escape(str(text))
    return "".join(
        f"<code>{escape(piece)}</code>" if index % 2 else escape(piece)
        for index, piece in enumerate(pieces)
    )


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    parts = [
        f'<article id="{escape(_anchor(op, path, method))}">',
        f'<h3><span class="method {escape(method)}">{escape(method.upper())}</span> '
        f"<code>{escape(path)}</code></h3>",
        f"<p><strong>{escape(str(op.get('summary', '')))}</strong></p>",
        _paragraph(op.get("description")),
        f'<p class="muted">Authentication: {_prose(_security(op.get("security")))}</p>',
    ]
    if op.get("parameters"):
        parts.append("<h4>Parameters</h4>")
        parts.append(
            _table(
                ("name", "in", "type", "required", "description"),
                (
                    (
                        f"<code>{escape(p['name'])}</code>",
                        escape(p["in"]),
                        describe(p.get("schema", {})),
                        "yes" if p.get("required") else "no",
                        _prose(p.get("description", "")),
                    )
                    for p in op["parameters"]
                ),
            )
        )
    body = op.get("requestBody")
    if body:
        parts.append("<h4>Request body</h4>")
        parts.append(
            _table(
                ("media type", "schema"),
                (
                    (f"<code>{escape(media)}</code>", describe(content.get("schema", {})))
                    for media, content in body.get("content", {}).items()
                ),
            )
        )
    parts.append("<h4>Responses</h4>")
    parts.append(
        _table(
            ("status", "description", "body", "headers"),
            (
                (
                    f"<code>{escape(status)}</code>",
                    _prose(response.get("description", "")),
                    "<br>".join(
                        f"<code>{escape(media)}</code>: {describe(content.get('schema', {}))}"
                        for media, content in response.get("content", {}).items()
                    )
                    or '<span class="muted">none</span>',
                    ", ".join(
                        f"<code>{escape(name)}</code>"
                        + ("" if _header_required(header) else " (optional)")
                        for name, header in response.get("headers", {}).items()
                    ),
                )
                for status, response in op.get("responses", {}).items()
            ),
        )
    )
    parts.append("</article>")
    return "\n".join(part for part in parts if part)


def _header_required(header: Mapping[str, Any]) -> bool:
    # Headers by $ref point at components/headers, which are all required.
    return "$ref" in header or bool(header.get("required"))


def _security(requirements: Any) -> str:
    if not requirements:
        return "none"
    schemes = [" + ".join(f"`{name}`" for name in req) for req in requirements if req]
    text = " or ".join(schemes)
    return f"optional ({text})" if any(not req for req in requirements) else text


def _schema_article(name: str, schema: Mapping[str, Any]) -> str:
    parts = [
        f'<article id="schema-{escape(name)}"><h3><code>{escape(name)}</code></h3>',
        _paragraph(schema.get("description")),
    ]
    properties: Mapping[str, Any] = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        parts.append(
            _table(
                ("property", "type", "required", "description"),
                (
                    (
                        f"<code>{escape(prop)}</code>",
                        describe(sub),
                        "yes" if prop in required else "no",
                        _prose(sub.get("description", "")),
                    )
                    for prop, sub in properties.items()
                ),
            )
        )
        extra = schema.get("additionalProperties")
        if extra is False:
            parts.append('<p class="muted">No other properties are accepted.</p>')
        elif extra is True:
            parts.append('<p class="muted">Other properties may be present.</p>')
    else:
        parts.append(f"<p>{describe(schema)}</p>")
    parts.append("</article>")
    return "\n".join(part for part in parts if part)


def _table(headings: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    """Cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------------------- schemas


def describe(schema: Any) -> str:
    """A one-line, escaped HTML summary of a JSON schema: its type, constraints and links to
    the components it refers to."""
    if not isinstance(schema, Mapping):
        return escape(str(schema))
    if "$ref" in schema:
        target = str(schema["$ref"])
        if target.startswith(SCHEMA_REF):
            name = target.removeprefix(SCHEMA_REF)
            return f'<a href="#schema-{escape(name)}"><code>{escape(name)}</code></a>'
        return f"<code>{escape(target)}</code>"
    for combinator, joiner in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " &amp; ")):
        if combinator in schema:
            text = joiner.join(describe(sub) for sub in schema[combinator])
            discriminator = schema.get("discriminator", {}).get("propertyName")
            if discriminator:
                text += f" (by <code>{escape(str(discriminator))}</code>)"
            return text + _default(schema)
    if "const" in schema:
        return f"<code>{escape(_json(schema['const']))}</code>"
    if "enum" in schema:
        values = ", ".join(f"<code>{escape(_json(v))}</code>" for v in schema["enum"])
        return f"one of {values}" + _default(schema)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(escape(str(k)) for k in kind)
    if kind == "array":
        return f"array of {describe(schema.get('items', {}))}" + _constraints(schema)
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            return f"map of string to {describe(extra)}"
        return "object"
    if kind is None:
        return "any"
    text = escape(str(kind))
    if "format" in schema:
        text += f" ({escape(str(schema['format']))})"
    return text + _constraints(schema) + _default(schema)


_CONSTRAINTS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "items ≥ {}"),
    ("maxItems", "items ≤ {}"),
    ("pattern", "matching {}"),
)


def _constraints(schema: Mapping[str, Any]) -> str:
    found = [rule.format(schema[key]) for key, rule in _CONSTRAINTS if key in schema]
    if not found:
        return ""
    return ', <span class="muted">' + escape(", ".join(found)) + "</span>"


def _default(schema: Mapping[str, Any]) -> str:
    if "default" not in schema:
        return ""
    return f', <span class="muted">default <code>{escape(_json(schema["default"]))}</code></span>'


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
