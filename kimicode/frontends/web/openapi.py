"""The OpenAPI 3.1 document of the server's routes (served at ``/openapi.json``), written out by hand: the
routes are few and their bodies small, and a generator would cost an import on every start."""

from __future__ import annotations

from typing import Any

from kimicode import __version__


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, body: dict[str, Any] | None = None, status: str = "200", stream: bool = False) -> dict[str, Any]:
    media = "text/event-stream" if stream else "application/json"
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            status: {"description": "OK", "content": {media: {"schema": {"type": "string" if stream else "object"}}}},
            "4XX": {"description": "One line saying what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if body is not None:
        op["requestBody"] = body
    return op


STRING = {"type": "string"}
SID = {"name": "sid", "in": "path", "required": True, "schema": STRING}


def document() -> dict[str, Any]:
    with_sid = {"parameters": [SID]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "kimicode serve", "version": __version__,
                 "description": "Sessions of the kimicode agent over HTTP; events as server-sent events (stream-json objects)."},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": STRING}, "required": ["error"]}},
        },
        "security": [{"token": []}],
        "paths": {
            "/sessions": {
                "get": _op("Open sessions and those on disk in the server's workspaces"),
                "post": _op("Create a session in a workspace, or resume one from disk by id",
                            _body({"workspace": STRING, "resume": STRING}, ["workspace"]), "201"),
            },
            "/sessions/{sid}": {**with_sid, "get": _op("A session"), "delete": _op("Close a session (its turn is cancelled)")},
            "/sessions/{sid}/fork": {**with_sid, "post": _op("A new session with this one's history", None, "201")},
            "/sessions/{sid}/messages": {**with_sid, "post": _op(
                "Start a turn with a message (images as data URLs)",
                _body({"text": STRING, "images": {"type": "array", "items": STRING}}, ["text"]), "202")},
            "/sessions/{sid}/steer": {**with_sid, "post": _op("Send a message into the running turn", _body({"text": STRING}, ["text"]), "202")},
            "/sessions/{sid}/cancel": {**with_sid, "post": _op("Cancel the running turn (its command is killed)")},
            "/sessions/{sid}/approvals/{call_id}": {
                "parameters": [SID, {"name": "call_id", "in": "path", "required": True, "schema": STRING}],
                "post": _op("Answer an approval_request", _body(
                    {"decision": {"type": "string", "enum": ["allow", "allow_session", "deny"]}, "reason": STRING}, ["decision"])),
            },
            "/sessions/{sid}/mode": {**with_sid, "post": _op("Switch mode (instant, thinking, agent, swarm, plan)", _body({"mode": STRING}, ["mode"]))},
            "/sessions/{sid}/model": {**with_sid, "post": _op("Switch model", _body({"model": STRING}, ["model"]))},
            "/sessions/{sid}/transcript": {**with_sid, "get": _op("The conversation's messages")},
            "/sessions/{sid}/changes": {**with_sid, "get": _op("Files the session changed, and their diff")},
            "/sessions/{sid}/events": {
                "parameters": [SID, {"name": "after", "in": "query", "required": False, "schema": {"type": "integer"}},
                               {"name": "Last-Event-ID", "in": "header", "required": False, "schema": STRING}],
                "get": _op("The session's events: each data line one stream-json object, ids for resuming", stream=True),
            },
            "/workspaces": {"get": _op("The folders named with --workspace")},
            "/openapi.json": {"get": _op("This document")},
        },
    }
