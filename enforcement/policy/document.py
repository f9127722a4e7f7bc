"""Parse, validate and normalise policy documents; errors carry field paths (and YAML lines)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import cel
import jsonschema
import yaml

from controlplane.core.canonical import canonical_json, sha256_hex
from enforcement.policy import celcost
from enforcement.policy.schema import DEFAULT_DOCUMENT, POLICY_SCHEMA

CEL_VARIABLES = frozenset({"request", "context", "budget"})
# Named functions the CEL library provides (operators are _x_ / @x and always allowed).
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "dyn",
        "type",
        "duration",
        "timestamp",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
_VALIDATOR = jsonschema.Draft202012Validator(POLICY_SCHEMA)


@dataclass
class Issue:
    field: str
    message: str
    code: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"field": self.field, "message": self.message, "code": self.code}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class ValidationResult:
    document: dict[str, Any] | None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_lines(text: str) -> dict[str, int]:
    """Map field paths to 1-based line numbers of a YAML (or JSON) text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node, parts):
        lines[_path(parts)] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[_path([*parts, key.value])] = key.start_mark.line + 1
                walk(value, [*parts, key.value])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, [*parts, index])

    if root is not None:
        walk(root, [])
    return lines


def parse_text(text: str, *, content_type: str = "") -> tuple[Any, list[Issue]]:
    """YAML or JSON text -> Python data (JSON is YAML, but JSON errors read better as JSON)."""
    if "json" in content_type:
        try:
            return json.loads(text), []
        except json.JSONDecodeError as exc:
            return None, [Issue("", f"Invalid JSON: {exc.msg}", "parse_error", exc.lineno)]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [
            Issue(
                "",
                f"Invalid YAML: {getattr(exc, 'problem', exc)}",
                "parse_error",
                mark.line + 1 if mark else None,
            )
        ]


def _merge_defaults(document: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(DEFAULT_DOCUMENT)
    for key, value in document.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "unit_prices":
            merged[key] = {**merged[key], **value}
        elif key == "unit_prices" and isinstance(value, dict):
            merged[key] = {
                **merged[key],
                **{k: {**merged[key].get(k, {}), **v} for k, v in value.items()},
            }
        else:
            merged[key] = value
    return merged


def _check_rules(document: dict[str, Any], errors: list[Issue], warnings: list[Issue]) -> None:
    seen: dict[str, int] = {}
    total_cost = 0
    for index, rule in enumerate(document.get("rules", [])):
        base = f"rules[{index}]"
        if rule["id"] in seen:
            errors.append(
                Issue(
                    f"{base}.id",
                    f"Duplicate rule id {rule['id']!r} (first at rules[{seen[rule['id']]}]).",
                    "duplicate",
                )
            )
        seen.setdefault(rule["id"], index)
        try:
            # Bounds first: the parser itself must never see an unbounded expression.
            cost = celcost.analyse(rule["when"])
        except celcost.CelLimitError as exc:
            errors.append(Issue(f"{base}.when", str(exc), exc.code))
            continue
        total_cost += cost.cost
        try:
            program = cel.compile(rule["when"])
        except ValueError as exc:
            errors.append(Issue(f"{base}.when", f"CEL does not compile: {exc}", "cel_syntax"))
            continue
        unknown = sorted(set(program.variables()) - CEL_VARIABLES - cost.loop_variables)
        if unknown:
            errors.append(
                Issue(
                    f"{base}.when",
                    f"Unknown variable(s) {', '.join(unknown)}; use request, context or budget.",
                    "cel_unknown_variable",
                )
            )
            continue
        functions = sorted(
            name for name in program.functions() if name[:1].isalpha() and name not in CEL_FUNCTIONS
        )
        if functions:
            errors.append(
                Issue(
                    f"{base}.when",
                    f"Unknown function(s) {', '.join(functions)}; available: "
                    f"{', '.join(sorted(CEL_FUNCTIONS))}.",
                    "cel_unknown_function",
                )
            )
            continue
        if not program.variables():
            try:
                constant = program.execute({})
            except Exception as exc:  # a constant expression that cannot run is an error
                errors.append(Issue(f"{base}.when", f"Expression fails: {exc}", "cel_runtime"))
                continue
            if constant is False:
                warnings.append(
                    Issue(
                        f"{base}.when", "This rule can never match (always false).", "never_matches"
                    )
                )
            elif constant is not True:
                errors.append(Issue(f"{base}.when", "The expression must be boolean.", "cel_type"))
        if rule["then"] != "require_approval" and "approvers" in rule:
            errors.append(
                Issue(f"{base}.approvers", "Only require_approval rules take approvers.", "invalid")
            )
    if total_cost > celcost.MAX_POLICY_COST:
        errors.append(
            Issue(
                "rules",
                f"The rules' estimated cost together ({total_cost} units) exceeds "
                f"{celcost.MAX_POLICY_COST}: every gate call evaluates them in turn.",
                "cel_cost",
            )
        )
    modes = document["reservations"]
    if modes["default_ttl_seconds"] > modes["max_ttl_seconds"]:
        errors.append(
            Issue("reservations.default_ttl_seconds", "Must not exceed max_ttl_seconds.", "invalid")
        )


def validate_document(data: Any, *, text: str | None = None) -> ValidationResult:
    """Schema + CEL + consistency checks; returns the normalised document when valid."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    if not isinstance(data, dict):
        return ValidationResult(None, [Issue("", "A policy document is a mapping/object.", "type")])
    for error in sorted(
        _VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = _path(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for name in extra:
                errors.append(
                    Issue(_path([*error.absolute_path, name]), "Unknown field.", "unknown_field")
                )
            continue
        errors.append(Issue(path, error.message, str(error.validator)))
    if not errors:
        document = _merge_defaults(data)
        _check_rules(document, errors, warnings)
    else:
        document = None
    if text is not None:
        lines = _yaml_lines(text)
        for issue in [*errors, *warnings]:
            probe = issue.field
            while probe and probe not in lines:
                probe = probe.rsplit(".", 1)[0] if "." in probe else probe.rsplit("[", 1)[0]
            issue.line = issue.line or lines.get(probe)
    return ValidationResult(document if not errors else None, errors, warnings)


def document_sha256(document: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(document))
