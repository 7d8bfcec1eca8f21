"""What a GraphQL document may cost, checked before it runs (bytes, tokens, depth, fields,
aliases, operation kinds and, in production, introspection), and what its answer may cost,
counted while it runs (rows and bytes).

One function, ``checked_document``, serves every way in: the web endpoint (/graphql), device
requests over HTTP and the MQTT bridge (refused before they are recorded) and the worker that
executes them (checked again at the point of execution). ``AnswerBudget`` bounds the answer on
the web endpoint and the worker alike: an answer over its rows or bytes is refused whole, with
an error that says so, never cut short silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Manager, QuerySet
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute_sync,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule, ValidationRule

MAX_QUERY_BYTES = 8 * 1024
MAX_TOKENS = 2_000
MAX_DEPTH = 8
MAX_FIELDS = 200  # every field selected, fragments expanded, aliases counted
MAX_ALIASES = 20
# What one answer may hold: rows of every list together (nested ones too), and bytes of JSON
# (about: values and field names).
MAX_ANSWER_ROWS = 2_000
MAX_ANSWER_BYTES = 2 * 1024 * 1024
# The longest date range a list of planned work may be asked for.
MAX_DATE_RANGE = timedelta(days=31)


class QueryRefused(ValueError):
    """The document is too big or too costly, or of a kind not allowed here."""


class CostLimitRule(ValidationRule):
    """Refuses operations deeper than MAX_DEPTH or selecting more than MAX_FIELDS fields or
    MAX_ALIASES aliases, counting through fragments (each spread counted where it is used)."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            definition.name.value: definition
            for definition in self.context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
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


def validation_rules() -> tuple[type[ASTValidationRule], ...]:
    extra: tuple[type[ASTValidationRule], ...] = (CostLimitRule,)
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


class AnswerTooLarge(GraphQLError):
    """The answer would hold more rows or bytes than one answer may."""


_SCALARS = (str, int, float, bool, Decimal, date, datetime, UUID)


class AnswerBudget:
    """graphql-core middleware counting an answer's rows and bytes as it is resolved.

    A list is read only up to what is left of the row budget (a queryset is sliced there, so a
    wide date range costs no more than the budget). Once over, every field left resolves to
    nothing, and ``checked`` replaces the whole answer by one error: a client never gets part
    of an answer as if it were the whole."""

    def __init__(self) -> None:
        self.rows = 0
        self.bytes = 0
        self.refusal = ""

    def resolve(self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo, **args):
        if self.refusal:
            return None
        value = next_(root, info, **args)
        if isinstance(value, Manager):
            value = value.all()
        if isinstance(value, QuerySet):
            value = list(value[: MAX_ANSWER_ROWS - self.rows + 1])
        if isinstance(value, list | tuple):
            self.rows += len(value)
        self.bytes += len(info.field_name) + 4  # "name": and a separator
        if isinstance(value, _SCALARS):
            self.bytes += len(str(value))
        if self.rows > MAX_ANSWER_ROWS:
            self._refuse(f"more than {MAX_ANSWER_ROWS} rows")
        elif self.bytes > MAX_ANSWER_BYTES:
            self._refuse(f"more than {MAX_ANSWER_BYTES} bytes")
        return value

    def _refuse(self, over: str) -> None:
        self.refusal = (
            f"the answer would hold {over} (at most {MAX_ANSWER_ROWS} rows and "
            f"{MAX_ANSWER_BYTES} bytes): ask for less, e.g. a shorter date range or fewer aliases"
        )
        raise AnswerTooLarge(self.refusal)

    def checked(self, result: ExecutionResult) -> ExecutionResult:
        """`result`, or the refusal in its place when the answer went over."""
        if self.refusal:
            return ExecutionResult(data=None, errors=[AnswerTooLarge(self.refusal)])
        return result


def bounded_execute(
    schema: GraphQLSchema, document: DocumentNode, **options: Any
) -> ExecutionResult:
    """graphql-core's execute (synchronous: no resolver of ours awaits) with the answer held to
    MAX_ANSWER_ROWS and MAX_ANSWER_BYTES."""
    budget = AnswerBudget()
    return budget.checked(execute_sync(schema, document, middleware=[budget], **options))


class TextTooLong(GraphQLError):
    """A text is longer than what is kept of it."""


def check_length(name: str, text: str, limit: int) -> str:
    """`text`, when it is at most `limit` characters long; TextTooLong names it otherwise."""
    if len(text) > limit:
        raise TextTooLong(f"{name} is {len(text)} characters long; at most {limit} are kept")
    return text


def check_date_range(date_from: date, date_to: date) -> None:
    """A range asked for must run forward and span at most MAX_DATE_RANGE."""
    if date_to <= date_from:
        raise GraphQLError("dateTo must be after dateFrom")
    if date_to - date_from > MAX_DATE_RANGE:
        raise GraphQLError(
            f"a date range may span at most {MAX_DATE_RANGE.days} days; "
            f"this one spans {(date_to - date_from).days}"
        )
