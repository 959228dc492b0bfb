"""The problem+json error body as a model, for the OpenAPI document and for tests that hold
`api.problems.problem_response` to it. The response itself is still built as a mapping there,
so a field added on one side must be added on the other; a unit test checks they agree."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PointerError(BaseModel):
    """A problem in the request body, located by an RFC 6901 JSON pointer ("" is the body)."""

    model_config = ConfigDict(frozen=True)

    pointer: str = Field(examples=["/tables/0"])
    message: str


class ParameterError(BaseModel):
    """A problem with a query parameter, named as it appears in the URL."""

    model_config = ConfigDict(frozen=True)

    parameter: str = Field(examples=["limit"])
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details. Some problems add members (`valid_actions`, `retry_after`,
    ...); clients should ignore members they do not know."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(description="A URI naming the problem type; ends with `code`.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable, machine-readable, snake_case.")
    request_id: str | None = Field(description="Quote it when reporting a problem.")
    errors: list[PointerError | ParameterError]
