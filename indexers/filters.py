"""Haystack 2.x/3.x metadata filters, validated and compiled to SQL so the database evaluates them.

A filter compiles to a *verdict* per document row: MATCH, NO_MATCH, or RAISES where Haystack's own evaluator
(`haystack.utils.filters.document_matches_filter`) would raise on that document, e.g. a number compared with a
string by `>`. AND/OR stop at the first condition that decides (as Haystack's `all`/`any` do), so a condition
that would raise only raises when Haystack reaches it. Semantics are Haystack's, except (all stricter):
- refused up front, whatever is stored: list/dict values in `==`/`!=`/`in`, a non-list `in`, and `>`..`<=`
  with anything but None, a number or an ISO date `YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM]` (Haystack
  raises only once a stored value reaches the comparison, and parses dateutil's lenient forms such as "5");
  so are the fields embedding, sparse_embedding, blob, score, bare meta, and meta keys empty or holding " or \\;
- a stored date string in another spelling ("2020-01-01T10", "5 May 2020") raises under `>`..`<=` and equals
  only its exact string under `==`; Haystack parses it. Dates compare to the millisecond on SQLite;
- on PostgreSQL a stored "YYYY-02-29" of a common year fails every date comparison of that field;
- where Haystack raises TypeError (a stored list compared by `>`), we raise our filter error too.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from indexers.errors import ConfigError

__all__ = ["MATCH", "NO_MATCH", "RAISES", "MAX_DEPTH", "MAX_NODES", "MAX_VALUES", "check_filters", "compile_filters"]

NO_MATCH, MATCH, RAISES = 0, 1, 2
MAX_DEPTH = 16  # nesting of logical conditions
MAX_NODES = 512  # conditions in one filter (logical + comparison)
MAX_VALUES = 4096  # values in all `in` / `not in` lists together

COMPARISONS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")
LOGICALS = ("AND", "OR", "NOT")
_ORDERING = {">": "__gt__", ">=": "__ge__", "<": "__lt__", "<=": "__le__"}
_UNFILTERABLE = ("embedding", "sparse_embedding", "blob", "score", "meta")
_DAY = r"\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|02-(0[1-9]|1\d|2\d))"
_TIME = r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?"
_ISO = re.compile(_DAY + _TIME)  # what PostgreSQL casts without error (but Feb 29 of a common year)
_PG_ISO = f"^{_DAY}{_TIME}$"
_ISO_HINT = "an ISO 8601 date like '2020-01-31' or '2020-01-31T12:00:00+02:00'"
_SQLITE_NORM = "%Y-%m-%d %H:%M:%f"
_SQLITE_TZ = ("*Z", "*[+-][0-9][0-9]:[0-9][0-9]")


def _iso_date(value: Any) -> datetime | None:
    """`value` as a datetime when it is a datetime or a str in the ISO form we compile; else None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _check_scalar(value: Any, path: str, op: str) -> None:
    if value is None or isinstance(value, (bool, str, datetime)):
        return
    if isinstance(value, int):
        if not -2**63 <= value < 2**63:
            raise ConfigError(f"{path}: {value} does not fit in 64 bits: compare with a smaller number")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{path}: {value} is not a finite number: use a finite float")
        return
    raise ConfigError(f"{path}: {op!r} compares with None, a bool, a number, a str or a datetime, got "
                      f"{type(value).__name__} {value!r}: compare scalar fields one by one (e.g. 'meta.a.b')")


def _check_comparison(cond: dict[str, Any], path: str) -> int:
    for key in ("operator", "value"):
        if key not in cond:
            raise ConfigError(f"{path}: comparison {cond} has no {key!r} key")
    field, op, value = cond["field"], cond["operator"], cond["value"]
    if not isinstance(field, str):
        raise ConfigError(f"{path}: 'field' must be a str like 'meta.year', got {field!r}")
    if op not in COMPARISONS:
        raise ConfigError(f"{path}: unknown comparison operator {op!r}; valid are {sorted(COMPARISONS)}")
    if field in _UNFILTERABLE:
        raise ConfigError(f"{path}: field {field!r} cannot be filtered in SQL: filter on 'id', 'content' or 'meta.<key>'")
    parts = field.split(".")
    if parts[0] == "meta":
        for key in parts[1:]:
            if not key or '"' in key or "\\" in key:
                raise ConfigError(f"{path}: meta key {key!r} in field {field!r} is empty or holds '\"' or '\\': "
                                  "rename the key")
    if op in ("in", "not in"):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {op!r} takes a list, got {type(value).__name__} {value!r}: write [{value!r}]")
        for i, v in enumerate(value):
            _check_scalar(v, f"{path}.value[{i}]", op)
        return len(value)
    if op in ("==", "!="):
        _check_scalar(value, path, op)
        return 1
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))) \
            and _iso_date(value) is None:
        raise ConfigError(f"{path}: {op!r} compares numbers or dates; got {type(value).__name__} {value!r}: "
                          f"use a number or {_ISO_HINT}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_scalar(value, path, op)
    return 1


def check_filters(filters: Any) -> dict[str, Any]:
    """Validate a Haystack filter up front (so an empty store rejects it too); returns it. `ConfigError` says
    what to write instead."""
    counts = [0, 0]  # nodes, values

    def walk(cond: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: filters nest deeper than {MAX_DEPTH} levels: flatten AND/OR chains")
        counts[0] += 1
        if counts[0] > MAX_NODES:
            raise ConfigError(f"filters hold more than {MAX_NODES} conditions: use 'in' with a list, or split the query")
        if not isinstance(cond, dict):
            raise ConfigError(f"{path} must be a dict, got {type(cond).__name__}")
        if "field" in cond:
            counts[1] += _check_comparison(cond, path)
            if counts[1] > MAX_VALUES:
                raise ConfigError(f"filters hold more than {MAX_VALUES} values: split the query")
            return
        for key in ("operator", "conditions"):
            if key not in cond:
                raise ConfigError(f"{path}: logic condition {cond} has no {key!r} key "
                                  "(a comparison needs 'field', 'operator', 'value')")
        if cond["operator"] not in LOGICALS:
            raise ConfigError(f"{path}: unknown logical operator {cond['operator']!r}; valid are {sorted(LOGICALS)}")
        if not isinstance(cond["conditions"], list):
            raise ConfigError(f"{path}: 'conditions' must be a list, got {type(cond['conditions']).__name__}")
        for i, sub in enumerate(cond["conditions"]):
            walk(sub, f"{path}.conditions[{i}]", depth + 1)

    walk(filters, "filters", 0)
    return filters


# ---------------------------------------------------------------------------------------------- fields


class _Field:
    """Typed views of one field per row: `kind` is 'null' (missing too), 'num' (bools too), 'str' or 'other'."""

    def __init__(self, kind: sa.ColumnElement[Any], num: sa.ColumnElement[Any], text: sa.ColumnElement[Any]) -> None:
        self.kind, self.num, self.text = kind, num, text

    def is_(self, kind: str) -> sa.ColumnElement[bool]:
        return self.kind == kind


def _const_null() -> _Field:
    return _Field(sa.literal("null"), sa.null(), sa.null())


def _meta_field(metadata: sa.ColumnElement[Any], keys: list[str], dialect: str) -> _Field:
    if dialect == "sqlite":
        def jtype(ks: list[str]) -> sa.ColumnElement[Any]:
            return sa.func.json_type(metadata, sa.literal("$" + "".join(f'."{k}"' for k in ks)))
        raw = jtype(keys)
        kinds = [(raw.in_(("integer", "real", "true", "false")), "num"), (raw == "text", "str"),
                 (raw.in_(("array", "object")), "other")]
        value = sa.func.json_extract(metadata, sa.literal("$" + "".join(f'."{k}"' for k in keys)))
        num, text = value, value
    else:
        doc = sa.cast(metadata, sa.dialects.postgresql.JSONB)

        def jtype(ks: list[str]) -> sa.ColumnElement[Any]:
            return sa.func.jsonb_typeof(sa.func.jsonb_extract_path(doc, *[sa.literal(k) for k in ks]))
        raw = jtype(keys)
        kinds = [(raw.in_(("number", "boolean")), "num"), (raw == "string", "str"),
                 (raw.in_(("array", "object")), "other")]
        text = sa.func.jsonb_extract_path_text(doc, *[sa.literal(k) for k in keys])
        num = sa.case((raw == "number", sa.cast(text, sa.Numeric)), (raw == "boolean", sa.case((text == "true", 1), else_=0)))
    guard = [jtype(keys[:i]) == ("object") for i in range(1, len(keys))]  # walk dicts only (not list indices)
    kind = sa.case(*[(sa.and_(*guard, c), k) for c, k in kinds], else_="null") if guard else \
        sa.case(*kinds, else_="null")
    return _Field(kind, num, text)


def _field(name: str, docs: sa.Table, dialect: str, reserved_key: str | None) -> _Field:
    parts = name.split(".")
    if len(parts) == 1 and name == "id":
        return _Field(sa.literal("str"), sa.null(), docs.c.id)
    if len(parts) == 1 and name == "content":
        if reserved_key is None:
            return _Field(sa.literal("str"), sa.null(), docs.c.text)
        return _Field(sa.case((_content_is_none(docs, reserved_key, dialect), "null"), else_="str"),
                      sa.null(), docs.c.text)
    if len(parts) == 1:
        parts = ["meta", name]  # Haystack reads a bare unknown field as a meta key (converted legacy filters)
    if parts[0] != "meta" or (reserved_key is not None and parts[1] == reserved_key):
        return _const_null()  # Haystack: a dotted field whose root is not `meta` is missing
    return _meta_field(docs.c.metadata, parts[1:], dialect)


def _content_is_none(docs: sa.Table, reserved_key: str, dialect: str) -> sa.ColumnElement[bool]:
    """The adapter's record says content is None (its key `content` exists and holds null)."""
    if dialect == "sqlite":
        return sa.func.json_type(docs.c.metadata, sa.literal(f'$."{reserved_key}"."content"')) == "null"
    doc = sa.cast(docs.c.metadata, sa.dialects.postgresql.JSONB)
    return sa.func.jsonb_typeof(sa.func.jsonb_extract_path(doc, sa.literal(reserved_key), sa.literal("content"))) == "null"


# ---------------------------------------------------------------------------------------------- dates


def _date_ok(f: _Field, dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "sqlite":
        return sa.and_(f.is_("str"), f.text.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"),
                       sa.or_(sa.func.length(f.text) == 10, sa.func.substr(f.text, 11, 1).in_(("T", " "))),
                       sa.func.strftime(_SQLITE_NORM, _sqlite_wall(f.text)).is_not(None),
                       sa.func.date(_sqlite_wall(f.text), "+0 days") == sa.func.substr(f.text, 1, 10))  # no Feb 30
    return sa.and_(f.is_("str"), f.text.regexp_match(_PG_ISO))


def _sqlite_aware(text: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return sa.and_(sa.func.length(text) > 10, sa.or_(*[text.op("GLOB")(p) for p in _SQLITE_TZ]))


def _sqlite_wall(text: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.case((sa.func.length(text) <= 10, text),
                   (text.op("GLOB")(_SQLITE_TZ[0]), sa.func.substr(text, 1, sa.func.length(text) - 1)),
                   (text.op("GLOB")(_SQLITE_TZ[1]), sa.func.substr(text, 1, sa.func.length(text) - 6)),
                   else_=text)


def _date_cmp(f: _Field, op: str, value: datetime, dialect: str) -> sa.ColumnElement[bool]:
    """Haystack's rule: two aware datetimes compare as instants; otherwise the naive one takes the other's zone,
    i.e. both compare as wall-clock times."""
    method = {"==": "__eq__", **_ORDERING}[op]
    wall_value = value.replace(tzinfo=None)
    if dialect == "sqlite":
        wall = getattr(sa.func.strftime(_SQLITE_NORM, _sqlite_wall(f.text)), method)(
            sa.func.strftime(_SQLITE_NORM, sa.literal(wall_value.isoformat())))
        if value.tzinfo is None:
            return wall
        instant = getattr(sa.func.strftime(_SQLITE_NORM, f.text), method)(
            sa.func.strftime(_SQLITE_NORM, sa.literal(value.isoformat())))
        return sa.case((_sqlite_aware(f.text), instant), else_=wall)
    wall = getattr(sa.cast(f.text, sa.DateTime()), method)(sa.literal(wall_value, sa.DateTime()))
    if value.tzinfo is None:
        return wall
    instant = getattr(sa.cast(f.text, sa.DateTime(timezone=True)), method)(sa.literal(value, sa.DateTime(timezone=True)))
    return sa.case((f.text.regexp_match(r"(Z|[+-]\d\d:\d\d)$"), instant), else_=wall)


# ---------------------------------------------------------------------------------------------- compile


def _equal(f: _Field, value: Any, dialect: str) -> sa.ColumnElement[bool]:
    if value is None:
        return f.is_("null")
    if isinstance(value, (bool, int, float)):
        bound = sa.literal(int(value) if isinstance(value, bool) else value,
                           sa.Float() if isinstance(value, float) else sa.BigInteger())
        return sa.and_(f.is_("num"), f.num == bound)
    date = _iso_date(value)
    text = value.isoformat() if isinstance(value, datetime) else value
    same = sa.and_(f.is_("str"), f.text == sa.literal(text))
    if date is None:
        return same
    return sa.or_(same, sa.and_(_date_ok(f, dialect), _date_cmp(f, "==", date, dialect)))


def _one_of(f: _Field, values: list[Any], dialect: str) -> sa.ColumnElement[bool]:
    """`any(_equal(...))`, with plain numbers and non-date strings as one SQL IN each (one extraction per row)."""
    nums = [int(v) if isinstance(v, bool) else v for v in values if isinstance(v, (bool, int, float))]
    strs = [v for v in values if isinstance(v, str) and _iso_date(v) is None]
    rest = [v for v in values if v is None or isinstance(v, datetime) or (isinstance(v, str) and v not in strs)]
    parts = [_equal(f, v, dialect) for v in dict.fromkeys(rest)]
    if nums:
        typ = sa.Float() if any(isinstance(v, float) for v in nums) else sa.BigInteger()
        parts.append(sa.and_(f.is_("num"), f.num.in_([sa.literal(v, typ) for v in nums])))
    if strs:
        parts.append(sa.and_(f.is_("str"), f.text.in_([sa.literal(v) for v in strs])))
    return sa.or_(sa.false(), *parts)


def _leaf(cond: dict[str, Any], docs: sa.Table, dialect: str, reserved_key: str | None) -> sa.ColumnElement[int]:
    op, value = cond["operator"], cond["value"]
    f = _field(cond["field"], docs, dialect, reserved_key)
    if op in ("==", "!="):
        match = _equal(f, value, dialect)
    elif op in ("in", "not in"):
        match = _one_of(f, value, dialect)
    else:
        if value is None:
            return sa.literal(NO_MATCH)
        date = _iso_date(value)
        if date is None:  # a number (or bool): numbers compare; strings and containers raise, as in Haystack
            bound = sa.literal(value, sa.Float() if isinstance(value, float) else sa.BigInteger())
            ok, match = f.is_("num"), getattr(f.num, _ORDERING[op])(bound)
        else:  # a date: ISO date strings compare; any other non-null value raises
            ok, match = _date_ok(f, dialect), _date_cmp(f, op, date, dialect)
        # `ok` first: the common row evaluates the type test once (this CASE is the hot path of a scan)
        return sa.case((ok, sa.case((match, MATCH), else_=NO_MATCH)), (f.kind != "null", RAISES), else_=NO_MATCH)
    hit, miss = (MATCH, NO_MATCH) if op in ("==", "in") else (NO_MATCH, MATCH)
    return sa.case((match, hit), else_=miss)


def _chain(verdicts: list[sa.ColumnElement[int]], decided: int) -> sa.ColumnElement[int]:
    """The first verdict that is not `1 - decided` (AND: not MATCH, OR: not NO_MATCH), else that value; a
    balanced tree keeps the SQL expression depth logarithmic in the number of conditions."""
    if not verdicts:
        return sa.literal(1 - decided)
    if len(verdicts) == 1:
        return verdicts[0]
    mid = len(verdicts) // 2
    left, right = _chain(verdicts[:mid], decided), _chain(verdicts[mid:], decided)
    return sa.case({1 - decided: right, decided: decided}, value=left, else_=RAISES)


def _compile(cond: dict[str, Any], docs: sa.Table, dialect: str, reserved_key: str | None) -> sa.ColumnElement[int]:
    if "field" in cond:
        return _leaf(cond, docs, dialect, reserved_key)
    subs = [_compile(c, docs, dialect, reserved_key) for c in cond["conditions"]]
    if cond["operator"] == "OR":
        return _chain(subs, MATCH)
    all_ = _chain(subs, NO_MATCH)
    if cond["operator"] == "AND":
        return all_
    return sa.case({MATCH: NO_MATCH, NO_MATCH: MATCH}, value=all_, else_=RAISES)


def compile_filters(filters: dict[str, Any] | None, documents: sa.Table, dialect_name: str, *,
                    reserved_key: str | None = None) -> sa.ColumnElement[int]:
    """The verdict (MATCH / NO_MATCH / RAISES) of `filters` on each row of the SQLStore `documents` table, for
    SQLite or PostgreSQL. Empty filters match everything. `reserved_key` names a metadata key an adapter keeps
    its own fields under: filters read `meta.<reserved_key>` as missing, and `{reserved_key: {"content": null}}`
    makes `content` None (the Haystack store's content-less documents)."""
    if dialect_name not in ("sqlite", "postgresql"):
        raise ConfigError(f"filters compile for 'sqlite' and 'postgresql', not {dialect_name!r}: use one of those")
    if not filters:
        return sa.literal(MATCH)
    return _compile(check_filters(filters), documents, dialect_name, reserved_key)
