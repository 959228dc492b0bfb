"""The OpenAPI document and the /docs page: valid, complete, and generated from the models
that validate and render the API's bodies. The app serving them: tests/integration/api/
test_openapi_served.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel

from api import openapi
from api.docs_page import render_docs
from api.openapi import (
    REF_TEMPLATE,
    Endpoint,
    Named,
    Reply,
    build_document,
    component_name,
    openapi_document,
)
from api.problem_schema import Problem
from api.problems import problem_response
from api.schemas import BackfillOut, PageOut, TargetOut
from orchestrator.domain.specs import BackfillSpec, TargetPatch
from tests.helpers import operations


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def component_of(model: type[BaseModel], mode: str = "validation") -> tuple[dict[str, Any], Any]:
    """A model's JSON schema as the document must hold it: without $defs, and the $defs."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)  # type: ignore[arg-type]
    defs = schema.pop("$defs", {})
    return schema, defs


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()

    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_document_is_built_once() -> None:
    assert openapi_document() is openapi_document()


def test_request_bodies_are_the_request_models_schemas() -> None:
    document = openapi_document()
    ops = operations(document)

    for key, model in (
        (("POST", "/v1/backfills"), BackfillSpec),
        (("PATCH", "/v1/targets/{target}"), TargetPatch),
    ):
        body = ops[key]["requestBody"]
        assert body["required"] is True
        schema = body["content"]["application/json"]["schema"]
        expected, defs = component_of(model)
        assert resolve(document, schema) == expected
        for name, definition in defs.items():
            assert document["components"]["schemas"][name] == definition


def test_create_target_takes_the_kind_discriminated_union() -> None:
    document = openapi_document()
    schema = operations(document)[("POST", "/v1/targets")]["requestBody"]["content"][
        "application/json"
    ]["schema"]

    union = resolve(document, schema)

    assert union["discriminator"]["propertyName"] == "kind"
    # The variants default their tag, but the union refuses a body without it.
    assert union["required"] == ["kind"]
    assert {s["$ref"] for s in union["oneOf"]} == {
        "#/components/schemas/TableTargetSpec",
        "#/components/schemas/DateRangeTargetSpec",
    }


def test_responses_are_the_response_models_schemas() -> None:
    document = openapi_document()
    ops = operations(document)

    for key, status, model in (
        (("POST", "/v1/targets"), "201", TargetOut),
        (("GET", "/v1/targets"), "200", PageOut[TargetOut]),
        (("GET", "/v1/backfills/{backfill}"), "200", BackfillOut),
    ):
        schema = ops[key]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{component_name(model)}"}
        assert resolve(document, schema) == component_of(model, "serialization")[0]


def test_every_response_names_its_request_id_and_errors_are_problems() -> None:
    for (method, path), op in operations(openapi_document()).items():
        for status, response in op["responses"].items():
            assert "X-Request-ID" in response["headers"], (method, path, status)
            if int(status) >= 400 and not (path == "/ops/ready" and status == "503"):
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
        assert "500" in op["responses"]


def test_v1_operations_need_a_bearer_key_and_may_be_refused_or_limited() -> None:
    document = openapi_document()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <key>`.",
    }
    for (method, path), op in operations(document).items():
        if path.startswith("/v1/"):
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
            limited = op["responses"]["429"]["headers"]
            assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"} <= set(limited)
    for open_path in ("/ops/health", "/openapi.json", "/docs"):
        op = operations(document)[("GET", open_path)]
        assert op["security"] == []
        assert "401" not in op["responses"]


def test_creates_answer_201_with_a_location() -> None:
    ops = operations(openapi_document())

    for path in ("/v1/targets", "/v1/backfills"):
        created = ops[("POST", path)]["responses"]["201"]
        assert created["headers"]["Location"] == {"$ref": "#/components/headers/Location"}


def test_parameters_are_documented() -> None:
    ops = operations(openapi_document())

    def names(key: tuple[str, str]) -> dict[str, str]:
        return {p["name"]: p["in"] for p in ops[key].get("parameters", [])}

    assert names(("GET", "/v1/backfills")) == {
        "target_id": "query",
        "state": "query",
        "after": "query",
        "limit": "query",
    }
    assert names(("GET", "/v1/backfills/{backfill}/runs")) == {
        "backfill": "path",
        "state": "query",
        "after": "query",
        "limit": "query",
    }
    assert names(("POST", "/v1/backfills")) == {
        "Idempotency-Key": "header",
        "dry_run": "query",
        "after": "query",
        "limit": "query",
    }
    idempotency = ops[("POST", "/v1/backfills")]["parameters"][0]
    assert idempotency["required"] is False
    assert idempotency["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    # Every {segment} of a path is a documented path parameter.
    for (_, path), op in ops.items():
        segments = set(re.findall(r"{(\w+)}", path))
        assert segments == {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}


def test_problem_model_matches_what_problem_response_renders() -> None:
    response = problem_response(
        status=422,
        code="validation_failed",
        title="Validation failed",
        detail="see errors",
        request_id="r-1",
        errors=[{"pointer": "/tables/0", "message": "bad"}, {"parameter": "limit", "message": "x"}],
        extra={"valid_actions": ["pause"]},
    )
    assert response.text is not None

    problem = Problem.model_validate_json(response.text)

    assert problem.model_extra == {"valid_actions": ["pause"]}
    assert set(Problem.model_json_schema()["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "errors",
    }


def test_two_different_schemas_of_one_name_are_refused() -> None:
    class TargetOut(BaseModel):  # not api.schemas.TargetOut
        other: int

    clash = Endpoint("GET", "/x", "x", "x", "x", {200: Reply("x", Named("TargetOut", TargetOut))})

    with pytest.raises(ValueError, match="'TargetOut'"):
        build_document((*openapi.ENDPOINTS, clash))


def test_docs_page_escapes_what_it_shows() -> None:
    document = build_document()
    document["info"] = {**document["info"], "title": "<script>alert(1)</script>"}

    html = render_docs(document)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
