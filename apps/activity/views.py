from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.activity.actions import save_job
from apps.activity.models import Job
from apps.reports.dashboard import lookup_choices, people_choices


class JobForm(forms.ModelForm):
    def __init__(self, *args, client_id: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Lists the form shows come from the warmed cache; validation still checks the database.
        if client_id:
            self.fields["people"].choices = [("", "---------"), *people_choices(client_id)]
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
    jobs = Job.objects.filter(parent__isnull=True).select_related("site")
    return render(request, "activity/job_list.html", {"title": "Jobs", "jobs": jobs})


@login_required
def job_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk, parent__isnull=True) if pk else None
    form = JobForm(request.POST or None, instance=job, client_id=request.user.client_id)
    if request.method == "POST" and form.is_valid():
        save_job(form.save(commit=False), created=job is None, changed=form.changed_data)
        return redirect("activity:job-list")
    title = f"Edit {job.name}" if job else "New job"
    return render(request, "core/form.html", {"title": title, "form": form})
