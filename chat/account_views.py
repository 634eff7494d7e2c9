"""Signing in and out, and one's password: Django's views over the account services."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chat import services
from chat.limits import RateLimited


def client_address(request: HttpRequest) -> str:
    """The address that sign-in and sign-up attempts are counted against: REMOTE_ADDR.

    Behind a proxy that is the proxy's address, so every client behind it shares one
    count; trusting a forwarded header would let any client pick its own address.
    """
    return request.META.get("REMOTE_ADDR") or "unknown"


def too_many(response: HttpResponse, error: RateLimited) -> HttpResponse:
    """The page again, as 429 Too Many Requests, saying when to retry."""
    response.status_code = 429
    response["Retry-After"] = str(error.retry_after)
    return response


class LoginForm(AuthenticationForm):
    """Django's login form, with each attempt counted before the password is checked, and
    one error for every failure, so that it never tells whether an account exists."""

    rate_limited: RateLimited | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password and self.request is not None:
            try:
                services.check_login_attempt(username=username, address=client_address(self.request))
            except RateLimited as error:
                self.rate_limited = error
                raise ValidationError(str(error), code="rate_limited") from None
        return super().clean()

    def confirm_login_allowed(self, user: AbstractBaseUser) -> None:
        # An inactive account gets the same words as a wrong password (the default backend
        # never lets one this far; another backend might).
        if not user.is_active:
            raise self.get_invalid_login_error()


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if isinstance(form, LoginForm) and form.rate_limited is not None:
            return too_many(response, form.rate_limited)
        return response


class LogoutView(auth_views.LogoutView):
    """Log out; the user's sockets close, and those of their other sessions reconnect."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        response = super().post(request, *args, **kwargs)
        if isinstance(user, User):
            services.close_sockets(user=user)
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's password; every other session ends, this one stays signed in."""

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        # One transaction: the sockets close (after commit) only once this session already
        # holds the new password's hash, so that its own sockets are let back in.
        with transaction.atomic():
            services.change_password(user=form.user, password=form.cleaned_data["new_password1"])
            update_session_auth_hash(self.request, form.user)
            self.request.session.save()
        return HttpResponseRedirect(self.get_success_url())


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session of the user, this one included, and revoke their API tokens."""
    services.sign_out_everywhere(user=cast(User, request.user))
    logout(request)
    messages.success(request, _("You are signed out everywhere, and your API tokens are revoked."))
    return redirect("login")
