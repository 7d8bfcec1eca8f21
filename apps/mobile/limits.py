"""What a GraphQL document may cost, checked before it runs: bytes, tokens, depth, fields,
aliases, operation kinds and (in production) introspection.

One function, ``checked_document``, serves every way in: the web endpoint (/graphql), device
requests over HTTP and the MQTT bridge (refused before they are recorded) and the worker that
executes them (checked again at the point of execution).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, ValidationRule

MAX_QUERY_BYTES = 8 * 1024
MAX_TOKENS = 2_000
MAX_DEPTH = 8
MAX_FIELDS = 200  # every field selected, fragments expanded, aliases counted
MAX_ALIASES = 20


class QueryRefused(ValueError):
    """The document is too big or too costly, or of a kind not allowed here."""


class CostLimitRule(ValidationRule):
    """Refuses operations deeper than MAX_DEPTH or selecting more than MAX_FIELDS fields or
    MAX_ALIASES aliases, counting through fragments (each spread counted where it is used)."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            definition.name.value: definition
            for definition in self.context.document.definitions
            if not isinstance(definition, OperationDefinitionNode)
        }
        totals = {"fields": 0, "aliases": 0, "depth": 0}
        self._walk(node.selection_set, 1, fragments, totals, frozenset())
        problems = []
        if totals["depth"] > MAX_DEPTH:
            problems.append(f"nests {totals['depth']} levels deep (at most {MAX_DEPTH})")
        if totals["fields"] > MAX_FIELDS:
            problems.append(f"selects {totals['fields']} fields (at most {MAX_FIELDS})")
        if totals["aliases"] > MAX_ALIASES:
            problems.append(f"uses {totals['aliases']} aliases (at most {MAX_ALIASES})")
        if problems:
            self.report_error(GraphQLError("the query " + " and ".join(problems), node))

    def _walk(
        self,
        selections: SelectionSetNode | None,
        depth: int,
        fragments: dict[str, Any],
        totals: dict[str, int],
        seen: frozenset[str],
    ) -> None:
        if selections is None or totals["fields"] > MAX_FIELDS:
            return  # over the limit already: no need to expand further
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                totals["fields"] += 1
                totals["aliases"] += selection.alias is not None
                totals["depth"] = max(totals["depth"], depth)
                self._walk(selection.selection_set, depth + 1, fragments, totals, seen)
            elif isinstance(selection, InlineFragmentNode):
                self._walk(selection.selection_set, depth, fragments, totals, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:  # cycles are the spec rules' job
                    fragment = fragments[name]
                    self._walk(fragment.selection_set, depth, fragments, totals, seen | {name})


def validation_rules() -> tuple[type[ValidationRule], ...]:
    extra: tuple[type[ValidationRule], ...] = (CostLimitRule,)
    if not settings.GRAPHQL_INTROSPECTION:
        extra += (NoSchemaIntrospectionCustomRule,)
    return (*specified_rules, *extra)


def checked_document(
    schema: GraphQLSchema, query: str, *, allowed: Iterable[OperationType]
) -> DocumentNode:
    """The parsed document, valid and within the limits; QueryRefused says what is wrong."""
    if len(query.encode()) > MAX_QUERY_BYTES:
        raise QueryRefused(f"the query is over {MAX_QUERY_BYTES} bytes")
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise QueryRefused(exc.message) from None
    errors = validate(schema, document, validation_rules())
    if errors:
        raise QueryRefused("; ".join(error.message for error in errors))
    allowed = set(allowed)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.operation not in allowed:
            kinds = " or ".join(sorted(kind.value for kind in allowed))
            raise QueryRefused(f"only {kinds} operations may be sent here")
    return document
