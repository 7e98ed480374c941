"""The brain of a tool-capable fake chat model (stdlib only, pure functions).

A local test server can answer chat runs with these functions to behave like an open
instruct model that knows tool calling, without knowing anything about the client that
sends the request:

* [`tool_model_reply`][langchain_bytez.testing.fake_tools.tool_model_reply]: when the
  system text carries tool schemas (any JSON object that describes a function, found
  generically in the text: OpenAI ``{"type": "function", "function": {...}}`` objects or
  ``{"name": ..., "parameters"|"input_schema": {...}}``), it calls the tool that best
  matches the last user message, with arguments generated from the tool's JSON schema
  (numbers: the numbers of the user message, in order; strings: relevant words of it),
  written in one of the formats open models use (``TOOL_FORMATS``). Once the last
  non-system message carries a tool result (a ``tool``/``function``/``ipython`` role, a
  ``<tool_response>`` block, or a ``[TOOL_RESULTS]`` block), it answers in text with it:
  ``"The answer is 5."``.
* [`json_model_reply`][langchain_bytez.testing.fake_tools.json_model_reply]: when the
  prompt carries a JSON schema (an object with ``properties``), it answers with a JSON
  object following it (structured output by "JSON mode").

* [`react_model_reply`][langchain_bytez.testing.fake_tools.react_model_reply]: for a
  text-generation prompt in the classic ReAct format (tools listed, then ``Action: ...,
  should be one of [names]``, ``Question:`` and a ``Thought/Action/Action Input/
  Observation`` scratchpad), the text a model writes next: an action, or the final
  answer once an observation is there.

All return ``None`` when the conversation gives them nothing to do, so the caller falls
back to its normal chat text. Answers are deterministic for given messages and ``seed``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["TOOL_FORMATS", "json_model_reply", "react_model_reply", "tool_model_reply"]

TOOL_FORMATS = ("hermes", "json", "json_list", "fenced", "mistral", "prose")
"""The call formats ``tool_model_reply`` can write:

* ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Hermes, Qwen);
* ``json``: a bare ``{"name": ..., "parameters": {...}}`` object (Llama 3.x style);
* ``json_list``: ``[{"name": ..., "arguments": {...}}]``;
* ``fenced``: the object in a ```` ```json ```` fence;
* ``mistral``: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``;
* ``prose``: a sentence, then the bare object on its own line.
"""

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "give",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "show",
        "tell",
        "that",
        "the",
        "this",
        "to",
        "use",
        "what",
        "whats",
        "what's",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "call",
        "using",
        "get",
        "find",
    ]
)
# Sentence openers that are capitalised without being names.
_OPENERS = frozenset(
    [
        "what",
        "who",
        "how",
        "when",
        "where",
        "which",
        "why",
        "tell",
        "please",
        "give",
        "show",
        "find",
        "is",
        "are",
        "can",
        "could",
        "the",
        "a",
        "an",
        "i",
        "use",
        "call",
        "get",
        "my",
        # Imperative openers ("Create a customer named ...").
        "create",
        "make",
        "add",
        "set",
        "generate",
        "write",
        "return",
        "extract",
        "list",
        "send",
        "search",
        "look",
        "compute",
        "calculate",
        "convert",
    ]
)
# A phrase in quotes ('...', "...", curly quotes) is what a string argument should hold;
# an apostrophe inside a word ("what's") opens no quote.
_QUOTED = re.compile(
    r"(?<!\w)(?:'([^'\n]+?)'|\"([^\"\n]+?)\"|\u201c([^\u201d\n]+?)\u201d"
    r"|\u2018([^\u2019\n]+?)\u2019)(?!\w)"
)
# Symbols and words of arithmetic, so "2 + 3" finds a tool named "add".
_SYNONYMS = {
    "+": ("add", "sum", "plus", "addition"),
    "plus": ("add", "sum", "addition"),
    "sum": ("add", "addition"),
    "*": ("multiply", "product", "times", "multiplication"),
    "x": ("multiply", "product", "times"),
    "times": ("multiply", "product", "multiplication"),
    "-": ("subtract", "minus", "difference", "subtraction"),
    "minus": ("subtract", "difference", "subtraction"),
    "/": ("divide", "quotient", "division"),
    "divided": ("divide", "quotient", "division"),
    "weather": ("forecast", "temperature"),
}
_PLACE_KEYS = ("location", "city", "place", "country", "town", "region", "where")
_NAME_KEYS = ("name", "person", "who", "user", "author")


# ---------------------------------------------------------------------- reading messages


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    return ""


def _role(message: Mapping[str, Any]) -> str:
    return str(message.get("role") or "").lower()


def _json_objects(text: str) -> Iterator[Any]:
    """Every JSON object or list that starts somewhere in ``text`` (outermost only)."""
    for _, _, value in _json_spans(text):
        yield value


def _without_json(text: str) -> str:
    """``text`` with its JSON objects and lists cut out (a schema is not the question)."""
    kept = []
    pos = 0
    for start, end, _ in _json_spans(text):
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    return " ".join(kept)


def _json_spans(text: str) -> Iterator[tuple[int, int, Any]]:
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i != -1]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        yield start, end, value
        pos = end


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every dict inside a JSON value, outermost first."""
    if isinstance(value, Mapping):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _tool_of(value: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"name", "description", "parameters"}`` if ``value`` describes a function."""
    function = value.get("function")
    if value.get("type") == "function" and isinstance(function, Mapping):
        value = function
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    for key in ("parameters", "input_schema", "parameters_json_schema", "args_schema"):
        schema = value.get(key)
        if isinstance(schema, Mapping) and (
            "properties" in schema or schema.get("type") == "object"
        ):
            description = value.get("description")
            return {
                "name": name,
                "description": description if isinstance(description, str) else "",
                "parameters": dict(schema),
            }
    return None


def _tools_in(text: str) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    seen: set[str] = set()
    for value in _json_objects(text):
        for item in _walk(value):
            tool = _tool_of(item)
            if tool is not None and tool["name"] not in seen:
                seen.add(tool["name"])
                tools.append(tool)
    return tools


def _results_in(message: Mapping[str, Any]) -> list[str] | None:
    """The tool results a message carries, or ``None`` if it carries none."""
    text = _text(message.get("content"))
    if _role(message) in ("tool", "function", "ipython"):
        return [_result_value(text)]
    found = re.findall(r"<tool_response>(.*?)(?:</tool_response>|$)", text, re.DOTALL)
    found += re.findall(r"\[TOOL_RESULTS\](.*?)(?:\[/TOOL_RESULTS\]|$)", text, re.DOTALL)
    return [_result_value(item) for item in found] or None


def _result_value(text: str) -> str:
    """The result itself: the ``content``/``result``/``output`` of a JSON wrapper."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, Mapping):
        for key in ("content", "result", "output", "value"):
            if key in value:
                inner = value[key]
                return inner if isinstance(inner, str) else json.dumps(inner)
    return text if isinstance(value, (dict, list)) else str(value)


def _system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(
        _text(m.get("content")) for m in messages if _role(m) in ("system", "developer")
    )


def _last_turn(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    for message in reversed(messages):
        if _role(message) not in ("system", "developer"):
            return message
    return None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if _role(message) in ("user", "human") and _results_in(message) is None:
            return _without_json(_text(message.get("content")))
    return ""


# ---------------------------------------------------------------------- choosing and filling


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z]+|[+*/-]", re.sub(r"([a-z])([A-Z])", r"\1 \2", text))
    return [w.lower() for w in words]


def _score(tool: Mapping[str, Any], user_words: set[str], numbers: int, names: int) -> int:
    """How well a tool fits the question: shared words, then arguments it can fill."""
    name_words = set(_tokens(tool["name"].replace("_", " ")))
    description_words = set(_tokens(tool["description"])) - _STOPWORDS
    wanted = set(user_words)
    for word in user_words:
        wanted.update(_SYNONYMS.get(word, ()))
    score = 3 * len(name_words & wanted) + len(description_words & wanted)
    parameters = tool["parameters"]
    properties = parameters.get("properties") or {}
    required = [k for k in parameters.get("required") or [] if k in properties]
    numeric = [
        k
        for k in required
        if isinstance(properties[k], Mapping) and properties[k].get("type") in ("integer", "number")
    ]
    score += min(numbers, len(numeric))
    score -= 2 * max(0, len(numeric) - numbers)  # numbers it would have to invent
    named = [k for k in required if any(n in k.lower() for n in _PLACE_KEYS + _NAME_KEYS)]
    score += min(names, len(named))
    return score


def _named_in(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def _choose(tools: list[dict[str, Any]], user_text: str, instructions: str = "") -> dict[str, Any]:
    """The tool to call: one the instructions name (e.g. "you must call X"), else the best fit.

    Args:
        tools: The tools found in the prompt.
        user_text: The question.
        instructions: The system text outside the tool schemas; a tool named there and
            not the others is the one asked for.
    """
    words = set(_tokens(user_text)) - (_STOPWORDS - {"x"})
    numbers = len(_NUMBER.findall(user_text))
    names = len(_Filler(user_text, {}).proper_nouns)
    named = [tool for tool in tools if _named_in(tool["name"], instructions)]
    if len(named) == 1:
        return named[0]
    best = tools[0]
    best_score: int | None = None
    for tool in tools:
        score = _score(tool, words, numbers, names)
        if best_score is None or score > best_score:  # ties keep the first tool
            best, best_score = tool, score
    return best


class _Filler:
    """Generates values for a JSON schema from the user's text."""

    def __init__(self, user_text: str, root: Mapping[str, Any]) -> None:
        self._numbers = iter(_NUMBER.findall(user_text))
        self._quoted = iter(
            next(group for group in match.groups() if group)
            for match in _QUOTED.finditer(user_text)
        )
        # A capitalised word before a colon is a label ("Schema: ..."), not a name.
        words = [
            m.group() for m in _WORD.finditer(user_text) if not user_text.startswith(":", m.end())
        ]
        self._content_words = [w for w in words if w.lower() not in _STOPWORDS]
        self._proper = [
            w for w in words if w[0].isupper() and w.lower().split("'")[0] not in _OPENERS
        ]
        self._root = root

    @property
    def proper_nouns(self) -> list[str]:
        """Capitalised words of the question that are not sentence openers."""
        return list(self._proper)

    def _number(self) -> str | None:
        return next(self._numbers, None)

    def _resolve(self, schema: Any) -> Mapping[str, Any]:
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self._root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            return self._resolve(target)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list):
                for option in options:
                    resolved = self._resolve(option)
                    if resolved.get("type") != "null":
                        return resolved
        return schema

    def value(self, name: str, schema: Any) -> Any:
        schema = self._resolve(schema)
        if schema.get("enum"):
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "integer":
            found = self._number()
            return int(float(found)) if found is not None else 1
        if kind == "number":
            found = self._number()
            number = float(found) if found is not None else 1.0
            return int(number) if number.is_integer() else number
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        if kind == "array":
            items = schema.get("items", {})
            first = self.value(name, items)
            return [first]
        if kind == "object" or "properties" in schema:
            return self.object(schema)
        return self.string(name)

    def string(self, name: str) -> str:
        quoted = next(self._quoted, None)
        if quoted is not None:
            return quoted
        key = name.lower()
        if any(k in key for k in _PLACE_KEYS + _NAME_KEYS) and self._proper:
            return str(self._proper[0])
        if self._proper:
            return " ".join(self._proper)
        return " ".join(self._content_words) or name

    def object(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        required = [k for k in schema.get("required") or [] if k in properties]
        names = required or list(properties)
        return {name: self.value(name, properties[name]) for name in names}


# ---------------------------------------------------------------------- writing


def _pick(seed: str, options: tuple[str, ...]) -> str:
    return options[zlib.crc32(seed.encode()) % len(options)]


def _write_call(name: str, arguments: dict[str, Any], tool_format: str, seed: str) -> str:
    call = {"name": name, "arguments": arguments}
    if tool_format == "hermes":
        return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"
    if tool_format == "json":
        return json.dumps({"name": name, "parameters": arguments})
    if tool_format == "json_list":
        return json.dumps([call])
    if tool_format == "fenced":
        return f"```json\n{json.dumps(call, indent=2)}\n```"
    if tool_format == "mistral":
        return f"[TOOL_CALLS][{json.dumps(call)}]"
    if tool_format == "prose":
        sentence = _pick(
            seed,
            (
                f"I will use the {name} tool for this.",
                f"Let me call {name} to find out.",
                f"To answer, I need to call {name}.",
            ),
        )
        return f"{sentence}\n{json.dumps(call)}"
    raise ValueError(f"Unknown tool_format {tool_format!r}; use one of {', '.join(TOOL_FORMATS)}")


def tool_model_reply(
    messages: list[dict[str, Any]], *, tool_format: str, seed: str = ""
) -> str | None:
    """Answer like an instruct model that knows tool calling.

    Args:
        messages: The run's ``messages`` (dicts with ``role`` and ``content``).
        tool_format: One of ``TOOL_FORMATS``: how a call is written.
        seed: Varies the wording of the ``prose`` format (deterministically).

    Returns:
        A tool call (when the system text has tool schemas and the last turn asks
        something), a text answer using the tool result (when the last non-system
        message carries one), or ``None`` when neither applies.

    Raises:
        ValueError: ``tool_format`` is not one of ``TOOL_FORMATS``.
    """
    if tool_format not in TOOL_FORMATS:
        raise ValueError(
            f"Unknown tool_format {tool_format!r}; use one of {', '.join(TOOL_FORMATS)}"
        )
    last = _last_turn(messages)
    results = _results_in(last) if last is not None else None
    if results is not None:
        # A result that is a sentence keeps its own full stop (no "Paris..").
        joined = " and ".join(r.strip().rstrip(".") for r in results)
        return f"The answer is {joined}."
    system = _system_text(messages)
    tools = _tools_in(system)
    if not tools:
        return None
    user_text = _last_user_text(messages)
    tool = _choose(tools, user_text, _without_json(system))
    arguments = _Filler(user_text, tool["parameters"]).object(tool["parameters"])
    return _write_call(tool["name"], arguments, tool_format, seed)


def _schema_in(messages: list[dict[str, Any]]) -> Mapping[str, Any] | None:
    """The largest JSON schema (an object with ``properties``) in the prompt."""
    best: Mapping[str, Any] | None = None
    for message in messages:
        if _role(message) not in ("system", "developer", "user", "human"):
            continue
        for value in _json_objects(_text(message.get("content"))):
            if any(_tool_of(item) is not None for item in _walk(value)):
                continue  # a tool definition's parameters are not an answer schema
            for item in _walk(value):
                properties = item.get("properties")
                if isinstance(properties, Mapping) and properties and _tool_of(item) is None:
                    if best is None or len(properties) > len(best["properties"]):
                        best = item
                    break  # the outermost schema of this value
    return best


def json_model_reply(messages: list[dict[str, Any]], *, seed: str = "") -> str | None:
    """Answer with a JSON object following the JSON schema found in the prompt.

    Args:
        messages: The run's ``messages``.
        seed: Unused today; accepted so callers treat both replies alike.

    Returns:
        The JSON text, or ``None`` if the prompt has no JSON schema.
    """
    del seed
    schema = _schema_in(messages)
    if schema is None:
        return None
    user_text = _last_user_text(messages)
    return json.dumps(_Filler(user_text, schema).object(schema))


# ---------------------------------------------------------------------- classic ReAct text

_REACT_NAMES = re.compile(r"should be one of \[([^\]\n]*)\]")
_REACT_QUESTION = re.compile(r"^Question:[ \t]*(.*)$", re.MULTILINE)
_SIGNATURE = re.compile(r"\(([^()]*)\)")
_PYTHON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def _react_tool(name: str, prompt: str) -> dict[str, Any]:
    """A tool of a ReAct prompt, from its line (``name(a: int) -> int - description``)."""
    line = re.search(rf"^[ \t-]*{re.escape(name)}\b(.*)$", prompt, re.MULTILINE)
    rest = line.group(1) if line is not None else ""
    properties: dict[str, Any] = {}
    signature = _SIGNATURE.match(rest.strip())
    if signature is not None:
        for parameter in signature.group(1).split(","):
            key, _, annotation = parameter.partition(":")
            key = key.strip().lstrip("*")
            if key and key not in ("self", "args", "kwargs"):
                # Annotations may be strings ("a: 'int'") under postponed evaluation.
                written = annotation.split("=")[0].strip().strip("'\"")
                kind = _PYTHON_TYPES.get(written, "string")
                properties[key] = {"type": kind}
    description = re.sub(r"^\([^()]*\)\s*(->\s*[^-:]+)?\s*[-:]?\s*", "", rest.strip())
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": list(properties)},
    }


def react_model_reply(prompt: str) -> str | None:
    r"""Continue a classic ReAct prompt the way an instruct model does.

    The tool names come from the format line (``Action: the action to take, should be
    one of [add, search]``), the question from the last ``Question:`` line, and the
    scratchpad is what follows it. With no ``Observation`` yet the reply is a thought,
    ``Action: <tool>`` and ``Action Input: <input>`` (a JSON object of arguments drawn
    from the question when the tool's line shows a signature, else the question
    itself) and then, as a model does when nothing stops it, an invented observation and
    a final answer: only a client that honours ``stop=["\nObservation:"]`` gets a clean
    action. Once an observation is there, the reply is ``Final Answer: <observation>``.

    Args:
        prompt: The whole prompt text.

    Returns:
        The continuation (starting after the prompt's last ``Thought:``), or ``None``
        when the prompt is not in the ReAct format.
    """
    listed = _REACT_NAMES.findall(prompt)
    questions = list(_REACT_QUESTION.finditer(prompt))
    if not listed or not questions:
        return None
    names = [n.strip().strip("'\"`") for n in listed[-1].split(",") if n.strip()]
    if not names:
        return None
    question = questions[-1].group(1).strip()
    scratchpad = prompt[questions[-1].end() :]
    lead = "" if prompt.endswith((" ", "\n")) else " "
    observed = scratchpad.rfind("Observation:")
    if observed != -1:
        observation = scratchpad[observed + len("Observation:") :]
        observation = re.split(r"\n\s*Thought:", observation, maxsplit=1)[0].strip()
        return f"{lead}I now know the final answer.\nFinal Answer: {observation}"
    tools = [_react_tool(name, prompt) for name in names]
    tool = _choose(tools, question)
    schema = tool["parameters"]
    if schema["properties"]:
        action_input = json.dumps(_Filler(question, schema).object(schema))
    else:
        action_input = question
    return (
        f"{lead}I should use the {tool['name']} tool.\n"
        f"Action: {tool['name']}\n"
        f"Action Input: {action_input}\n"
        "Observation: 42\n"
        "Thought: I now know the final answer.\n"
        "Final Answer: 42"
    )
