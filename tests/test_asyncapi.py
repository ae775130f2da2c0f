"""docs/asyncapi.yaml describes the websocket protocol the code speaks, and nothing else.

The code's side is read from the code: the ``type`` of every frame model in
monitor/server/protocol.py and every literal ``{"type": "..."}`` the server modules build
(found with ``ast``), the error codes, the ``start`` and ``decision`` fields, the taxonomy.
A message added to the server without documenting it here (or documented but gone) fails.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from monitor.alerts import Alert, Source
from monitor.server import protocol
from monitor.server.hub import END_OF_ALERTS
from monitor.taxonomy import CATEGORIES, Severity

REPO = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO / "docs" / "asyncapi.yaml"
SERVER_DIR = REPO / "monitor" / "server"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """``node`` with its local ``$ref`` (``#/a/b``) followed, recursively at the top."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"non-local $ref {ref}"
        node = spec
        for part in ref[2:].split("/"):
            assert part in node, f"$ref {ref} does not resolve (no {part!r})"
            node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def documented_types(spec: dict[str, Any]) -> dict[str, set[str]]:
    """Message ``type`` (its payload's ``type.const``) -> the channels that carry it."""
    types: dict[str, set[str]] = {}
    for channel_name, channel in spec["channels"].items():
        for message in channel["messages"].values():
            payload = resolve(spec, resolve(spec, message)["payload"])
            const = payload.get("properties", {}).get("type", {}).get("const")
            if const is not None:
                types.setdefault(const, set()).add(channel_name)
    return types


def code_types() -> set[str]:
    """Every message type the server code sends or accepts."""
    found: set[str] = set()
    for value in vars(protocol).values():  # client frames: pydantic models with a Literal type
        if isinstance(value, type) and issubclass(value, BaseModel) and "type" in value.model_fields:
            found.update(typing.get_args(value.model_fields["type"].annotation))
    for path in sorted(SERVER_DIR.glob("*.py")):  # server frames: {"type": "...", ...} literals
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "type"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.add(value.value)
    found.discard(END_OF_ALERTS["type"])  # the hub's end-of-queue marker; never sent
    return {t for t in found if "." not in t}  # dotted names are ASGI events (websocket.accept), not frames


def test_spec_is_asyncapi_3_and_every_reference_resolves(spec: dict[str, Any]) -> None:
    assert spec["asyncapi"].startswith("3.")
    assert {c["address"] for c in spec["channels"].values()} == {"/v1/ingest", "/v1/alerts"}
    for ref in refs(spec):
        resolve(spec, {"$ref": ref})


def test_operations_use_messages_of_their_own_channel(spec: dict[str, Any]) -> None:
    assert spec["operations"]
    for name, operation in spec["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        for message in operation.get("messages", []) + operation.get("reply", {}).get("messages", []):
            owner = operation.get("reply", {}).get("channel", operation["channel"])["$ref"]
            assert message["$ref"].startswith(channel_ref + "/messages/") or message["$ref"].startswith(
                owner + "/messages/"
            ), f"operation {name}: {message['$ref']} is not a message of {channel_ref}"


def test_every_message_type_in_the_code_is_documented_and_vice_versa(spec: dict[str, Any]) -> None:
    in_code = code_types()
    documented = set(documented_types(spec))
    assert {"start", "stop", "ready", "alert", "stopped"} <= in_code  # the scan itself still finds frames
    assert in_code - documented == set(), "message types the server uses but docs/asyncapi.yaml lacks"
    assert documented - in_code == set(), "message types docs/asyncapi.yaml lists but the server no longer uses"


def test_ingest_carries_binary_audio(spec: dict[str, Any]) -> None:
    audio = resolve(spec, spec["channels"]["ingest"]["messages"]["audio"])
    assert audio["contentType"] == "application/octet-stream"
    assert resolve(spec, audio["payload"]) == {"type": "string", "format": "binary"}


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def test_start_and_decision_fields_match_the_frame_models(spec: dict[str, Any]) -> None:
    for name, model in (("Start", protocol.StartFrame), ("Decision", protocol.DecisionFrame)):
        documented = schema(spec, name)
        assert set(documented["properties"]) == set(model.model_fields), name
        assert set(documented["required"]) == {f for f, info in model.model_fields.items() if info.is_required()}
        assert documented["additionalProperties"] is False  # the server refuses unknown fields
    start = schema(spec, "Start")["properties"]
    assert tuple(start["sample_rate"]["enum"]) == protocol.SUPPORTED_SAMPLE_RATES
    assert tuple(start["encoding"]["enum"]) == protocol.SUPPORTED_ENCODINGS
    decision = schema(spec, "Decision")["properties"]["decision"]["enum"]
    assert decision == list(typing.get_args(protocol.DecisionFrame.model_fields["decision"].annotation))


def test_error_codes_alert_fields_and_taxonomy_match_the_code(spec: dict[str, Any]) -> None:
    assert schema(spec, "Error")["properties"]["code"]["enum"] == [code.value for code in protocol.ErrorCode]
    alert = schema(spec, "Alert")["properties"]
    assert set(alert) == (set(Alert.model_fields) - {"line", "file"}) | {"type"}  # line/file: scan only
    assert alert["category"]["enum"] == list(CATEGORIES)
    assert schema(spec, "Severity")["enum"] == [s.value for s in Severity]
    assert alert["source"]["enum"] == [s.value for s in Source]
