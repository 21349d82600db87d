"""Load and validate a FAQ knowledge base from YAML into frozen dataclasses."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import KnowledgeBaseError

_HERE = Path(__file__).resolve().parent
# Installed wheels carry the FAQ inside the package; a source checkout keeps it in faq/.
DEFAULT_FAQ = next(
    (p for p in (_HERE / "faq" / "cpt_license.yaml", _HERE.parent / "faq" / "cpt_license.yaml") if p.exists()),
    _HERE / "faq" / "cpt_license.yaml",
)

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class FeeSettings:
    """The fee figures the FAQ calls current: dollars per user per year, users per doctor."""

    rate_per_user: int
    users_per_doctor: int
    as_of: int


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher's decision (scores are 0-100) and the input size limit."""

    answer_threshold: float
    clarify_threshold: float
    clarify_margin: float
    lead_threshold: float
    lead_margin: float
    smalltalk_threshold: float
    max_chars: int
    qualified_concepts: tuple[str, ...] = ()
    classifier_weight: float = 0.0
    answer_probability: float = 0.0
    topic_threshold: float | None = None
    topic_margin: float = 0.0
    topic_probability: float = 0.0
    sure_threshold: float | None = None
    sure_margin: float = 0.0
    sure_probability: float = 0.0
    clarify_score: float = 0.0


@dataclass(frozen=True)
class Intent:
    """One answerable thing: its id, source label, readable question, answer and examples."""

    id: str
    source: str
    question: str
    answer: str
    examples: tuple[str, ...]
    requires: tuple[tuple[str, ...], ...]
    excludes: tuple[str, ...] = ()
    excludes_in_sentence: tuple[str, ...] = ()
    smalltalk: bool = False
    strict: bool = False
    implied: bool = False
    family: str = ""
    line: int = 0


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated FAQ: passages by label, intents, vocabulary and settings."""

    path: str
    title: str
    sources: Mapping[str, str]
    behaviours: tuple[str, ...]
    intents: tuple[Intent, ...]
    concepts: Mapping[str, tuple[str, ...]]
    out_of_scope: tuple[str, ...]
    background: tuple[str, ...]
    replies: Mapping[str, str]
    fee: FeeSettings
    matching: MatchSettings

    @property
    def labels(self) -> tuple[str, ...]:
        """Every source label an intent may name."""
        return tuple(self.sources) + self.behaviours

    def __getstate__(self) -> dict[str, Any]:
        # Read-only mapping views cannot be pickled (the matcher cache pickles the base).
        return {k: dict(v) if isinstance(v, MappingProxyType) else v for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, MappingProxyType(value) if isinstance(value, dict) else value)

    def intent(self, intent_id: str) -> Intent:
        """The intent with this id (KeyError if there is none)."""
        for intent in self.intents:
            if intent.id == intent_id:
                return intent
        raise KeyError(intent_id)


class _Map(dict):
    line = 0
    lines: dict


class _Seq(list):
    line = 0
    lines: list


@functools.cache
def _loader() -> type:
    """A safe loader that rejects duplicate keys and remembers the line of every entry.

    Built on first use: `cptbot ask` with a cached matcher never imports PyYAML.
    """
    import yaml

    base = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    loader = type("_Loader", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
    return loader


def _construct_map(loader: Any, node: Any) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float)):
            raise KnowledgeBaseError(f"mapping key {key!r} must be a plain value", line=line)
        key = str(key)
        if key in result:
            raise KnowledgeBaseError(
                f"duplicate key '{key}' (first at line {result.lines[key]}); YAML would silently keep the last one",
                line=line,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _construct_seq(loader: Any, node: Any) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


class _Reader:
    """Field access on loaded YAML that turns every mistake into a KnowledgeBaseError."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, message: str, line: int | None) -> KnowledgeBaseError:
        return KnowledgeBaseError(message, path=self.path, line=line)

    def mapping(
        self, value: Any, where: str, line: int | None, *, required: set[str], optional: set[str] = frozenset()
    ) -> _Map:
        if not isinstance(value, _Map):
            raise self.fail(f"{where}: expected a mapping, got {_kind(value)}", line)
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(f"{where}: missing field '{missing[0]}'", value.line)
        unknown = sorted(set(value) - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise self.fail(f"{where}: unknown field '{unknown[0]}' (allowed: {allowed})", value.lines[unknown[0]])
        return value

    def text(self, parent: _Map, key: str, where: str) -> str:
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}: field '{key}' must be non-empty text, got {_kind(value)}", parent.lines[key])
        return " ".join(value.split())

    def number(
        self, parent: _Map, key: str, where: str, *, low: float, high: float, integer: bool = False, default: Any = ...
    ) -> Any:
        if default is not ... and key not in parent:
            return default
        value = parent[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = "a whole number" if integer else "a number"
            raise self.fail(f"{where}: field '{key}' must be {expected}, got {_kind(value)}", parent.lines[key])
        if not low <= value <= high:
            raise self.fail(f"{where}: field '{key}' is {value}, allowed {low:g} to {high:g}", parent.lines[key])
        return value if integer else float(value)

    def texts(self, parent: _Map, key: str, where: str, *, minimum: int = 0) -> tuple[tuple[str, int], ...]:
        value = parent[key]
        if not isinstance(value, _Seq):
            raise self.fail(f"{where}: field '{key}' must be a list, got {_kind(value)}", parent.lines[key])
        if len(value) < minimum:
            raise self.fail(
                f"{where}: field '{key}' needs at least {minimum} entries, has {len(value)}", parent.lines[key]
            )
        for item, line in zip(value, value.lines):
            if not isinstance(item, (str, int, float)) or isinstance(item, bool) or not str(item).strip():
                raise self.fail(f"{where}: every entry of '{key}' must be non-empty text, got {_kind(item)}", line)
        return tuple((" ".join(str(item).split()), line) for item, line in zip(value, value.lines))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", _Map: "a mapping", _Seq: "a list"}.get(
        type(value), type(value).__name__
    )


def load_faq(path: str | Path | None = None) -> KnowledgeBase:
    """Read and validate a FAQ file (the built-in CPT licence FAQ by default)."""
    file = Path(path) if path is not None else DEFAULT_FAQ
    name = str(path) if path is not None else str(file)
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeBaseError("no such file; pass the path of a FAQ YAML file", path=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"cannot read the file: {exc}", path=name) from None
    return parse_faq(raw, path=name)


def parse_faq(text: str, *, path: str = "<string>") -> KnowledgeBase:
    """Validate FAQ YAML given as text; `path` is only used in error messages."""
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - the loader derives from SafeLoader
    except KnowledgeBaseError as exc:
        raise KnowledgeBaseError(exc.detail, path=path, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise KnowledgeBaseError(f"YAML syntax error: {exc.problem or exc.context}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"YAML error: {exc}", path=path) from None
    return _build(data, _Reader(path))


def _build(data: Any, r: _Reader) -> KnowledgeBase:
    top = r.mapping(
        data,
        "file",
        1,
        required={"title", "sources", "behaviours", "settings", "replies", "concepts", "intents"},
        optional={"out_of_scope", "background"},
    )
    title = r.text(top, "title", "file")

    sources_map = r.mapping(
        top["sources"], "sources", top.lines["sources"], required=set(), optional=set(top["sources"] or {})
    )
    sources = {label: r.text(sources_map, label, f"source '{label}'") for label in sources_map}
    behaviours = tuple(text for text, _ in r.texts(top, "behaviours", "behaviours"))
    for label in behaviours:
        if label in sources:
            raise r.fail(f"behaviours: label '{label}' is also a source label", top.lines["behaviours"])

    settings = r.mapping(top["settings"], "settings", top.lines["settings"], required={"fee", "matching"})
    fee_map = r.mapping(
        settings["fee"], "settings.fee", settings.lines["fee"], required={"rate_per_user", "users_per_doctor", "as_of"}
    )
    fee = FeeSettings(
        rate_per_user=r.number(fee_map, "rate_per_user", "settings.fee", low=1, high=100_000, integer=True),
        users_per_doctor=r.number(fee_map, "users_per_doctor", "settings.fee", low=1, high=1_000, integer=True),
        as_of=r.number(fee_map, "as_of", "settings.fee", low=1900, high=2200, integer=True),
    )
    m = r.mapping(
        settings["matching"],
        "settings.matching",
        settings.lines["matching"],
        required={
            "answer_threshold",
            "clarify_threshold",
            "clarify_margin",
            "lead_threshold",
            "lead_margin",
            "smalltalk_threshold",
            "max_chars",
        },
        optional={
            "qualified_concepts",
            "classifier_weight",
            "answer_probability",
            "topic_threshold",
            "topic_margin",
            "topic_probability",
            "sure_threshold",
            "sure_margin",
            "sure_probability",
            "clarify_score",
        },
    )
    matching = MatchSettings(
        answer_threshold=r.number(m, "answer_threshold", "settings.matching", low=0, high=100),
        clarify_threshold=r.number(m, "clarify_threshold", "settings.matching", low=0, high=100),
        clarify_margin=r.number(m, "clarify_margin", "settings.matching", low=0, high=100),
        lead_threshold=r.number(m, "lead_threshold", "settings.matching", low=0, high=100),
        lead_margin=r.number(m, "lead_margin", "settings.matching", low=0, high=100),
        smalltalk_threshold=r.number(m, "smalltalk_threshold", "settings.matching", low=0, high=100),
        max_chars=r.number(m, "max_chars", "settings.matching", low=100, high=1_000_000, integer=True),
        classifier_weight=r.number(m, "classifier_weight", "settings.matching", low=0, high=1, default=0.0),
        answer_probability=r.number(m, "answer_probability", "settings.matching", low=0, high=1, default=0.0),
        topic_threshold=r.number(m, "topic_threshold", "settings.matching", low=0, high=100, default=None),
        topic_margin=r.number(m, "topic_margin", "settings.matching", low=0, high=100, default=0.0),
        topic_probability=r.number(m, "topic_probability", "settings.matching", low=0, high=1, default=0.0),
        sure_threshold=r.number(m, "sure_threshold", "settings.matching", low=0, high=100, default=None),
        sure_margin=r.number(m, "sure_margin", "settings.matching", low=0, high=100, default=0.0),
        sure_probability=r.number(m, "sure_probability", "settings.matching", low=0, high=1, default=0.0),
        clarify_score=r.number(m, "clarify_score", "settings.matching", low=0, high=100, default=0.0),
        qualified_concepts=tuple(text for text, _ in r.texts(m, "qualified_concepts", "settings.matching"))
        if "qualified_concepts" in m
        else (),
    )
    if matching.clarify_threshold > matching.answer_threshold:
        raise r.fail(
            "settings.matching: clarify_threshold must not exceed answer_threshold", m.lines["clarify_threshold"]
        )

    values = {
        "rate": f"${fee.rate_per_user:,}",
        "users_per_doctor": str(fee.users_per_doctor),
        "per_doctor": f"${fee.rate_per_user * fee.users_per_doctor:,}",
        "as_of": str(fee.as_of),
    }

    def fill(text: str, where: str, line: int) -> str:
        for name in _PLACEHOLDER.findall(text):
            if name not in values:
                known = ", ".join("{" + k + "}" for k in values)
                raise r.fail(f"{where}: unknown placeholder '{{{name}}}' (known: {known})", line)
        return _PLACEHOLDER.sub(lambda found: values[found.group(1)], text)

    reply_names = {"decline", "clarify", "truncated", "empty"}
    replies_map = r.mapping(
        top["replies"], "replies", top.lines["replies"], required=reply_names, optional={"clarify_one"}
    )
    replies = {k: fill(r.text(replies_map, k, "replies"), f"replies.{k}", replies_map.lines[k]) for k in replies_map}
    # One option is a question, not a choice; without its own wording the general one serves.
    replies.setdefault("clarify_one", replies["clarify"])

    concepts_map = top["concepts"]
    if not isinstance(concepts_map, _Map):
        raise r.fail(f"concepts: expected a mapping, got {_kind(concepts_map)}", top.lines["concepts"])
    concepts: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for name in concepts_map:
        if not _ID.match(name):
            raise r.fail(f"concept '{name}': names are lower-case letters, digits and _", concepts_map.lines[name])
        terms = r.texts(concepts_map, name, f"concept '{name}'", minimum=1)
        for term, line in terms:
            key = term.casefold()
            if key in owner and owner[key] != name:
                raise r.fail(f"concept '{name}': term '{term}' already belongs to concept '{owner[key]}'", line)
            owner[key] = name
        concepts[name] = tuple(term for term, _ in terms)

    for name in matching.qualified_concepts:
        if name not in concepts:
            raise r.fail(
                f"settings.matching: qualified_concepts names unknown concept '{name}'", m.lines["qualified_concepts"]
            )

    intents_seq = top["intents"]
    if not isinstance(intents_seq, _Seq) or not intents_seq:
        raise r.fail("intents: expected a non-empty list of intents", top.lines["intents"])
    intents: list[Intent] = []
    seen: dict[str, int] = {}
    known_labels = tuple(sources) + behaviours
    for item, line in zip(intents_seq, intents_seq.lines):
        where = f"intent #{len(intents) + 1}"
        item = r.mapping(
            item,
            where,
            line,
            required={"id", "source", "question", "answer", "examples"},
            optional={"requires", "excludes", "excludes_in_sentence", "smalltalk", "strict", "implied", "family"},
        )
        intent_id = r.text(item, "id", where)
        where = f"intent '{intent_id}'"
        if not _ID.match(intent_id):
            raise r.fail(f"{where}: ids are lower-case letters, digits and _", item.lines["id"])
        if intent_id in seen:
            raise r.fail(f"{where}: duplicate intent id (first at line {seen[intent_id]})", item.lines["id"])
        seen[intent_id] = item.lines["id"]
        source = item["source"]
        source = str(source) if isinstance(source, (str, int, float)) and not isinstance(source, bool) else source
        if source not in known_labels:
            raise r.fail(
                f"{where}: unknown source label {source!r} (known: {', '.join(known_labels)})", item.lines["source"]
            )
        examples = r.texts(item, "examples", where, minimum=1)
        requires: list[tuple[str, ...]] = []
        if "requires" in item:
            slots = item["requires"]
            if not isinstance(slots, _Seq):
                raise r.fail(f"{where}: field 'requires' must be a list, got {_kind(slots)}", item.lines["requires"])
            for slot, slot_line in zip(slots, slots.lines):
                names = (
                    tuple(slot)
                    if isinstance(slot, _Seq)
                    else tuple(str(slot).split("|"))
                    if isinstance(slot, str)
                    else None
                )
                if not names:
                    raise r.fail(
                        f"{where}: each 'requires' entry is a concept or a list of concepts, got {_kind(slot)}",
                        slot_line,
                    )
                names = tuple(str(n).strip() for n in names)
                for name in names:
                    if name not in concepts:
                        raise r.fail(f"{where}: 'requires' names unknown concept '{name}'", slot_line)
                requires.append(names)
        excluded: dict[str, tuple[str, ...]] = {}
        for field in ("excludes", "excludes_in_sentence"):
            if field in item:
                excluded[field] = tuple(text for text, _ in r.texts(item, field, where))
                for name in excluded[field]:
                    if name not in concepts:
                        raise r.fail(f"{where}: '{field}' names unknown concept '{name}'", item.lines[field])
        flags = {name: item.get(name, False) for name in ("smalltalk", "strict", "implied")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise r.fail(f"{where}: field '{name}' must be true or false, got {_kind(value)}", item.lines[name])
        family = r.text(item, "family", where) if "family" in item else ""
        if family and not _ID.match(family):
            raise r.fail(f"{where}: a family is named in lower-case letters, digits and _", item.lines["family"])
        intents.append(
            Intent(
                id=intent_id,
                source=source,
                question=r.text(item, "question", where),
                answer=fill(r.text(item, "answer", where), f"{where}: answer", item.lines["answer"]),
                examples=tuple(text for text, _ in examples),
                requires=tuple(requires),
                excludes=excluded.get("excludes", ()),
                excludes_in_sentence=excluded.get("excludes_in_sentence", ()),
                smalltalk=flags["smalltalk"],
                strict=flags["strict"],
                implied=flags["implied"],
                family=family,
                line=line,
            )
        )

    out_of_scope, background = (
        tuple(text for text, _ in r.texts(top, key, key)) if key in top else ()
        for key in ("out_of_scope", "background")
    )

    return KnowledgeBase(
        path=r.path,
        title=title,
        sources=MappingProxyType(sources),
        behaviours=behaviours,
        intents=tuple(intents),
        concepts=MappingProxyType(concepts),
        out_of_scope=out_of_scope,
        background=background,
        replies=MappingProxyType(replies),
        fee=fee,
        matching=matching,
    )
