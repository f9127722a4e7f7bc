"""Parse, validate and normalise policy documents; errors carry field paths (and YAML lines)."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import cel
import jsonschema
import yaml

from controlplane.core.bodies import check_json_depth, check_yaml_depth
from controlplane.core.canonical import canonical_json, sha256_hex
from enforcement.policy import celcost
from enforcement.policy.schema import DEFAULT_DOCUMENT, POLICY_SCHEMA

CEL_VARIABLES = frozenset({"request", "context", "budget"})
# ``request.resource`` always has exactly these keys (see evaluate.activation); anything else a
# caller describes goes in ``resource.attributes``.
RESOURCE_FIELDS = frozenset({"type", "id", "attributes"})
_RESOURCE_ACCESS = re.compile(r"\brequest\.resource\.([A-Za-z_][A-Za-z0-9_]*)")
_RESOURCE_MEMBER = re.compile(r"""['"]([^'"]*)['"]\s+in\s+request\.resource\b(?!\s*\.)""")
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


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: ``*ref`` expansion ("billion laughs") is never run."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted; write the value out.",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _yaml_lines(text: str) -> dict[str, int]:
    """Map field paths to 1-based line numbers of a YAML (or JSON) text."""
    try:
        root = yaml.compose(text, Loader=_NoAliasLoader)
    except (yaml.YAMLError, ValueError):
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


def _parent(path: str) -> str:
    """``rules[0].when`` -> ``rules[0]`` -> ``rules`` -> ``""`` (always strictly shorter)."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def _line_of(path: str, lines: dict[str, int]) -> int | None:
    """The line of ``path`` or of its nearest mapped ancestor."""
    probe = path
    while probe and probe not in lines:
        probe = _parent(probe)
    return lines.get(probe)


def _json_compatible(value: Any) -> list[Issue]:
    """A policy is JSON: string keys, no NUL, finite numbers, no YAML-only types (dates, sets,
    binary). Iterative, so no document shape can exhaust the stack."""
    issues: list[Issue] = []
    stack: list[tuple[Any, list]] = [(value, [])]
    while stack and len(issues) < 20:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    message = f"Keys must be strings; {key!r:.40} is a {type(key).__name__}."
                    issues.append(Issue(_path(where), message, "key_type"))
                elif "\x00" in key:
                    issues.append(Issue(_path(where), "Keys must not contain NUL.", "invalid"))
                else:
                    stack.append((child, [*where, key]))
        elif isinstance(item, list):
            stack.extend((child, [*where, index]) for index, child in enumerate(item))
        elif isinstance(item, str):
            if "\x00" in item:
                issues.append(Issue(_path(where), "Text must not contain NUL.", "invalid"))
        elif isinstance(item, float):
            if not math.isfinite(item):
                issues.append(Issue(_path(where), "Numbers must be finite.", "invalid"))
        elif item is not None and not isinstance(item, bool | int):
            message = f"A {type(item).__name__} is not a JSON value; quote it as a string."
            issues.append(Issue(_path(where), message, "type"))
    return issues


def _yaml_issue(exc: yaml.YAMLError) -> Issue:
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    code = "alias" if "aliases" in problem else "parse_error"
    return Issue("", f"Invalid YAML: {problem}", code, mark.line + 1 if mark else None)


def parse_text(text: str, *, content_type: str = "") -> tuple[Any, list[Issue]]:
    """YAML or JSON text -> Python data (JSON is YAML, but JSON errors read better as JSON).

    Bodies nesting deeper than MAX_BODY_DEPTH raise ``BODY_TOO_DEEP`` before any parse; YAML
    aliases are refused; integers too long to convert are a parse error, not a crash.
    """
    if "\x00" in text:
        return None, [Issue("", "The document contains a NUL character.", "parse_error")]
    if "json" in content_type:
        check_json_depth(text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, [Issue("", f"Invalid JSON: {exc.msg}", "parse_error", exc.lineno)]
        except ValueError as exc:  # e.g. an integer longer than Python converts
            return None, [Issue("", f"Invalid JSON: {exc}", "parse_error")]
    else:
        check_yaml_depth(text)
        try:
            data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            return None, [_yaml_issue(exc)]
        except ValueError as exc:  # e.g. an integer longer than Python converts
            return None, [Issue("", f"Invalid YAML: {exc}", "parse_error")]
    return data, []


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


def _resource_field_issue(when: str, path: str) -> Issue | None:
    """A rule reading a resource field that is never there (it would fail or never match)."""
    names = [m for m in _RESOURCE_ACCESS.findall(when) if m not in RESOURCE_FIELDS]
    names += [m for m in _RESOURCE_MEMBER.findall(when) if m not in RESOURCE_FIELDS]
    if not names:
        return None
    name = names[0]
    return Issue(
        path,
        f"request.resource has only type, id and attributes, so {name!r} is never there; "
        f"gate calls send it in resource.attributes: use "
        f"'{name}' in request.resource.attributes && request.resource.attributes.{name}.",
        "cel_unknown_field",
    )


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
        resource_issue = _resource_field_issue(rule["when"], f"{base}.when")
        if resource_issue is not None:
            errors.append(resource_issue)
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


def _add_lines(issues: list[Issue], text: str | None) -> None:
    if text is None or not issues:
        return
    lines = _yaml_lines(text)
    for issue in issues:
        issue.line = issue.line or _line_of(issue.field, lines)


def validate_document(data: Any, *, text: str | None = None) -> ValidationResult:
    """Schema + CEL + consistency checks; returns the normalised document when valid."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    if not isinstance(data, dict):
        return ValidationResult(None, [Issue("", "A policy document is a mapping/object.", "type")])
    errors.extend(_json_compatible(data))
    if errors:  # the schema validator and hashing need plain JSON data
        _add_lines(errors, text)
        return ValidationResult(None, errors, warnings)
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
    _add_lines([*errors, *warnings], text)
    return ValidationResult(document if not errors else None, errors, warnings)


def document_sha256(document: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(document))
