from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.activity.actions import save_job
from apps.activity.models import Asset, Job, QuestionSet
from apps.peoples.access import can, visible_groups, visible_people, visible_sites
from apps.reports.dashboard import lookup_choices


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


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.visible_to(request.user).filter(parent__isnull=True).select_related("site")
    return render(
        request,
        "activity/job_list.html",
        {"title": "Jobs", "jobs": jobs, "can_manage": can(request.user, "manage")},
    )


@login_required
def job_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    if not can(request.user, "manage"):
        raise PermissionDenied("only site in-charges and client admins plan jobs")
    jobs = Job.objects.visible_to(request.user)
    job = get_object_or_404(jobs, pk=pk, parent__isnull=True) if pk else None
    form = JobForm(request.POST or None, instance=job, person=request.user)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        save_job(saved, created=job is None, changed=form.changed_data)
        messages.success(request, f"Job {saved.name} saved; its instances are being planned.")
        return redirect("activity:job-list")
    title = f"Edit {job.name}" if job else "New job"
    return render(request, "core/form.html", {"title": title, "form": form})
