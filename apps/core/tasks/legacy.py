"""Upstream call forms: old producers, and messages queued before a deploy, keep working.

A task lists the argument lists upstream called it with (``UpstreamForm``) in
``@accepts_upstream(...)``, placed under ``@shared_task``. Then:

- ``.delay()`` / ``.apply_async()`` accept the current form and the upstream forms, and nothing
  else: a call that fits none of them raises TypeError in the producer's process
  (the function's ``check_call``, made the task's send-time check by ``BaseTask.on_bound``).
- On the worker, a call that is not the current form is an upstream form. It is translated into
  the current form and runs exactly as that would, or, where its arguments cannot be honoured
  safely, refused with ``LegacyCallRefused``: a ValueError, which no retry policy retries, so
  the run fails at once and leaves a dead letter whose error names the problem and the
  replacement.
- Each legacy run logs one line ``task_legacy_call task=... id=... form=... use=...`` naming
  the form and its replacement (``... refused use="..."`` at WARNING for a refused one), never
  the argument values (they may hold personal data). A message sent under one of upstream's
  task names (an alias of the current task, intelliwiz_config.celery) says so with
  ``name=<upstream name>`` on that line, or on a line of its own when its arguments are current.

A form is recognised by its argument list: the call does not fit the current signature but fits
the form's, or it fits both "by accident", giving None to a parameter the current form requires
(upstream's ``send_ticket_email(None, 5)`` is ``ticket=None, id=5``, not ``ticket_id=None``).
Where upstream used the current argument list with other content, ``matches`` tells the form by
its content (e.g. a JSON string where a dict is expected now).
"""

from __future__ import annotations

import ast
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery import current_task

logger = logging.getLogger("intelliwiz.tasks")

Arguments = dict[str, Any]
Translate = Callable[[Arguments], Arguments]
F = TypeVar("F", bound=Callable[..., Any])


class LegacyCallRefused(ValueError):
    """An upstream call form whose arguments cannot be honoured safely; names the replacement.

    A translation raises it with the reason (and `use`, when the replacement is not the task's
    current form); the task's run then fails with the complete message.
    """

    def __init__(self, reason: str, use: str = "") -> None:
        super().__init__(reason)
        self.use = use


@dataclass(frozen=True)
class UpstreamForm:
    """One upstream argument list of a task and how it maps onto the current form.

    `params` is the upstream parameter list as written upstream (``"id, event, atts=False"``);
    `translate` turns the upstream arguments (by name, defaults applied) into the current
    keyword arguments, or raises LegacyCallRefused (see ``refuse``); `matches`, for a form with
    the current argument list, tells from the content whether a call is this upstream form.
    """

    params: str
    translate: Translate
    matches: Callable[[Arguments], bool] | None = None
    label: str = ""
    signature: inspect.Signature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", _parse(self.params))
        if not self.label:
            object.__setattr__(self, "label", ",".join(self.signature.parameters))

    def arguments(self, args: tuple, kwargs: dict[str, Any]) -> Arguments | None:
        """The call's arguments by upstream name, or None when the call is not of this form."""
        return _bind(self.signature, args, kwargs)


def rename(**current_from_upstream: str) -> Translate:
    """Translate by renaming: ``rename(jobneed_id="id")`` passes upstream `id` as `jobneed_id`.

    Upstream arguments not named are dropped (the current form reads them from the database);
    a None upstream value is left out, so the current default applies.
    """

    def translate(arguments: Arguments) -> Arguments:
        return {
            current: arguments[upstream]
            for current, upstream in current_from_upstream.items()
            if arguments.get(upstream) is not None
        }

    return translate


def refuse(reason: str, use: str = "") -> Translate:
    """A form that cannot be honoured: the run fails with `reason` and the replacement `use`
    (by default the task's current call form)."""

    def translate(arguments: Arguments) -> Arguments:
        raise LegacyCallRefused(reason, use)

    return translate


def accepts_upstream(*forms: UpstreamForm) -> Callable[[F], F]:
    """Make the decorated task function accept `forms` besides its current form (see above).

    A bound task's function (first parameter ``self``) gets the task first, as Celery gives it.
    """

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        bound = next(iter(signature.parameters), None) == "self"
        current = signature.replace(parameters=list(signature.parameters.values())[bound:])

        @functools.wraps(function)
        def accept(*args: Any, **kwargs: Any) -> Any:
            head, args = args[:bound], args[bound:]
            task = head[0] if head else current_task
            task_name = getattr(task, "name", None) or function.__name__
            use = _call_form(task_name, current)
            legacy = _legacy_call(task_name, use, forms, current, args, kwargs)
            if legacy is None:
                return function(*head, *args, **kwargs)
            form, arguments = legacy
            try:
                translated = _translate(form, arguments, current)
            except LegacyCallRefused as refusal:
                replacement = refusal.use or use
                log_legacy_call(task, form.label, replacement, refused=True)
                raise LegacyCallRefused(
                    f"{task_name} refuses the upstream call ({form.label}): {refusal}; "
                    f"use {replacement}"
                ) from None
            log_legacy_call(task, form.label, use)
            return function(*head, **translated)

        accept.check_call = _call_checker(current, forms)  # type: ignore[attr-defined]
        return accept  # type: ignore[return-value]

    return decorate


def upstream_name(task: Any) -> str:
    """The name the running message gave `task` when it is not the task's own: one of
    upstream's auto-generated names, registered as an alias (intelliwiz_config.celery)."""
    request = getattr(task, "request", None)
    name = getattr(request, "task", None)
    return name if isinstance(name, str) and name != getattr(task, "name", name) else ""


def log_legacy_call(task: Any, form: str, use: str, *, refused: bool = False) -> None:
    """The run's one ``task_legacy_call`` line: its upstream name and form, and what to use."""
    request = getattr(task, "request", None)
    fields = [f"task={getattr(task, 'name', '')}", f"id={getattr(request, 'id', None) or ''}"]
    if name := upstream_name(task):
        fields.append(f"name={name}")
    if form:
        fields.append(f"form={form}")
    if request is not None and getattr(request, "id", None):
        request.legacy_call_logged = True
    if refused:
        logger.warning('task_legacy_call %s refused use="%s"', " ".join(fields), use)
    else:
        logger.info("task_legacy_call %s use=%s", " ".join(fields), use)


def _legacy_call(
    task_name: str,
    use: str,
    forms: tuple[UpstreamForm, ...],
    current: inspect.Signature,
    args: tuple,
    kwargs: dict,
) -> tuple[UpstreamForm, Arguments] | None:
    """The upstream form of this call and its arguments, or None for the current form."""
    binding = _bind(current, args, kwargs)
    fits_current = binding is not None and not _required_none(current, binding)
    for form in forms:
        arguments = form.arguments(args, kwargs)
        if arguments is None:
            continue
        if form.matches(arguments) if form.matches is not None else not fits_current:
            return form, arguments
    if binding is None:
        expected = "; ".join(form.label for form in forms)
        raise LegacyCallRefused(
            f"{task_name} refuses a call that is neither its current form nor an upstream form "
            f"({expected}); use {use}"
        )
    return None


def _required_none(current: inspect.Signature, binding: Arguments) -> bool:
    """The call gives None to a parameter the current form requires: not meant for it."""
    return any(
        parameter.default is inspect.Parameter.empty and binding.get(name) is None
        for name, parameter in current.parameters.items()
    )


def _call_checker(
    current: inspect.Signature, forms: tuple[UpstreamForm, ...]
) -> Callable[[str, tuple, dict[str, Any]], None]:
    """The send-time check: the call binds the current form or one of the upstream forms."""

    def check(task_name: str, args: tuple, kwargs: dict[str, Any]) -> None:
        if _bind(current, args, kwargs) is not None:
            return
        if any(form.arguments(args, kwargs) is not None for form in forms):
            return
        expected = "; ".join(f"{task_name}({form.params})" for form in forms)
        raise TypeError(
            f"{task_name}() takes its current form {_call_form(task_name, current)} or an "
            f"upstream form ({expected}); this call fits none of them"
        )

    return check


def _translate(form: UpstreamForm, arguments: Arguments, current: inspect.Signature) -> Arguments:
    translated = form.translate(arguments)
    missing = [
        name
        for name, parameter in current.parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in translated
    ]
    if missing:
        raise LegacyCallRefused(f"it does not identify {', '.join(missing)}")
    return translated


def _parse(params: str) -> inspect.Signature:
    """A signature from an upstream parameter list of names with optional literal defaults."""
    (definition,) = ast.parse(f"def upstream({params}): pass").body
    positional = definition.args.args  # type: ignore[attr-defined]
    defaults = definition.args.defaults  # type: ignore[attr-defined]
    padded = [None] * (len(positional) - len(defaults)) + list(defaults)
    return inspect.Signature(
        [
            inspect.Parameter(
                argument.arg,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if default is None else ast.literal_eval(default),
            )
            for argument, default in zip(positional, padded, strict=True)
        ]
    )


def _bind(signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> Arguments | None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def _call_form(task_name: str, current: inspect.Signature) -> str:
    return f"{task_name}({','.join(current.parameters)})"
