"""The OpenAPI 3.1 document of the HTTP API, built from the models that validate requests and
render responses, so the two cannot drift apart.

Every route is one `Endpoint` in `ENDPOINTS`; adding a route to the app means adding its entry
here (a unit test fails while the router and this table disagree):

    Endpoint("POST", "/v1/things", "createThing", "Create a thing", "things",
             {201: Reply("The thing, created.", ThingOut, headers=("Location",))},
             problems=(400, 409, 413, 422), body=ThingSpec, params=(...,))

500, X-Request-ID, and the 401/403/429 answers and bearer security of keyed endpoints are
added from `access`, so an entry lists only what is particular to it."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter

from api.ops_schemas import HealthOut, OverviewOut, ReadinessOut
from api.params import DEFAULT_LIMIT, MAX_LIMIT
from api.problem_schema import Problem
from api.problems import PROBLEM_CONTENT_TYPE
from api.request_id import HEADER as REQUEST_ID_HEADER
from api.routes_keys import CreatedKey, KeyCreate, KeyList
from api.routes_sources import SourceGrantList
from api.schemas import BackfillOut, DryRunOut, PageOut, RunOut, TargetOut
from orchestrator.domain.specs import BackfillPatch, BackfillSpec, Name, TargetPatch, TargetSpec
from orchestrator.domain.states import BackfillState, RunState

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"
JSON = "application/json"

# Ids are Postgres bigints (see api.params).
BIGINT_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
TargetRef = Id | Name
BackfillRef = Id | UUID
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=255)]


class Access(Enum):
    """Who may call an endpoint; decides its `security` and its 401/403/429 answers."""

    KEY = "key"  # a bearer key with the method's scope (api.auth)
    OPS = "ops"  # open unless BACKFILL_OPS_AUTH is set, then as KEY
    OPEN = "open"


@dataclass(frozen=True)
class Named:
    """A type that is not a model (an annotated union) but deserves a component of its own."""

    name: str
    annotation: Any


@dataclass(frozen=True)
class Param:
    name: str
    location: Literal["path", "query", "header"]
    annotation: Any
    description: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Reply:
    """A non-error answer. `model` is what renders the body (None: no body)."""

    description: str
    model: Any = None
    media_type: str = JSON
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the aiohttp route pattern; its `{name}` segments are OpenAPI's too
    operation_id: str
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    # Error statuses particular to the endpoint; 500 and the access answers are added.
    problems: tuple[int, ...] = ()
    body: Any = None  # the request model; a Named for unions
    params: tuple[Param, ...] = ()
    access: Access = Access.KEY
    description: str = ""


# ---------------------------------------------------------------------------- parameters

AFTER = Param(
    "after",
    "query",
    Id,
    "Keyset cursor: the `next_after` of the previous page. Omit it for the first page.",
)
DRY_RUN = Param(
    "dry_run",
    "query",
    bool,
    "Validate and show what would be made, without creating anything.",
    default=False,
)
LIMIT = Param("limit", "query", Limit, "Items per page.", default=DEFAULT_LIMIT)
PAGE = (AFTER, LIMIT)
TARGET_REF = Param("target", "path", TargetRef, "The target's id, or its name.", required=True)
TARGET_ID = Param("target", "path", Id, "The target's numeric id.", required=True)
BACKFILL_REF = Param("backfill", "path", BackfillRef, "The backfill's id or uuid.", required=True)
TARGET_FILTER = Param("target_id", "query", Id, "Only backfills of this target.")
BACKFILL_STATES = Param(
    "state",
    "query",
    list[BackfillState],
    "Only backfills in these states; repeat the parameter or separate states by commas.",
)
RUN_STATES = Param(
    "state",
    "query",
    list[RunState],
    "Only runs in these states; repeat the parameter or separate states by commas.",
)
IDEMPOTENCY = Param(
    "Idempotency-Key",
    "header",
    IdempotencyKey,
    "Any string of 1 to 255 characters. A retried request with the same key answers with "
    "the backfill the first one created instead of making another.",
)

KEY_PREFIX = Param(
    "prefix",
    "path",
    str,
    "The key's prefix: the first 12 characters of its token, as lists show it.",
    required=True,
)

# ---------------------------------------------------------------------------- headers

HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID_HEADER: {
        "description": "The request's id: the caller's own when it sent a sane one, else "
        "a new one. It is in the server's logs too.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
    },
    "Location": {
        "description": "The path of the created object.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds until the key's rate limit allows requests again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-RateLimit-Limit": {
        "description": "Requests the key may make per period.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests the key has left in the current period.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
_RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining")

# Why each error status happens; the body is always a Problem.
PROBLEMS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("The body is not a JSON object, or a header is malformed.", ()),
    401: (
        "No API key, or one that is unknown, revoked or expired.",
        ("WWW-Authenticate",),
    ),
    403: ("The key lacks the scope the operation needs: `read` for GET, `write` otherwise.", ()),
    404: ("No such object (objects of other teams do not exist for the caller).", ()),
    409: (
        "The request conflicts with current state: a name that is taken, an active backfill, "
        "an overlapping range, or a concurrent change.",
        (),
    ),
    413: ("The body is larger than the server accepts.", ()),
    422: (
        "The body or the query parameters are invalid, or the current state does not allow "
        "the action; `errors` says where.",
        (),
    ),
    429: (
        "The key's rate limit is used up.",
        ("Retry-After", *_RATE_HEADERS),
    ),
    500: ("An unexpected error. Quote `request_id` when reporting it.", ()),
}
_ACCESS_PROBLEMS = (401, 403, 429)


_ADMIN = "Needs a key with the `admin` scope; acts on the caller's team only."


def _created(model: type[BaseModel], what: str) -> Reply:
    return Reply(f"The {what}, created.", model, headers=("Location",))


# ---------------------------------------------------------------------------- endpoints

ENDPOINTS: tuple[Endpoint, ...] = (
    # targets
    Endpoint(
        "POST",
        "/v1/targets",
        "createTarget",
        "Create a target",
        "targets",
        {201: _created(TargetOut, "target")},
        problems=(400, 409, 413, 422),
        body=Named("TargetSpec", TargetSpec),
        description="A table target (rows of source tables into a sink) or a date-range "
        "target (a handler run per window), told apart by `kind`.",
    ),
    Endpoint(
        "GET",
        "/v1/targets",
        "listTargets",
        "List targets",
        "targets",
        {200: Reply("A page of targets, oldest first.", PageOut[TargetOut])},
        problems=(422,),
        params=PAGE,
    ),
    Endpoint(
        "GET",
        "/v1/targets/{target}",
        "getTarget",
        "Get a target",
        "targets",
        {200: Reply("The target.", TargetOut)},
        problems=(404,),
        params=(TARGET_REF,),
    ),
    Endpoint(
        "PATCH",
        "/v1/targets/{target}",
        "updateTarget",
        "Change a target",
        "targets",
        {200: Reply("The target as changed.", TargetOut)},
        problems=(400, 404, 409, 413, 422),
        body=TargetPatch,
        params=(TARGET_ID,),
        description="Only the fields given change. Kind and source tables are fixed.",
    ),
    Endpoint(
        "DELETE",
        "/v1/targets/{target}",
        "deleteTarget",
        "Delete a target",
        "targets",
        {204: Reply("Deleted, with its finished backfills.")},
        problems=(404, 409),
        params=(TARGET_ID,),
        description="Refused (409) while the target has an active backfill.",
    ),
    # backfills
    Endpoint(
        "POST",
        "/v1/backfills",
        "createBackfill",
        "Start a backfill",
        "backfills",
        {
            200: Reply(
                "With `dry_run=true`: what the backfill would make, nothing created.", DryRunOut
            ),
            201: _created(BackfillOut, "backfill"),
        },
        problems=(400, 409, 413, 422),
        body=BackfillSpec,
        params=(IDEMPOTENCY, DRY_RUN, *PAGE),
        description="Table fields apply to table targets, window fields to date-range "
        "targets. With an `Idempotency-Key`, a retry answers with the first backfill (201). "
        "With `dry_run=true` the request is validated exactly as a create, and the answer "
        "(200) lists a page of the runs it would make (`after` is a run's `seq`), a table's "
        "row estimate and the active backfill it would conflict with, if any.",
    ),
    Endpoint(
        "GET",
        "/v1/backfills",
        "listBackfills",
        "List backfills",
        "backfills",
        {200: Reply("A page of backfills, newest first.", PageOut[BackfillOut])},
        problems=(422,),
        params=(TARGET_FILTER, BACKFILL_STATES, *PAGE),
    ),
    Endpoint(
        "GET",
        "/v1/backfills/{backfill}",
        "getBackfill",
        "Get a backfill",
        "backfills",
        {200: Reply("The backfill, with its progress counters.", BackfillOut)},
        problems=(404,),
        params=(BACKFILL_REF,),
    ),
    *(
        Endpoint(
            "POST",
            f"/v1/backfills/{{backfill}}/{action}",
            f"{action}Backfill",
            f"{action.capitalize()} a backfill",
            "backfills",
            {200: Reply(f"The backfill after the {action} was applied.", BackfillOut)},
            problems=(404, 409, 422),
            params=(BACKFILL_REF,),
            description="Refused (422, with the valid actions) when the backfill's state "
            "does not allow it. A backfill already in the state the action leads to (cancel "
            "on cancelled, pause on paused, resume on created, scheduled or running) is "
            "answered 200 as it is, unchanged, so the request is safe to retry.",
        )
        for action in ("cancel", "pause", "resume")
    ),
    Endpoint(
        "PATCH",
        "/v1/backfills/{backfill}",
        "updateBackfill",
        "Change or re-plan a backfill",
        "backfills",
        {200: Reply("The backfill as changed.", BackfillOut)},
        problems=(400, 404, 409, 413, 422),
        body=BackfillPatch,
        params=(BACKFILL_REF,),
        description="Only the fields given change. `name` and `max_active_runs` change at "
        "any time. A date-range backfill's window, interval, zone, order and variables change "
        "until its first run starts: it is planned again (422 after that).",
    ),
    Endpoint(
        "POST",
        "/v1/backfills/{backfill}/retry",
        "retryBackfill",
        "Retry a backfill's failed runs",
        "backfills",
        {200: Reply("The backfill, its failed runs pending again.", BackfillOut)},
        problems=(404, 409, 422),
        params=(BACKFILL_REF,),
        description="Puts every failed run back to pending with a fresh attempt count (a "
        "table run resumes after its last checkpoint) and a failed backfill back to "
        "running. 422 when no run failed, or the backfill is completed or cancelled.",
    ),
    Endpoint(
        "GET",
        "/v1/backfills/{backfill}/runs",
        "listRuns",
        "List a backfill's runs",
        "backfills",
        {
            200: Reply(
                "A page of runs in sequence order; `after` is a run's `seq`.", PageOut[RunOut]
            )
        },
        problems=(404, 422),
        params=(BACKFILL_REF, RUN_STATES, *PAGE),
    ),
    # keys
    Endpoint(
        "POST",
        "/v1/keys",
        "createKey",
        "Create an API key",
        "keys",
        {201: Reply("The key, with its token: the only time the token is shown.", CreatedKey)},
        problems=(400, 413, 422),
        body=KeyCreate,
        description=_ADMIN,
    ),
    Endpoint(
        "GET",
        "/v1/keys",
        "listKeys",
        "List the team's API keys",
        "keys",
        {200: Reply("Every key of the caller's team, without tokens.", KeyList)},
        description=_ADMIN,
    ),
    Endpoint(
        "DELETE",
        "/v1/keys/{prefix}",
        "revokeKey",
        "Revoke an API key",
        "keys",
        {204: Reply("Revoked; requests with it are refused from now on.")},
        problems=(404,),
        params=(KEY_PREFIX,),
        description=_ADMIN,
    ),
    Endpoint(
        "GET",
        "/v1/sources",
        "listSources",
        "List the sources granted to the team",
        "sources",
        {
            200: Reply(
                "What an operator granted the caller's team on each source: tables it may "
                "read and write (patterns), whether the sql handler may run there, and its "
                "statement timeout. Never a connection string.",
                SourceGrantList,
            )
        },
        description=_ADMIN,
    ),
    # ops
    Endpoint(
        "GET",
        "/ops/health",
        "health",
        "Liveness",
        "ops",
        {200: Reply("The process is up.", HealthOut)},
        access=Access.OPEN,
        description="Never looks at dependencies.",
    ),
    Endpoint(
        "GET",
        "/ops/ready",
        "ready",
        "Readiness",
        "ops",
        {
            200: Reply("Postgres, RabbitMQ and the consumers are fine.", ReadinessOut),
            503: Reply("A dependency is not; `checks` says which.", ReadinessOut),
        },
        access=Access.OPS,
    ),
    Endpoint(
        "GET",
        "/ops/overview",
        "overview",
        "Operator overview",
        "ops",
        {200: Reply("Backfills and runs by state, workers, the outbox, queues.", OverviewOut)},
        access=Access.OPS,
    ),
    Endpoint(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        "ops",
        {200: Reply("This process's metrics in the text exposition format.", str, "text/plain")},
        access=Access.OPS,
    ),
    # docs
    Endpoint(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        "docs",
        {200: Reply("The OpenAPI 3.1 document.", dict[str, Any])},
        access=Access.OPEN,
    ),
    Endpoint(
        "GET",
        "/docs",
        "docs",
        "This document as a web page",
        "docs",
        {200: Reply("A self-contained HTML page.", str, media_type="text/html")},
        access=Access.OPEN,
    ),
)

TAGS = (
    {"name": "targets", "description": "What backfills run against."},
    {
        "name": "backfills",
        "description": "Start, watch, pause, resume, cancel and retry backfills.",
    },
    {"name": "keys", "description": "The team's API keys (admin scope)."},
    {
        "name": "sources",
        "description": "What an operator granted the team on each source (admin scope).",
    },
    {"name": "ops", "description": "Probes, an overview and metrics for operators."},
    {"name": "docs", "description": "This document."},
)


# ---------------------------------------------------------------------------- building


def component_name(model: type[BaseModel]) -> str:
    # As pydantic names $defs: generic models (PageOut[TargetOut]) lose their brackets,
    # which OpenAPI does not allow in component names.
    return re.sub(r"[^a-zA-Z0-9.\-_]", "_", model.__name__)


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


class _Schemas:
    """components/schemas, filled as models are met. Each model's `$defs` are hoisted here,
    so one model is one component however many models nest it."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        schema = self._hoist(schema)
        known = self.components.setdefault(name, schema)
        if known != schema:
            # Two models of one name, or one model whose request and response schemas
            # differ: either would make a $ref ambiguous.
            raise ValueError(f"two different schemas are named {name!r}")

    def _hoist(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = _require_discriminators(schema)
        for name, definition in schema.pop("$defs", {}).items():
            self.add(name, definition)
        return schema

    def of(self, annotation: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        """The schema to put in place: a $ref for models and Named types, else inline."""
        if isinstance(annotation, Named):
            adapter: TypeAdapter[Any] = TypeAdapter(annotation.annotation)
            self.add(annotation.name, adapter.json_schema(ref_template=REF_TEMPLATE, mode=mode))
            return ref(annotation.name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            name = component_name(annotation)
            schema = annotation.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
            if schema.keys() == {"$ref", "$defs"}:  # a self-referencing model
                self._hoist(schema)
                return {"$ref": schema["$ref"]}
            self.add(name, schema)
            return ref(name)
        return self._hoist(
            TypeAdapter(annotation).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        )


def _require_discriminators(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in which each tagged union requires its tag.

    A variant's tag field has a default (`kind: "table"`), so pydantic leaves it out of the
    variant's `required`; but the union cannot pick a variant without it, and refuses a body
    that lacks it. Requiring it on the union keeps the variants' schemas the models' own."""
    out = {key: _require_in(value) for key, value in schema.items()}
    tag = out.get("discriminator", {}).get("propertyName")
    if tag is not None and tag not in out.get("required", []):
        out["required"] = [*out.get("required", []), tag]
    return out


def _require_in(value: Any) -> Any:
    if isinstance(value, dict):
        return _require_discriminators(value)
    if isinstance(value, list):
        return [_require_in(item) for item in value]
    return value


def _header_ref(name: str, *, required: bool = True) -> dict[str, Any]:
    # A $ref cannot carry `required`, so optional headers are written out in place.
    if required:
        return {"$ref": f"#/components/headers/{name}"}
    return {**HEADERS[name], "required": False}


def _parameter(param: Param, schemas: _Schemas) -> dict[str, Any]:
    schema = schemas.of(param.annotation, "validation")
    if param.default is not None:
        schema = {**schema, "default": param.default}
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.required or param.location == "path",
        "description": param.description,
        "schema": schema,
    }
    if schema.get("type") == "array":
        out |= {"style": "form", "explode": True}
    return out


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    keyed = endpoint.access is not Access.OPEN
    responses: dict[str, Any] = {}
    for status, reply in sorted(endpoint.replies.items()):
        headers = {REQUEST_ID_HEADER: _header_ref(REQUEST_ID_HEADER)}
        headers |= {name: _header_ref(name) for name in reply.headers}
        if keyed:
            headers |= {name: _header_ref(name, required=False) for name in _RATE_HEADERS}
        response: dict[str, Any] = {"description": reply.description, "headers": headers}
        if reply.model is not None:
            response["content"] = {
                reply.media_type: {"schema": schemas.of(reply.model, "serialization")}
            }
        responses[str(status)] = response
    problem_schema = schemas.of(Problem, "serialization")
    statuses = {*endpoint.problems, 500, *(_ACCESS_PROBLEMS if keyed else ())}
    for status in sorted(statuses):
        description, extra_headers = PROBLEMS[status]
        problem_headers = {REQUEST_ID_HEADER: _header_ref(REQUEST_ID_HEADER)}
        if keyed and status != 401:
            # Any answer to a counted request carries the figures; a 401 had no key to count.
            problem_headers |= {name: _header_ref(name, required=False) for name in _RATE_HEADERS}
        problem_headers |= {name: _header_ref(name) for name in extra_headers}
        responses[str(status)] = {
            "description": description,
            "headers": problem_headers,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema}},
        }

    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.access is Access.KEY:
        operation["security"] = [{SECURITY_SCHEME: []}]
    elif endpoint.access is Access.OPS:
        # `{}` makes the key optional: it is needed only where BACKFILL_OPS_AUTH is set.
        operation["security"] = [{}, {SECURITY_SCHEME: []}]
    else:
        operation["security"] = []
    if endpoint.params:
        operation["parameters"] = [_parameter(p, schemas) for p in endpoint.params]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": schemas.of(endpoint.body, "validation")}},
        }
    operation["responses"] = responses
    return operation


def _version() -> str:
    try:
        return version("backfill-orchestrator")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def build_document(endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operations = paths.setdefault(endpoint.path, {})
        method = endpoint.method.lower()
        if method in operations:
            raise ValueError(f"{endpoint.method} {endpoint.path} is listed twice")
        operations[method] = _operation(endpoint, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Backfill orchestrator API",
            "version": _version(),
            "description": "Targets say what to backfill; backfills run over a table's keys or "
            "a date range in chunks (runs). Errors are RFC 9457 problem details "
            f"(`{PROBLEM_CONTENT_TYPE}`). Every response carries `{REQUEST_ID_HEADER}`.",
        },
        "tags": list(TAGS),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "headers": {name: {**header, "required": True} for name, header in HEADERS.items()},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer <key>`.",
                }
            },
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """Built once: the routes and models are fixed for the life of the process. Callers must
    not change it."""
    return build_document()
