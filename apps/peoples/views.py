"""The product's sign-in page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import LoginView

from apps.peoples.drafts import draft_waits_for


class SignInView(LoginView):
    """Django's sign-in, in the product's page; it says so when a session ended mid-form."""

    template_name = "peoples/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["draft_kept"] = draft_waits_for(self.request, self.get_redirect_url())
        return context
