from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from apps.activity.actions import save_job
from apps.activity.models import (
    Asset,
    Identifier,
    Job,
    Jobneed,
    JobneedStatus,
    QuestionSet,
)
from apps.core.paging import ListFilters, day_range, keyset_page
from apps.core.times import local_label, zone_note
from apps.onboarding.lookups import lookup_choices
from apps.peoples.access import (
    assigned_to,
    can,
    scope_of,
    visible_groups,
    visible_people,
    visible_sites,
)

# The browser's own date and time picker; values are read in the person's time zone.
LOCAL_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
# How many upcoming and past planned instances a job's page lists.
UPCOMING_SHOWN = 50
PAST_SHOWN = 20
# Planned work that is over, one way or another.
FINISHED = (
    JobneedStatus.COMPLETED,
    JobneedStatus.PARTIALLYCOMPLETED,
    JobneedStatus.AUTOCLOSED,
)


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
        self.site_window()

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
            "valid_from": "In the site's time zone",
            "valid_to": "In the site's time zone",
        }

    WINDOW = ("valid_from", "valid_to")

    def site_window(self) -> None:
        """Show the validity window in the job's site's time, as its cron and instances are."""
        if self.instance.pk and not self.is_bound:
            zone = self.instance.site.tzinfo
            for name in self.WINDOW:
                value = getattr(self.instance, name)
                self.initial[name] = timezone.localtime(value, zone).replace(tzinfo=None)

    def clean(self) -> dict:
        """Read the validity window in the chosen site's time (the browser's pickers send a
        wall-clock time; Django read it in the person's zone)."""
        data = super().clean()
        site = data.get("site")
        if site is not None:
            for name in self.WINDOW:
                if data.get(name):
                    wall_clock = timezone.make_naive(data[name])
                    data[name] = timezone.make_aware(wall_clock, site.tzinfo)
        return data


DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
YES_NO = [("", "Enabled or not"), ("yes", "Enabled"), ("no", "Disabled")]


class JobFilters(ListFilters):
    q = forms.CharField(label="Search", required=False)
    mine = forms.BooleanField(label="My work (assigned to me or my groups)", required=False)
    kind = forms.ChoiceField(required=False, choices=[("", "Every kind"), *Identifier.choices])
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every site")
    enabled = forms.ChoiceField(required=False, choices=YES_NO)

    def __init__(self, request: HttpRequest, sites) -> None:
        super().__init__(request)
        self.fields["site"].queryset = sites

    def apply(self, jobs, person):
        given = self.values()
        if text := given.get("q", "").strip():
            jobs = jobs.filter(name__icontains=text)
        if given.get("mine"):
            jobs = jobs.filter(assigned_to(scope_of(person)))
        if given.get("kind"):
            jobs = jobs.filter(identifier=given["kind"])
        if given.get("site"):
            jobs = jobs.filter(site=given["site"])
        if given.get("enabled"):
            jobs = jobs.filter(enabled=given["enabled"] == "yes")
        return jobs


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    """Every job the person may see, by name, a page at a time, filtered from the URL."""
    sites = visible_sites(request.user).order_by("name")
    filters = JobFilters(request, sites)
    jobs = filters.apply(
        Job.objects.visible_to(request.user).filter(parent__isnull=True), request.user
    )
    page = keyset_page(request, jobs.select_related("site", "people", "group"), ("name", "pk"))
    zones = set()
    for job in page.rows:  # what each row prints, worked out once here
        zones.add(job.site.time_zone)
        job.planned_up_to = local_label(job.last_generated_at, job.site.tzinfo) or "not yet"
    return render(
        request,
        "activity/job_list.html",
        {
            "title": "Jobs",
            "page": page,
            "filters": filters,
            "filters_active": filters.active(),
            "search_hint": "Job name",
            "time_note": zone_note(zones, "Schedules and times are"),
            "detail_base": reverse("activity:job-list"),
            "can_manage": can(request.user, "manage"),
        },
    )


class PlannedFilters(ListFilters):
    q = forms.CharField(label="Search", required=False)
    mine = forms.BooleanField(label="My work (assigned to me or my groups)", required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("open", "Not done yet"), *JobneedStatus.choices],
    )
    kind = forms.ChoiceField(required=False, choices=[("", "Every kind"), *Identifier.choices])
    site = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every site")
    planned_from = forms.DateField(label="Planned from", required=False, widget=DATE_PICKER)
    planned_to = forms.DateField(label="Planned to", required=False, widget=DATE_PICKER)
    job = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, request: HttpRequest, sites) -> None:
        super().__init__(request)
        self.fields["site"].queryset = sites
        zone = timezone.get_current_timezone_name()
        self.fields[
            "planned_to"
        ].help_text = f"Both days included, in your time zone ({zone}); empty for every day"
        if "planned_from" not in request.GET:  # opened plainly: today's and later work
            self.fields["planned_from"].initial = timezone.localdate()

    def values(self) -> dict:
        given = super().values()
        if "planned_from" not in self.data:
            given["planned_from"] = self.fields["planned_from"].initial
        return given

    def apply(self, needs, person):
        given = self.values()
        if text := given.get("q", "").strip():
            needs = needs.filter(description__icontains=text)
        if given.get("mine"):
            needs = needs.filter(assigned_to(scope_of(person)))
        status = given.get("status")
        if status == "open":
            needs = needs.exclude(status__in=FINISHED)
        elif status:
            needs = needs.filter(status=status)
        for name, column in (("kind", "identifier"), ("site", "site"), ("job", "job_id")):
            if given.get(name):
                needs = needs.filter(**{column: given[name]})
        bounds = day_range(
            given.get("planned_from"), given.get("planned_to"), timezone.get_current_timezone()
        )
        return needs.filter(**{f"plan_at__{op}": at for op, at in bounds.items()})


@login_required
def planned_list(request: HttpRequest) -> HttpResponse:
    """Every planned instance the person may see, by plan time (from today unless the URL says
    otherwise), a page at a time, filtered from the URL."""
    sites = visible_sites(request.user).order_by("name")
    filters = PlannedFilters(request, sites)
    needs = filters.apply(
        Jobneed.objects.visible_to(request.user).filter(parent__isnull=True), request.user
    )
    page = keyset_page(
        request, needs.select_related("site", "people", "group", "job"), ("plan_at", "pk")
    )
    zones = set()
    for need in page.rows:  # what each row prints, worked out once here
        zone = need.site.tzinfo
        zones.add(need.site.time_zone)
        need.planned = local_label(need.plan_at, zone)
        need.expires = local_label(need.expiry_at, zone)
    return render(
        request,
        "activity/planned_list.html",
        {
            "title": "Planned work",
            "page": page,
            "filters": filters,
            "filters_active": filters.active(),
            "search_hint": "What the work is",
            "time_note": zone_note(zones, "Planned times are"),
            "job_base": reverse("activity:job-list"),
        },
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
