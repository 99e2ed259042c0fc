"""Validates recorded HTTP responses against Twilio's OpenAPI specs in ../shared/specs/.

The helper library is lenient about what it reads; this module is not. Every response the suite sees is matched
to its operation in the spec (by method and path template) and its body validated against the declared JSON
schema, after translating OpenAPI 3.0's `nullable` into JSON Schema.
"""

import copy
import json
import os
import re
from urllib.parse import urlsplit

import jsonschema

SPECS_DIR = os.environ.get(
    "TWILIO_SPECS_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "specs"),
)
SPEC_FILES = ["twilio_taskrouter_v1.json", "twilio_api_v2010_conferences.json"]


def specs_available():
    return all(os.path.exists(os.path.join(SPECS_DIR, f)) for f in SPEC_FILES)


def _nullable_to_jsonschema(node):
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if "_enum_" in ref and not node.get("nullable"):
            # Twilio's generated specs never mark a $ref to an enum as nullable, while the descriptions say such
            # fields are null until set (e.g. a conference's reason_conference_ended "will be null" while it is
            # in progress). Allow null there, and only there.
            return {"anyOf": [{"$ref": ref}, {"type": "null"}]}
        node = {k: _nullable_to_jsonschema(v) for k, v in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                t = node["type"]
                node["type"] = [t, "null"] if isinstance(t, str) else list(t) + ["null"]
            if "$ref" in node or "allOf" in node or "oneOf" in node or "anyOf" in node:
                node = {"anyOf": [node, {"type": "null"}]}
            if "enum" in node:
                node["enum"] = list(node["enum"]) + [None]
        # The specs mark example-only keywords that JSON Schema does not know; they are ignored by jsonschema.
        return node
    if isinstance(node, list):
        return [_nullable_to_jsonschema(v) for v in node]
    return node


class SpecIndex:
    def __init__(self):
        self.operations = []  # (method, regex, responses, components)
        for name in SPEC_FILES:
            with open(os.path.join(SPECS_DIR, name)) as f:
                spec = json.load(f)
            components = _nullable_to_jsonschema(spec.get("components", {}))
            for path, item in spec["paths"].items():
                pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
                for method, op in item.items():
                    if method.lower() not in ("get", "post", "delete", "put"):
                        continue
                    self.operations.append((method.upper(), re.compile(pattern), op.get("responses", {}), components, path))

    def find(self, method, path):
        matches = [op for op in self.operations if op[0] == method and op[1].match(path)]
        # The most specific template (fewest parameters) wins: /Workers/Statistics over /Workers/{Sid}.
        matches.sort(key=lambda op: op[4].count("{"))
        return matches[0] if matches else None

    def validate(self, method, url, status, body):
        """Returns None when the response conforms, else a message saying what does not."""
        path = urlsplit(url).path
        op = self.find(method, path)
        if op is None:
            return f"{method} {path}: no such operation in the spec"
        _, _, responses, components, template = op
        declared = responses.get(str(status))
        if declared is None:
            if status >= 400:
                return None  # error bodies are checked by the tests themselves
            return f"{method} {template}: status {status} not declared (spec has {sorted(responses)})"
        content = (declared.get("content") or {}).get("application/json")
        if content is None:
            if body:
                return f"{method} {template}: status {status} should have no body"
            return None
        schema = _nullable_to_jsonschema(copy.deepcopy(content["schema"]))
        schema["components"] = components
        try:
            jsonschema.validate(json.loads(body), schema)
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path)
            return f"{method} {template} -> {status}: at '{where}': {e.message}"
        return None
