"""The cost limits of apps.mobile.limits on a schema that allows any depth and width."""

from __future__ import annotations

import pytest
from graphql import OperationType, build_schema

from apps.mobile.limits import MAX_DEPTH, MAX_FIELDS, QueryRefused, checked_document

SCHEMA = build_schema("type Query { node: Node } type Node { id: ID child: Node }")
QUERY_ONLY = (OperationType.QUERY,)


def nested(depth: int) -> str:
    return "{ " + "node { " + "child { " * (depth - 2) + "id" + " }" * (depth - 1) + " }"


def test_depth_is_limited() -> None:
    checked_document(SCHEMA, nested(MAX_DEPTH), allowed=QUERY_ONLY)
    with pytest.raises(QueryRefused, match=f"{MAX_DEPTH + 1} levels deep"):
        checked_document(SCHEMA, nested(MAX_DEPTH + 1), allowed=QUERY_ONLY)


def test_fields_reached_through_fragments_are_counted_where_they_are_spread() -> None:
    fields = " ".join(f"f{n}: id" for n in range(15))  # 15 aliased fields per fragment use
    spreads = " ".join(f"c{n}: child {{ ...F }}" for n in range(15))
    query = f"{{ node {{ {spreads} }} }} fragment F on Node {{ {fields} }}"
    with pytest.raises(QueryRefused, match=r"selects \d+ fields \(at most 200\)"):
        checked_document(SCHEMA, query, allowed=QUERY_ONLY)
    assert MAX_FIELDS == 200


def test_the_parser_stops_at_its_token_budget() -> None:
    with pytest.raises(QueryRefused, match="token"):
        checked_document(SCHEMA, "{ node { " + "id " * 2500 + "} }", allowed=QUERY_ONLY)
