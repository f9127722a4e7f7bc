"""Static cost bounds for policy rules (CEL), checked before a rule is ever compiled or run.

The CEL library evaluates in native code holding the GIL: a running expression cannot be
interrupted by a timer, a thread or a signal. So a rule's cost is bounded before it is accepted:

- size: at most ``MAX_EXPRESSION_CHARS`` characters and ``MAX_NESTING`` open brackets;
- comprehensions (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) nest at most
  ``MAX_COMPREHENSION_DEPTH`` deep and iterate only over a list/map literal (its size is known)
  or a field path (``request.labels``, a loop variable's field), whose size the input limits
  bound (``DATA_COLLECTION_MAX``); iterating over a computed value is refused;
- ``matches()`` takes a string literal, whose compile cost is estimated (the library compiles
  the pattern on every evaluation: ``\\w{1000}`` costs ~80 ms each time);
- the estimated cost (every token weighted by how many times the enclosing comprehensions run
  it, plus the regular expressions) is at most ``MAX_RULE_COST`` per rule and
  ``MAX_POLICY_COST`` for all rules of a document.

One cost unit is about 0.05 microsecond of evaluation on the reference machine; the limits, and
what the worst admissible rule costs, are measured by ``bench/policy.py`` (docs/performance.md).
The run-time guard in ``enforcement.policy.evaluate`` backs this up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from controlplane.core.jsonlimits import ATTRIBUTES_LIMITS, MAX_LABELS

MAX_EXPRESSION_CHARS = 4000
MAX_NESTING = 32
MAX_COMPREHENSION_DEPTH = 2
# Largest collection a rule can find in the request: the input limits bound every one.
DATA_COLLECTION_MAX = max(ATTRIBUTES_LIMITS.max_items, MAX_LABELS)
MAX_RULE_COST = 100_000
MAX_POLICY_COST = 500_000
MAX_REGEX_COST = 1_000  # estimated compile cost of one pattern, in microseconds
REGEX_UNIT = 10  # cost units per estimated microsecond of regex compilation
ITERATION_OVERHEAD = 4  # cost units per comprehension step (accumulator, loop variable)

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
ROOTS = frozenset({"request", "context", "budget"})

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
        |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[()\[\]{}.,:?!<>+\-*/%])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # str | num | ident | op | other
    text: str


@dataclass(frozen=True, slots=True)
class CostReport:
    cost: int
    nesting: int
    comprehension_depth: int
    loop_variables: frozenset[str]


class CelLimitError(ValueError):
    """A rule over a limit: ``code`` is the issue code, the message says how to fix it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def tokenize(expression: str) -> list[Token]:
    tokens = []
    for match in _TOKEN_RE.finditer(expression):
        kind = match.lastgroup
        if kind != "space":
            tokens.append(Token(kind, match.group()))
    return tokens


def _decode_string(literal: str) -> str:
    """The value of a CEL string literal (escapes resolved approximately: enough to measure)."""
    prefix_end = 0
    while literal[prefix_end] not in "'\"":
        prefix_end += 1
    raw = "r" in literal[:prefix_end].lower()
    quote = 3 if literal[prefix_end : prefix_end + 3] in ("'''", '"""') else 1
    body = literal[prefix_end + quote : len(literal) - quote]
    if raw:
        return body
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 >= len(body):
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        if width is not None:
            try:
                out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            except ValueError:
                out.append("?")
            i += 2 + width
        elif nxt.isdigit():
            out.append("?")
            i += 4
        else:
            out.append(simple.get(nxt, nxt))
            i += 2
    return "".join(out)


# Estimated compile cost (microseconds) of regex atoms, measured with the CEL library's engine:
# Unicode classes expand to thousands of ranges and cost ~400x a literal character.
_CLASS_ESCAPES = {"w": 400, "W": 400, "p": 400, "P": 400, "D": 400, "S": 400, "d": 32, "s": 8}


def _regex_class(pattern: str, i: int, unicode: bool) -> tuple[int, int]:
    """Cost and end index of a bracket class starting at ``pattern[i] == '['``."""
    j = i + 1
    cost = 2
    if j < len(pattern) and pattern[j] == "^":
        cost += 8
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    depth = 1
    while j < len(pattern) and depth:
        char = pattern[j]
        if char == "\\" and j + 1 < len(pattern):
            nxt = pattern[j + 1]
            cost += _CLASS_ESCAPES.get(nxt, 1) if unicode else 2
            j += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        cost += 1
        j += 1
    return cost, j


_REPEAT_RE = re.compile(r"\{(\d{1,6})(,(\d{0,6}))?\}")


def regex_cost(pattern: str) -> int:
    """Estimated compile cost of a pattern (microseconds); conservative, not exact."""
    # Per group: [total, last atom's cost, unicode on, case-insensitive multiplier]
    stack: list[list] = [[0, 0, True, 1]]
    i = 0
    while i < len(pattern):
        group = stack[-1]
        char = pattern[i]
        atom = None
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            atom = (_CLASS_ESCAPES.get(nxt, 1) if group[2] else 2) * group[3]
            i += 2
            if nxt in "pP" and i < len(pattern) and pattern[i] == "{":
                end = pattern.find("}", i)
                i = end + 1 if end >= 0 else len(pattern)
            elif nxt in "pP" and i < len(pattern):
                i += 1
        elif char == "[":
            cost, i = _regex_class(pattern, i, group[2])
            atom = cost * group[3]
        elif char == "(":
            unicode, case = group[2], group[3]
            flags = re.match(r"\(\?([a-zA-Z-]*)([:)])", pattern[i:])
            if flags:
                on, _, off = flags.group(1).partition("-")
                unicode = False if "u" in off else (True if "u" in on else unicode)
                case = 4 if "i" in on else (1 if "i" in off else case)
                if flags.group(2) == ")":  # (?flags): applies to the rest of this group
                    group[2], group[3] = unicode, case
                    i += flags.end()
                    continue
                i += flags.end()
            else:
                named = re.match(r"\(\?(P?<[^>]*>|:)?", pattern[i:])
                i += named.end() if named and named.group(1) else 1
            stack.append([0, 0, unicode, case])
            continue
        elif char == ")" and len(stack) > 1:
            done = stack.pop()
            i += 1
            atom = done[0]
            group = stack[-1]
        elif char in "*+":
            group[0] += group[1]
            i += 1
            continue
        elif char == "?":
            i += 1
            continue
        elif char == "{":
            repeat = _REPEAT_RE.match(pattern, i)
            if repeat:
                low = int(repeat.group(1))
                high = repeat.group(3)
                count = int(high) if high else low + 1
                group[0] += group[1] * max(count - 1, 0)
                group[1] *= max(count, 1)
                i = repeat.end()
                continue
            atom = group[3]
            i += 1
        elif char == ".":
            atom = 8 * group[3]
            i += 1
        else:
            atom = (1 if char in "|^$" else 1 * group[3]) if char.isascii() else 4
            i += 1
        if atom is not None:
            group[0] += atom
            group[1] = atom
    while len(stack) > 1:
        done = stack.pop()
        stack[-1][0] += done[0]
    return stack[0][0] + 10


def _matching(tokens: list[Token]) -> dict[int, int]:
    """Index of the matching bracket for every bracket (both ways)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token.kind != "op":
            continue
        if token.text in _OPEN:
            stack.append(index)
        elif token.text in (")", "]", "}") and stack:
            opener = stack.pop()
            pairs[opener] = index
            pairs[index] = opener
    return pairs


def _top_level_items(tokens: list[Token], start: int, end: int, pairs: dict[int, int]) -> int:
    """Elements of a list/map literal spanning tokens[start..end] (its brackets)."""
    if end == start + 1:
        return 0
    count, i = 1, start + 1
    while i < end:
        token = tokens[i]
        if token.kind == "op" and token.text in _OPEN:
            i = pairs.get(i, end)
        elif token.kind == "op" and token.text == ",":
            count += 1
        i += 1
    if tokens[end - 1].kind == "op" and tokens[end - 1].text == ",":
        count -= 1  # trailing comma
    return count


def _follows_value(token: Token | None) -> bool:
    """Whether a bracket after this token is an index/call (not a literal)."""
    if token is None:
        return False
    return token.kind in ("ident", "str", "num") or token.text in (")", "]", "}")


def _receiver_bound(
    tokens: list[Token], dot: int, pairs: dict[int, int], shares: dict[str, int], literal_total: int
) -> tuple[int, int]:
    """(elements, pool) of the collection before ``tokens[dot]`` (the '.' of a macro).

    ``pool`` bounds the elements of everything nested inside it together: the input limits
    count members at every level, so n objects of m tags each have n * m <= pool.
    """
    end = dot - 1
    if end < 0:
        raise CelLimitError("cel_cost", "A comprehension needs a list or map before it.")
    last = tokens[end]
    if last.text in ("]", "}") and last.kind == "op":
        opener = pairs.get(end)
        if opener is None:
            raise CelLimitError("cel_syntax", "Unbalanced brackets.")
        if not _follows_value(tokens[opener - 1] if opener > 0 else None):
            return _top_level_items(tokens, opener, end, pairs), literal_total
    # Otherwise a field path: ident (. ident | [ ... ])* rooted at a variable.
    i = end
    while i >= 0:
        token = tokens[i]
        if token.kind == "op" and token.text == "]":
            opener = pairs.get(i)
            if opener is None or opener == 0:
                break
            i = opener - 1
            continue
        if token.kind == "ident":
            before = tokens[i - 1] if i > 0 else None
            if before is not None and before.kind == "op" and before.text == ".":
                i -= 2
                continue
            if token.text in ROOTS:
                path = "".join(t.text for t in tokens[i : end + 1])
                bound = MAX_LABELS if path == "request.labels" else DATA_COLLECTION_MAX
                return bound, DATA_COLLECTION_MAX
            if token.text in shares:
                return shares[token.text], shares[token.text]
        break
    raise CelLimitError(
        "cel_cost",
        "A comprehension (all/exists/exists_one/map/filter) may only iterate over a list or "
        "map literal or a field such as request.labels; iterating over a computed value "
        "(a function result, another comprehension, a sum of lists) has no cost bound.",
    )


def _literal_total(tokens: list[Token], pairs: dict[int, int]) -> int:
    """Elements of every list/map literal in the expression together."""
    total = 0
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.text in ("[", "{") and index in pairs:
            previous = tokens[index - 1] if index > 0 else None
            if not _follows_value(previous):
                total += _top_level_items(tokens, index, pairs[index], pairs)
    return total


def analyse(expression: str) -> CostReport:
    """The cost report of one rule's ``when``; raises ``CelLimitError`` over any limit."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CelLimitError(
            "cel_too_long", f"The expression is longer than {MAX_EXPRESSION_CHARS} characters."
        )
    tokens = tokenize(expression)
    pairs = _matching(tokens)
    literal_total = _literal_total(tokens, pairs)
    shares: dict[str, int] = {}  # loop variable -> bound of any collection reached through it
    # Frames of open brackets: [closing index, iterations (1 unless a comprehension), active]
    frames: list[list] = []
    multiplier = 1
    cost = 0
    nesting = depth = max_depth = 0
    for index, token in enumerate(tokens):
        while frames and frames[-1][0] < index:
            closed = frames.pop()
            if closed[2]:
                multiplier //= closed[1]
            if closed[3]:
                depth -= 1
        if token.kind == "op" and token.text in _OPEN:
            close = pairs.get(index)
            if close is None:
                raise CelLimitError("cel_syntax", "Unbalanced brackets.")
            nesting = max(nesting, len(frames) + 1)
            if nesting > MAX_NESTING:
                raise CelLimitError(
                    "cel_too_deep", f"Brackets nest deeper than {MAX_NESTING} levels."
                )
            macro = (
                token.text == "("
                and index >= 2
                and tokens[index - 1].kind == "ident"
                and tokens[index - 1].text in MACROS
                and tokens[index - 2].text == "."
            )
            if macro:
                bound, pool = _receiver_bound(tokens, index - 2, pairs, shares, literal_total)
                bound = max(bound, 1)
                if index + 1 < len(tokens) and tokens[index + 1].kind == "ident":
                    name = tokens[index + 1].text
                    if name in ROOTS:
                        raise CelLimitError(
                            "cel_shadowing",
                            f"The loop variable {name!r} hides the rule variable of that name; "
                            "name it differently (e.g. x, label, item).",
                        )
                    shares[name] = max(pool // bound, 1)
                depth += 1
                max_depth = max(max_depth, depth)
                if depth > MAX_COMPREHENSION_DEPTH:
                    raise CelLimitError(
                        "cel_too_deep",
                        f"Comprehensions (all/exists/map/filter) nest deeper than "
                        f"{MAX_COMPREHENSION_DEPTH} levels.",
                    )
                cost += ITERATION_OVERHEAD * multiplier * bound
                if tokens[index - 1].text in ("map", "filter"):
                    # The library appends to its result by copying it: quadratic in the size.
                    cost += multiplier * bound * bound
                frames.append([close, bound, False, True])
            else:
                frames.append([close, 1, False, False])
            cost += multiplier
            continue
        if token.kind == "op" and token.text == "," and frames:
            frame = frames[-1]
            if frame[3] and not frame[2] and frame[1] >= 1:
                frame[2] = True  # past the loop variable: the body runs once per element
                multiplier *= frame[1]
        if (
            token.kind == "ident"
            and token.text == "matches"
            and index >= 1
            and tokens[index - 1].text == "."
        ):
            cost += _regex_units(tokens, index, pairs) * multiplier
        elif token.kind == "ident" and token.text == "matches":
            raise CelLimitError(
                "cel_regex", "Call matches() as a method with a literal pattern: x.matches('^a')."
            )
        cost += multiplier
        if cost > MAX_RULE_COST:
            raise CelLimitError(
                "cel_cost",
                f"The expression's estimated cost exceeds {MAX_RULE_COST} units: comprehensions "
                "multiply the cost of their body by the size of what they iterate over.",
            )
    return CostReport(
        cost=cost,
        nesting=nesting,
        comprehension_depth=max_depth,
        loop_variables=frozenset(shares),
    )


def _regex_units(tokens: list[Token], index: int, pairs: dict[int, int]) -> int:
    opener = index + 1
    if opener >= len(tokens) or tokens[opener].text != "(":
        raise CelLimitError("cel_regex", "matches() needs a pattern.")
    close = pairs.get(opener)
    if close != opener + 2 or tokens[opener + 1].kind != "str":
        raise CelLimitError(
            "cel_regex",
            "matches() takes a string literal pattern (a pattern from request data could cost "
            "tens of milliseconds to compile on every evaluation).",
        )
    literal = tokens[opener + 1].text
    if literal[:2].lower() in ("b'", 'b"') or literal[:3].lower() in ("rb'", 'rb"', "br'", 'br"'):
        raise CelLimitError("cel_regex", "matches() takes a string pattern, not bytes.")
    micros = regex_cost(_decode_string(literal))
    if micros > MAX_REGEX_COST:
        raise CelLimitError(
            "cel_regex",
            f"The pattern is too expensive to compile on every evaluation (estimated {micros} "
            f"us, limit {MAX_REGEX_COST}). Unicode classes such as \\w, \\W, \\p{{L}}, \\D and "
            "\\S are the usual cause: use [A-Za-z0-9_] or (?-u:\\w), and smaller {n,m} counts.",
        )
    return micros * REGEX_UNIT
