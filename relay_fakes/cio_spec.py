"""Customer.io's published OpenAPI documents as request-body validators.

Why the published documents and not hand-written schemas: the fake Customer.io must reject what
Customer.io documents as invalid, not what we assume, so a forwarder that passes its tests sends
shapes Customer.io accepts. The documents are validated literally (jsonschema draft 2020-12, the
dialect of OpenAPI 3.1) after exactly the corrections listed in the integration brief
(``customerio.md`` §10) and no others; each correction fixes a place where bodies Customer.io
accepts fail a literal reading:

- Track ``POST /api/v1/metrics``: the per-channel variants overlap (a push metric is also a valid
  in-app metric), so the top-level ``oneOf`` becomes ``anyOf``.
- Track ``POST /api/v1/merge_customers``: the ``primary``/``secondary`` variants (id | email |
  cio_id) lack ``required``, so ``{}`` matched all three; each variant now requires its own key.
- Pipelines: the Known/Anonymous/Group user variants overlap (``userId`` + ``anonymousId`` is what
  the SDKs send to stitch identities), so every ``oneOf`` in that document becomes ``anyOf``.

``format`` stays an annotation (the 2020-12 default): the documents use non-standard formats such
as ``"unix timestamp"`` and ``"ULID"``, and asserting them would be a correction of our own.

Validators are built once per operation and cached. Literal validation of a v2 batch runs ~450
operations/s; :mod:`relay_fakes.spec_dispatch` skips union variants that the discriminators
rule out (same verdicts, ~2,400 operations/s).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from relay_fakes.spec_dispatch import dispatching_validator
from relay_fakes.spec_errors import Issue, issues_from

SpecName = Literal["track", "pipelines"]

SPEC_FILES: dict[SpecName, str] = {
    "track": "customerio-track-openapi.json",
    "pipelines": "customerio-pipelines-openapi.json",
}
# Pipelines' servers are ``https://cdp.customer.io/v1``; its document's paths omit that prefix.
PIPELINES_PREFIX = "/v1"
# Keywords whose values are data, not schemas: never rewrite inside them.
_DATA_KEYWORDS = frozenset({"example", "examples", "enum", "const", "default"})
# Keywords whose values map names to schemas: their keys are names, never keywords.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "schemas"})


def load_spec(name: SpecName) -> dict[str, Any]:
    """The document exactly as published (a fresh copy each call)."""
    text = resources.files("relay_fakes").joinpath("specs", SPEC_FILES[name]).read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)  # an OpenAPI document is a JSON object
    return doc


@cache
def corrected_spec(name: SpecName) -> dict[str, Any]:
    """The document with the §10 corrections applied (cached; treat as read-only)."""
    doc = load_spec(name)
    if name == "track":
        correct_track(doc)
    else:
        correct_pipelines(doc)
    return doc


def correct_track(doc: dict[str, Any]) -> None:
    """Apply the two Track corrections in place; fail loudly if the document moved under us."""
    metrics = _request_schema(doc, "post", "/api/v1/metrics")
    if "oneOf" not in metrics:
        raise ValueError("Track /api/v1/metrics: expected a top-level oneOf to correct")
    metrics["anyOf"] = metrics.pop("oneOf")

    merge = _request_schema(doc, "post", "/api/v1/merge_customers")
    for side in ("primary", "secondary"):
        for variant in merge["properties"][side]["oneOf"]:
            keys = list(variant["properties"])
            if len(keys) != 1:
                raise ValueError(
                    f"merge_customers {side}: expected one key per variant, got {keys}"
                )
            variant["required"] = keys


def correct_pipelines(doc: dict[str, Any]) -> None:
    """Read every ``oneOf`` of the Pipelines document as ``anyOf``, in place."""
    if _one_of_to_any_of(doc) == 0:
        raise ValueError("Pipelines document: expected oneOf keywords to correct")


def _one_of_to_any_of(node: Any, *, names: bool = False) -> int:
    """Rename ``oneOf`` keywords below ``node``; ``names`` marks a map whose keys are names."""
    count = 0
    if isinstance(node, dict):
        if not names and "oneOf" in node:
            if "anyOf" in node:
                raise ValueError("schema has both oneOf and anyOf; cannot merge them")
            node["anyOf"] = node.pop("oneOf")
            count += 1
        for key, value in node.items():
            if not names and key in _DATA_KEYWORDS:
                continue
            count += _one_of_to_any_of(value, names=not names and key in _SCHEMA_MAPS)
    elif isinstance(node, list):
        for item in node:
            count += _one_of_to_any_of(item)
    return count


def _request_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = doc["paths"][path][method]["requestBody"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]  # a JSON Schema object
    return schema


def locate(method: str, path_template: str) -> tuple[SpecName, str]:
    """Which document and which of its paths describe ``method path_template``.

    Track paths are used as-is (``/api/v2/batch``); Pipelines paths may be given as served
    (``/v1/track``) or as written in the document (``/track``).
    """
    verb = method.lower()
    track_paths = corrected_spec("track")["paths"]
    if verb in track_paths.get(path_template, {}):
        return "track", path_template
    pipelines_paths = corrected_spec("pipelines")["paths"]
    for candidate in (path_template.removeprefix(PIPELINES_PREFIX), path_template):
        if verb in pipelines_paths.get(candidate, {}):
            return "pipelines", candidate
    raise KeyError(f"no Customer.io operation {method.upper()} {path_template}")


class SpecValidator:
    """Validates one operation's JSON request body; calling it returns readable error strings."""

    def __init__(self, spec: SpecName, method: str, spec_path: str) -> None:
        self.spec = spec
        self.method = method.upper()
        self.spec_path = spec_path
        operation = corrected_spec(spec)["paths"][spec_path][method.lower()]
        self.has_body = "application/json" in operation.get("requestBody", {}).get("content", {})
        self._validator: Draft202012Validator | None = None
        if self.has_body:
            pointer = _pointer(
                "paths", spec_path, method.lower(), "requestBody", "content", "application/json"
            )
            ref = f"{_uri(spec)}#{quote(pointer, safe='/~')}/schema"
            self._validator = _validator_class(spec)({"$ref": ref}, registry=_registry(spec))

    def issues(self, body: Any) -> list[Issue]:
        """Structured errors (field + message); empty when the body is valid.

        Operations without a request body accept anything: Customer.io ignores such bodies
        (customerio-python sends ``{}`` with DELETEs).
        """
        if self._validator is None or self._validator.is_valid(body):
            return []
        return issues_from(self._validator.iter_errors(body))

    def __call__(self, body: Any) -> list[str]:
        return [str(issue) for issue in self.issues(body)]

    def __repr__(self) -> str:
        return f"SpecValidator({self.spec!r}, {self.method} {self.spec_path})"


@cache
def validator_for(method: str, path_template: str) -> SpecValidator:
    """The cached validator for ``method path_template`` (see :func:`locate`)."""
    spec, spec_path = locate(method, path_template)
    return _validator(spec, method.upper(), spec_path)


@cache
def _validator(spec: SpecName, method: str, spec_path: str) -> SpecValidator:
    return SpecValidator(spec, method, spec_path)


def _pointer(*parts: str) -> str:
    """An RFC 6901 JSON pointer to ``parts``."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _uri(spec: SpecName) -> str:
    return f"urn:customerio:{spec}"


@cache
def _validator_class(spec: SpecName) -> type[Draft202012Validator]:
    """Draft 2020-12, skipping union members the discriminators rule out (same verdicts)."""
    return dispatching_validator(corrected_spec(spec))


@cache
def _registry(spec: SpecName) -> Registry:
    """The whole document as one resource, so its ``#/components/...`` refs resolve."""
    resource = Resource.from_contents(corrected_spec(spec), default_specification=DRAFT202012)
    return Registry().with_resources([(_uri(spec), resource)]).crawl()
