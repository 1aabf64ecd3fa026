"""The OpenAPI 3.1 document of both faces: the routes served, described by ``tessera.apidoc.table``.

Paths and methods are the route table's, so a route cannot be served undocumented without the
document saying so (its operation reads "Not documented"; the tests fail on it). Error codes and
messages are ``tessera.errors``'s, the messaging bodies' schemas their pydantic models' own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from importlib import metadata
from typing import Any

from pydantic import BaseModel

from tessera import errors
from tessera.apidoc.table import (
    MODELS,
    PATHS,
    SCHEMAS,
    TAGS,
    Entry,
    Loyalty,
    Messaging,
    Operator,
    Param,
    Schema,
    ref,
)
from tessera.routing import MAX_ID_DIGITS, ApiRoute

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
_PARAMETER = re.compile(r"\{(\w+)\}")
#: A path parameter is a stored id: 1 to 18 digits (``tessera.routing``).
ID: Schema = {"type": "integer", "minimum": 0, "maximum": 10**MAX_ID_DIGITS - 1}

#: Security requirements: the loyalty face's two parameters together; either form of an API key.
LOYALTY_SECURITY: dict[str, list[str]] = {"loyaltyToken": [], "loyaltyDepartment": []}
MESSAGING_SECURITY: list[dict[str, list[str]]] = [{"apiKeyBasic": []}, {"apiKeyBearer": []}]
SECURITY_SCHEMES: Schema = {
    "loyaltyToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The loyalty face: the token `login` answers, with `store_department_id`. "
        "Like every loyalty parameter it may come in the form or JSON body instead.",
    },
    "loyaltyDepartment": {
        "type": "apiKey",
        "in": "query",
        "name": "store_department_id",
        "description": "The loyalty face: the department the token was issued for, with `token`.",
    },
    "apiKeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The messaging face: a partner API key as the password, any user name.",
    },
    "apiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The messaging face: `Authorization: Bearer <API key>`.",
    },
}
REQUEST_ID = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
HEADERS: Schema = {
    "X-Request-Id": {
        "description": "The request's id, as its log line carries it: the client's own `X-Request-Id` "
        "when it sent one",
        "required": True,
        "schema": {"type": "string"},
    }
}


def _error_response(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    return {
        "description": description,
        "headers": {**REQUEST_ID, **(headers or {})},
        "content": {JSON: {"schema": schema}},
    }


def _loyalty_transport(status_code: int) -> Schema:
    return {"allOf": [ref("LoyaltyError")], "properties": {"status_code": {"const": status_code}}}


RESPONSES: Schema = {
    "LoyaltyBadBody": _error_response(
        "The body cannot be read at all (a malformed multipart body)", _loyalty_transport(-400)
    ),
    "LoyaltyTooManyRequests": _error_response(
        "Over the partner's rate limit, or too many failed look-ups of codes or certificates",
        _loyalty_transport(-429),
    ),
    "MessagingBadRequest": _error_response(
        "The request cannot be taken: `field` names what is wrong when one field is", ref("MessagingError")
    ),
    "MessagingUnauthorized": _error_response(
        "No valid API key",
        ref("MessagingError"),
        {"WWW-Authenticate": {"description": 'Basic realm="tessera"', "schema": {"type": "string"}}},
    ),
    "MessagingNotFound": _error_response("No such id of the partner's", ref("MessagingError")),
}
MESSAGING_ERRORS = {400: "MessagingBadRequest", 401: "MessagingUnauthorized", 404: "MessagingNotFound"}

DESCRIPTION = """\
Both HTTP faces of Tessera (SPEC §9, "API documents").

**The loyalty face** (`/api/v2/...`, and `/api/v1/login`, `/api/v1/purchases/...`,
`/api/v1/marketing-actions/...` for older clients) is SailPlay-compatible. Each endpoint answers GET
and POST, with or without the trailing slash; parameters come in the query string, a urlencoded or
multipart form, or a JSON body (the query string wins a tie), and `cart`, `promocodes`,
`certificates`, `skus` may be JSON sent as text inside a field. Every call but `login` carries
`token` and `store_department_id`. Success is `{"status":"ok", ...}`; a business error is
**HTTP 200** with `{"status":"error","status_code":N,"message":...}` (SailPlay clients read the
body, not the status line); each operation lists the codes it can answer.

**The messaging face** (`/api/v1/...`, `/api/v2/event`) is eSputnik-compatible: a partner API key
(HTTP Basic with the key as password, or Bearer), JSON bodies, real HTTP statuses with
`{"error","status_code","field"?}`. Paths answer with or without the trailing slash.

Dates are ISO 8601 UTC without an offset. An unexpected failure answers HTTP 500 in the face's
shape with the request id that its log line carries.
"""


def _version() -> str:
    try:
        return metadata.version("tessera")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def _operation_id(method: str, path: str) -> str:
    return f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"


def _example_text(error: type[errors.TesseraError]) -> str:
    """The message an error answers (the named field's name in it, where there is one)."""
    if issubclass(error, errors.MissingField):
        return error("NAME").text
    if issubclass(error, errors.InvalidParameter):
        return error("NAME", "REASON").text
    return error.message


def _property(param: Param, schema: Schema) -> Schema:
    described = {**schema, "description": param.description}
    if param.example is not None:
        described["examples"] = [param.example]
    return described


def _object(params: Iterable[Param], *, json: bool = False) -> Schema:
    params = list(params)
    schema: Schema = {
        "type": "object",
        "properties": {
            p.name: _property(p, p.json_schema if json and p.json_schema is not None else p.schema)
            for p in params
        },
    }
    required = [p.name for p in params if p.required]
    if required:
        schema["required"] = required
    return schema


def _query(param: Param) -> Schema:
    parameter: Schema = {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": param.description,
        "schema": param.schema,
    }
    if param.example is not None:
        parameter["example"] = param.example
    return parameter


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = dict(SCHEMAS)
        for model in MODELS:
            self.model(model)

    def model(self, model: type[BaseModel]) -> Schema:
        """The model's JSON Schema as a component (its nested models too)."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, definition)
        self.schemas[model.__name__] = schema
        return ref(model.__name__)

    def operation(self, route: ApiRoute, method: str, entry: Entry | None) -> Schema:
        if isinstance(entry, Loyalty):
            return self._loyalty(route.path, method, entry)
        described = entry.get(method) if entry is not None else None
        if isinstance(described, Messaging):
            return self._messaging(route.path, method, described)
        if isinstance(described, Operator):
            return self._operator(route.path, method, described)
        return {
            "operationId": _operation_id(method, route.path),
            "summary": "Not documented",
            "description": "Served, but `tessera.apidoc.table` has no entry for it yet.",
            "responses": {"default": {"description": "Not documented"}},
        }

    def _loyalty(self, path: str, method: str, entry: Loyalty) -> Schema:
        implied: tuple[type[errors.TesseraError], ...] = (
            (errors.InvalidParameter,) if entry.public else (errors.PermissionDenied, errors.InvalidParameter)
        )
        listed = list(dict.fromkeys((*implied, *entry.errors)))
        codes = sorted({error.status_code for error in listed}, reverse=True)
        by_code = sorted(listed, key=lambda error: -error.status_code)
        rows = "\n".join(f"| {e.status_code} | {_example_text(e)} |" for e in by_code)
        description = (
            f"{entry.description}\n\n" if entry.description else ""
        ) + f"Business errors (HTTP 200, `status` error):\n\n| status_code | message |\n| --- | --- |\n{rows}"
        if entry.lookup:
            description += (
                "\n\nA look-up: too many unknown numbers from one client in a minute answer HTTP 429 "
                "until the minute ends."
            )
        ok = {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
            "allOf": [entry.answer],
        }
        error = {"allOf": [ref("LoyaltyError")], "properties": {"status_code": {"enum": codes}}}
        operation: Schema = {
            "operationId": _operation_id(method, path),
            "summary": entry.summary,
            "description": description,
            "tags": [entry.tag],
            "security": [] if entry.public else [LOYALTY_SECURITY],
        }
        fields = [p for p in entry.params if p.name != "file"]
        if method == "GET":
            if fields:
                operation["parameters"] = [_query(p) for p in fields]
            if entry.upload:
                operation["description"] += "\n\nA GET cannot carry the file: it answers -4201."
        elif entry.params:
            if entry.upload:
                content = {"multipart/form-data": {"schema": _object(entry.params)}}
            else:
                content = {
                    "application/x-www-form-urlencoded": {"schema": _object(entry.params)},
                    JSON: {"schema": _object(entry.params, json=True)},
                }
            operation["requestBody"] = {"required": any(p.required for p in entry.params), "content": content}
        operation["responses"] = {
            "200": {
                "description": "`ok`, or a business error",
                "headers": REQUEST_ID,
                "content": {JSON: {"schema": {"oneOf": [ok, error]}}},
            },
            "400": {"$ref": "#/components/responses/LoyaltyBadBody"},
        }
        if not entry.public:
            operation["responses"]["429"] = {"$ref": "#/components/responses/LoyaltyTooManyRequests"}
        return operation

    def _messaging(self, path: str, method: str, entry: Messaging) -> Schema:
        names = _PARAMETER.findall(path)
        parameters = [
            {"name": name, "in": "path", "required": True, "description": "An id", "schema": ID, "example": 1}
            for name in names
        ]
        parameters += [_query(p) for p in entry.query]
        operation: Schema = {
            "operationId": _operation_id(method, path),
            "summary": entry.summary,
            "tags": [entry.tag],
            "security": MESSAGING_SECURITY,
        }
        if entry.description:
            operation["description"] = entry.description
        if parameters:
            operation["parameters"] = parameters
        if entry.body is not None:
            body = entry.body if isinstance(entry.body, dict) else self.model(entry.body)
            media_type: Schema = {"schema": body}
            if entry.example is not None:
                media_type["example"] = entry.example
            operation["requestBody"] = {"required": True, "content": {JSON: media_type}}
        answer: Schema = {"description": "Done", "headers": REQUEST_ID}
        if entry.answer is None:
            answer["description"] = "Done: an empty body"
        else:
            answer["content"] = {JSON: {"schema": entry.answer}}
        responses: Schema = {"200": answer}
        statuses = {*entry.statuses, 401, *([404] if names else [])}
        for status in sorted(statuses):
            responses[str(status)] = {"$ref": f"#/components/responses/{MESSAGING_ERRORS[status]}"}
        operation["responses"] = responses
        return operation

    def _operator(self, path: str, method: str, entry: Operator) -> Schema:
        operation: Schema = {
            "operationId": _operation_id(method, path),
            "summary": entry.summary,
            "tags": ["operator"],
            "security": [],
            "responses": {
                str(status): {
                    "description": HTTPStatus(status).phrase,
                    "headers": REQUEST_ID,
                    "content": {media_type: {"schema": schema}},
                }
                for status, (media_type, schema) in entry.answers.items()
            },
        }
        if entry.description:
            operation["description"] = entry.description
        return operation


def document(routes: Iterable[ApiRoute]) -> dict[str, Any]:
    """The OpenAPI document of these routes (``RouteTable.routes()``)."""
    builder = _Builder()
    paths: dict[str, Schema] = {}
    for route in routes:
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods):
            item[method.lower()] = builder.operation(route, method, PATHS.get(route.path))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Tessera", "version": _version(), "description": DESCRIPTION},
        "tags": TAGS,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "responses": RESPONSES,
            "headers": HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
