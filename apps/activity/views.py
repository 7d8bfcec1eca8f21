from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from apps.activity.actions import save_job
from apps.activity.models import Asset, Job, Jobneed, QuestionSet
from apps.onboarding.lookups import lookup_choices
from apps.peoples.access import can, visible_groups, visible_people, visible_sites

# The browser's own date and time picker; values are read in the person's time zone.
LOCAL_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# How many upcoming and past planned instances a job's page lists.
UPCOMING_SHOWN = 50
PAST_SHOWN = 20


class JobForm(forms.ModelForm):
    def __init__(self, *args, person, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Choices and validation both come from what the person may reach.
        sites = visible_sites(person)
        self.fields["site"].queryset = sites
        self.fields["asset"].queryset = Asset.objects.filter(site__in=sites)
        self.fields["question_set"].queryset = QuestionSet.objects.filter(
            client_id__in=sites.values("client_id")
        )
        self.fields["people"].queryset = visible_people(person)
        self.fields["group"].queryset = visible_groups(person)
        self.fields["ticket_category"].choices = [
            ("", "---------"),
            *lookup_choices("TICKETCATEGORY"),
        ]

    class Meta:
        model = Job
        fields = [
            "name",
            "description",
            "identifier",
            "cron",
            "valid_from",
            "valid_to",
            "plan_duration_minutes",
            "grace_minutes",
            "expiry_minutes",
            "site",
            "asset",
            "question_set",
            "people",
            "group",
            "ticket_category",
            "priority",
            "enabled",
        ]
        widgets = {
            "valid_from": LOCAL_DATETIME,
            "valid_to": LOCAL_DATETIME,
            "description": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "cron": "Minute, hour, day of month, month, weekday, in the site's time zone: "
            "0 9 * * 1-5 is 09:00 on weekdays",
            "valid_from": "In your time zone",
            "valid_to": "In your time zone",
        }


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible_to(request.user).filter(parent__isnull=True).select_related("site")
    return render(
        request,
        "activity/job_list.html",
        {"title": "Jobs", "jobs": jobs, "can_manage": can(request.user, "manage")},
    )


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A job and its planned instances, in the job's site time zone."""
    job = get_object_or_404(
        Job.objects.visible_to(request.user).select_related(
            "site", "asset", "question_set", "people", "group", "ticket_category"
        ),
        pk=pk,
        parent__isnull=True,
    )
    instances = (
        Jobneed.objects.visible_to(request.user)
        .filter(job=job, parent__isnull=True)
        .select_related("people", "group")
    )
    now = timezone.now()
    upcoming = list(instances.filter(plan_at__gte=now).order_by("plan_at")[:UPCOMING_SHOWN])
    past = list(instances.filter(plan_at__lt=now).order_by("-plan_at")[:PAST_SHOWN])
    return render(
        request,
        "activity/job_detail.html",
        {
            "title": job.name,
            "job": job,
            "upcoming": upcoming,
            "upcoming_total": instances.filter(plan_at__gte=now).count(),
            "past": past,
            "can_manage": can(request.user, "manage", job),
        },
    )


@login_required
def job_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    if not can(request.user, "manage"):
        raise PermissionDenied("only site in-charges and client admins plan jobs")
    jobs = Job.objects.visible_to(request.user)
    job = get_object_or_404(jobs, pk=pk, parent__isnull=True) if pk else None
    if job is not None and not can(request.user, "manage", job):
        raise PermissionDenied("only the in-charges of the job's site and client admins edit it")
    form = JobForm(request.POST or None, instance=job, person=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        save_job(saved, created=job is None, changed=form.changed_data, by=request.user)
        messages.success(request, f"Job “{saved.name}” saved; its instances are being planned.")
        return redirect("activity:job-detail", saved.pk)
    title = f"Edit {job.name}" if job else "New job"
    return render(
        request,
        "core/form.html",
        {
            "title": title,
            "form": form,
            "intro": "A job plans an instance at every time its cron gives within its validity"
            " window, in the site's time zone.",
            "cancel_url": reverse("activity:job-detail", args=[job.pk])
            if job
            else reverse("activity:job-list"),
        },
    )
