from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.core.enqueue import enqueue_on_commit
from apps.core.paging import ListFilters, day_range, keyset_page
from apps.core.times import local_label, zone_note
from apps.peoples.access import can, deciders_for, of_their_client, visible_sites
from apps.peoples.models import People
from apps.work_order_management import actions
from apps.work_order_management.forms import PermitForm, ReturnForm, answers_from
from apps.work_order_management.links import LinkError, step_for_token
from apps.work_order_management.models import (
    PHASE_OF_ROLE,
    ApprovalStep,
    PermitKind,
    PermitSection,
    PermitStatus,
    PermitType,
    Vendor,
    WorkPermit,
)
from apps.work_order_management.pdf import approval_conditions, ordered_steps
from apps.work_order_management.services import PermitError


def steps_waiting_for(person) -> QuerySet[ApprovalStep]:
    """The person's pending steps on permits still being decided (an approval waits behind its
    verification); never those of a cancelled or rejected permit."""
    return ApprovalStep.objects.filter(
        person=person,
        status=ApprovalStep.Status.PENDING,
        permit__status__in=PHASE_OF_ROLE.values(),
    )


DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
# Steps waiting for one person are few; beyond this many the list says how many more wait.
MY_STEPS_SHOWN = 50


class PermitFilters(ListFilters):
    q = forms.CharField(label="Search", required=False)
    mine = forms.ChoiceField(
        label="Whose",
        required=False,
        choices=[("", "Everyone's"), ("raised", "Raised by me"), ("steps", "With a step of mine")],
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("pending", "Waiting for decisions"), *PermitStatus.choices],
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "Permits and reports"), *PermitKind.choices]
    )
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every site")
    raised_from = forms.DateField(label="Raised from", required=False, widget=DATE_PICKER)
    raised_to = forms.DateField(label="Raised to", required=False, widget=DATE_PICKER)

    def __init__(self, request: HttpRequest, sites) -> None:
        super().__init__(request)
        self.fields["site"].queryset = sites
        zone = timezone.get_current_timezone_name()
        self.fields["raised_to"].help_text = f"Both days included, in your time zone ({zone})"

    def apply(self, permits, person):
        given = self.values()
        if text := given.get("q", "").strip():
            match = Q(vendor__name__icontains=text) | Q(permit_type__name__icontains=text)
            number = text.lstrip("#")
            permits = permits.filter(match | Q(number=int(number)) if number.isdigit() else match)
        if given.get("mine") == "raised":
            permits = permits.filter(requested_by=person)
        elif given.get("mine") == "steps":
            permits = permits.filter(
                pk__in=ApprovalStep.objects.filter(person=person).values("permit_id")
            )
        status = given.get("status")
        if status == "pending":
            permits = permits.filter(status__in=PHASE_OF_ROLE.values())
        elif status:
            permits = permits.filter(status=status)
        for name in ("kind", "site"):
            if given.get(name):
                permits = permits.filter(**{name: given[name]})
        bounds = day_range(
            given.get("raised_from"), given.get("raised_to"), timezone.get_current_timezone()
        )
        return permits.filter(**{f"created_at__{op}": at for op, at in bounds.items()})


@login_required
def permit_list(request: HttpRequest) -> HttpResponse:
    """What waits for the person's decision, then every permit and report they may see, newest
    first, a page at a time, filtered from the URL."""
    my_steps = list(
        steps_waiting_for(request.user)
        .select_related("permit__permit_type", "permit__site", "permit__vendor")
        .order_by("permit__created_at", "pk")[: MY_STEPS_SHOWN + 1]
    )
    more_steps = len(my_steps) > MY_STEPS_SHOWN
    my_steps = my_steps[:MY_STEPS_SHOWN]
    sites = visible_sites(request.user).order_by("name")
    filters = PermitFilters(request, sites)
    permits = filters.apply(WorkPermit.objects.visible_to(request.user), request.user)
    page = keyset_page(
        request,
        permits.select_related("permit_type", "site", "vendor"),
        ("-created_at", "-pk"),
    )
    zones = set()
    for permit in page.rows:  # what each row prints, worked out once here
        zones.add(permit.site.time_zone)
        permit.raised = local_label(permit.created_at, permit.site.tzinfo)
    return render(
        request,
        "work_order_management/permit_list.html",
        {
            "title": "Work permits",
            "my_steps": my_steps,
            "more_steps": more_steps,
            "page": page,
            "filters": filters,
            "filters_active": filters.active(),
            "search_hint": "Number, vendor or type",
            "time_note": zone_note(zones, "Raised times are"),
            "detail_base": reverse("permits:list"),
        },
    )


@login_required
def permit_create(request: HttpRequest) -> HttpResponse:
    types = of_their_client(PermitType.objects.filter(enabled=True), request.user)
    permit_type = types.filter(pk=request.GET.get("type")).first()
    if permit_type is None:
        return render(
            request,
            "work_order_management/choose_type.html",
            {"title": "New permit", "types": types},
        )
    form = PermitForm(permit_type, request.POST or None, person=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            permit = actions.create_permit(
                permit_type=permit_type,
                site=data["site"],
                vendor=data["vendor"],
                requester=request.user,
                answers=answers_from(data),
                verifiers=data.get("verifiers") or [],
                approvers=data["approvers"],
                service_month=data["service_month"].replace(day=1)
                if data.get("service_month")
                else None,
            )
        except PermitError as exc:
            form.add_error(None, str(exc))
        else:
            verifying = permit.status == PermitStatus.PENDING_VERIFICATION
            asked = "verifiers" if verifying else "approvers"
            messages.success(
                request,
                f"{permit_type.name} #{permit.number} raised; its {asked} are asked by mail.",
            )
            return redirect("permits:detail", permit.pk)
    return render(
        request,
        "core/form.html",
        {
            "title": f"New {permit_type.name}",
            "form": form,
            "submit_label": "Raise permit"
            if permit_type.kind == PermitKind.WORK_PERMIT
            else "Submit report",
            "cancel_url": reverse("permits:list"),
        },
    )


@login_required
def permit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    permit = get_object_or_404(
        WorkPermit.objects.visible_to(request.user).select_related("permit_type", "site", "vendor"),
        pk=pk,
    )
    may_act = can(request.user, "permit", permit)
    return_sections = list(permit.permit_type.sections.filter(role=PermitSection.Role.RETURN))
    returning = request.method == "POST" and request.POST.get("action") == "return"
    return_form = ReturnForm(return_sections, request.POST if returning else None)
    error = ""
    if request.method == "POST":
        if not may_act:
            raise PermissionDenied(
                "only its requester, the in-charges of its site or its client's admins may; "
                "a verifier or approver decides their own step only"
            )
        action = request.POST.get("action")
        try:
            if action == "cancel":
                actions.cancel(permit.pk, request.user, request.POST.get("remark", ""))
                messages.success(request, "Permit cancelled; everyone concerned is told by mail.")
            elif action == "return":
                if not return_form.is_valid():
                    raise PermitError("answer the return permit's questions below")
                actions.submit_return(permit.pk, answers_from(return_form.cleaned_data))
                messages.success(request, "Return permit submitted: the permit is completed.")
            elif action == "remind":
                with transaction.atomic():
                    enqueue_on_commit("send_email_notification_for_wp", permit.pk)
                messages.success(request, "The people still to decide are reminded by mail.")
            return redirect("permits:detail", permit.pk)
        except PermitError as exc:
            error = str(exc)
    steps = ordered_steps(permit)
    return render(
        request,
        "work_order_management/permit_detail.html",
        {
            "title": f"{permit.permit_type.name} #{permit.number}",
            "permit": permit,
            "steps": steps,
            "conditions": approval_conditions(steps),
            "remarks": permit.remarks.select_related("person"),
            "answers": permit.answers.select_related("section"),
            "error": error,
            "return_form": return_form if return_sections else None,
            "may_act": may_act,
            "can_cancel": permit.kind == "WP"
            and permit.status
            not in (PermitStatus.CANCELLED, PermitStatus.COMPLETED, PermitStatus.REJECTED),
            "pending": permit.status
            in (PermitStatus.PENDING_VERIFICATION, PermitStatus.PENDING_APPROVAL),
        },
    )


def _decision_page(request: HttpRequest, step: ApprovalStep, actor: People) -> HttpResponse:
    permit = step.permit
    if not step.asked_now:
        # Cancelled, rejected by someone else, or not yet at this step: nothing to decide.
        return _no_longer_needed(request, step)
    context: dict[str, object] = {"title": "Your decision", "step": step, "permit": permit}
    status = 200
    if request.method == "POST":
        approve = request.POST.get("decision") == "approve"
        remark = request.POST.get("remark", "")
        if not approve and not remark.strip():
            context["form_error"] = "Say why you reject it: the requester reads your remark."
            status = 400
        else:
            try:
                actions.decide(step.pk, actor, approve=approve, remark=remark)
            except PermitError as exc:
                return _error(request, str(exc), status=409)
            return render(
                request,
                "work_order_management/decide.html",
                {
                    "title": "Thank you",
                    "done": "approved" if approve else "rejected",
                    "permit": permit,
                    "step": step,
                },
            )
        context["remark"] = remark
    context["answers"] = permit.answers.select_related("section")
    return render(request, "work_order_management/decide.html", context, status=status)


def _no_longer_needed(request: HttpRequest, step: ApprovalStep) -> HttpResponse:
    permit = step.permit
    latest = permit.remarks.select_related("person").order_by("-at", "-id").first()
    return render(
        request,
        "work_order_management/decide.html",
        {
            "title": "No decision needed",
            "no_longer_needed": True,
            "permit": permit,
            "step": step,
            "latest_remark": latest,
        },
        status=409,
    )


def _error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "work_order_management/decide.html",
        {"title": "This link cannot be used", "error": message},
        status=status,
    )


@never_cache  # a permit's details, shown without sign-in: never kept by a shared browser
def decide_by_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link: the signed token identifies the person; GET only shows the page."""
    try:
        step = step_for_token(token)
    except LinkError as exc:
        return _error(request, str(exc), status=410)
    if request.user.is_authenticated and request.user.pk != step.person_id:
        return _error(request, "This link belongs to someone else.", status=403)
    return _decision_page(request, step, step.person)


@login_required
def decide_step(request: HttpRequest, step_id: int) -> HttpResponse:
    step = get_object_or_404(
        ApprovalStep.objects.select_related(
            "permit", "permit__permit_type", "permit__site", "permit__vendor", "person"
        ),
        pk=step_id,
    )
    if step.person_id != request.user.pk:
        return _error(request, "This decision belongs to someone else.", status=403)
    if step.status != ApprovalStep.Status.PENDING:
        return _error(request, f"You {step.status.lower()} this request already.", status=409)
    return _decision_page(request, step, request.user)


def _deciders(deciders, ids: list[int]):
    """The people `ids` names, every one of them allowed to decide at the permit's site."""
    chosen = deciders.filter(pk__in=ids)
    if chosen.count() != len(set(ids)):
        raise People.DoesNotExist
    return chosen


@login_required
@require_POST
def api_create_permit(request: HttpRequest) -> JsonResponse:
    """The mobile sync endpoint: a permit as JSON, created for the logged-in user."""
    try:
        body = json.loads(request.body)
        types = of_their_client(PermitType.objects.filter(enabled=True), request.user)
        permit_type = types.get(pk=body["permit_type"])
        sites = visible_sites(request.user).filter(pk=body["site"], client=permit_type.client)
        site = sites.get()
        deciders = deciders_for(sites)  # the same people the form offers
        permit = actions.create_permit(
            permit_type=permit_type,
            site=site,
            vendor=Vendor.objects.get(pk=body["vendor"], client=permit_type.client),
            requester=request.user,
            answers={
                int(section): {int(q): str(a) for q, a in questions.items()}
                for section, questions in body.get("answers", {}).items()
            },
            verifiers=_deciders(deciders, body.get("verifiers", [])),
            approvers=_deciders(deciders, body.get("approvers", [])),
            source=WorkPermit.Source.MOBILE,
        )
    except PermitError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except ObjectDoesNotExist:
        return JsonResponse(
            {"error": "unknown permit type, site, vendor, verifier or approver"}, status=400
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return JsonResponse({"error": f"bad request: {exc}"}, status=400)
    return JsonResponse(
        {"id": permit.pk, "number": permit.number, "status": permit.status}, status=201
    )
