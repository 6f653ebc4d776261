"""HTML pages of sign-in, sign-out and the profile (with the photo, the
personal data export and deletion on request); they work without
JavaScript."""

from typing import Any
from urllib.parse import urlencode

import phonenumbers
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import AccountDeleteCodeForm, CodeForm, PhoneForm, PhotoForm, ProfileForm
from accounts.models import User
from accounts.network import client_ip
from accounts.selectors import login_code_resend_after, user_photo_path
from accounts.services import (
    PROFILE_FIELDS,
    account_delete,
    login_code_request,
    login_code_verify,
    profile_photo_clear,
    profile_photo_set,
    profile_update,
    session_logout_everywhere,
)
from common.errors import ApplicationError

# The number being signed in, between the two steps.
SESSION_LOGIN_PHONE = "accounts_login_phone"
# Set once a code to confirm deleting the account was sent: the page then
# shows the second step.
SESSION_DELETE_CODE_SENT = "accounts_delete_code_sent"
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _login_url(next_url: str) -> str:
    url = reverse("accounts:login")
    return url + "?" + urlencode({"next": next_url}) if next_url else url


def _phone_for_display(phone: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """Step 1: the phone number; step 2: the code from the SMS (the number
    waits in the session). Signs in with a session and goes to `next`."""
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "home")
    phone: str | None = request.session.get(SESSION_LOGIN_PHONE)
    phone_form = PhoneForm()
    code_form = CodeForm()
    resend_error = ""
    status = 200
    retry_after: int | None = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "phone":
            phone_form = PhoneForm(request.POST)
            if phone_form.is_valid():
                phone = phone_form.cleaned_data["phone"]
                try:
                    login_code_request(phone=phone, ip=client_ip(request))
                except ApplicationError as error:
                    if error.code == "resend_too_soon":
                        # A code went out moments ago: go on and type it in.
                        request.session[SESSION_LOGIN_PHONE] = phone
                        messages.info(request, error.message)
                        return redirect(_login_url(next_url))
                    phone_form.add_error("phone", error.message)
                    status, retry_after = error.status_code, error.retry_after
                else:
                    request.session[SESSION_LOGIN_PHONE] = phone
                    messages.success(request, _("We sent a code to %(phone)s.") % {"phone": _phone_for_display(phone)})
                    return redirect(_login_url(next_url))
            else:
                status = 400
            phone = None
        elif action == "resend" and phone:
            try:
                login_code_request(phone=phone, ip=client_ip(request))
            except ApplicationError as error:
                resend_error = error.message
                status, retry_after = error.status_code, error.retry_after
            else:
                messages.success(request, _("We sent a new code to %(phone)s.") % {"phone": _phone_for_display(phone)})
                return redirect(_login_url(next_url))
        elif action == "code" and phone:
            code_form = CodeForm(request.POST)
            if code_form.is_valid():
                try:
                    user = login_code_verify(phone=phone, code=code_form.cleaned_data["code"], ip=client_ip(request))
                except ApplicationError as error:
                    code_form.add_error("code", error.message)
                    status, retry_after = error.status_code, error.retry_after
                else:
                    request.session.pop(SESSION_LOGIN_PHONE, None)
                    login(request, user, backend=SESSION_BACKEND)
                    return redirect(next_url or "home")
            else:
                status = 400
        else:
            # "Change the number", or a step whose number was lost.
            request.session.pop(SESSION_LOGIN_PHONE, None)
            return redirect(_login_url(next_url))
    context: dict[str, Any] = {
        "step": "code" if phone else "phone",
        "phone_form": phone_form,
        "code_form": code_form,
        "phone_display": _phone_for_display(phone) if phone else "",
        "resend_after": login_code_resend_after(phone=phone) if phone else 0,
        "resend_error": resend_error,
        "next": next_url,
    }
    response = render(request, "accounts/login.html", context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponseRedirect:
    """Sign out of this browser."""
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


def _profile_page(
    request: HttpRequest,
    *,
    form: ProfileForm | None = None,
    photo_form: PhotoForm | None = None,
    delete_form: AccountDeleteCodeForm | None = None,
    delete_error: str = "",
    status: int = 200,
    retry_after: int | None = None,
) -> HttpResponse:
    """The profile page; each of its forms posts to its own view, which
    renders the page again with that form's errors."""
    user: User = request.user  # type: ignore[assignment]
    if form is None:
        form = ProfileForm(
            initial={field: getattr(user, field) for field in PROFILE_FIELDS}, current_time_zone=user.time_zone
        )
    phone = str(user.phone)
    context = {
        "form": form,
        "photo_form": photo_form or PhotoForm(),
        "delete_form": delete_form or AccountDeleteCodeForm(),
        "delete_step": "code" if delete_form is not None or request.session.get(SESSION_DELETE_CODE_SENT) else "start",
        "delete_error": delete_error,
        "delete_resend_after": login_code_resend_after(phone=phone),
        "profile_user": user,
        "photo_url": user_photo_path(user=user),
        "phone_display": _phone_for_display(phone),
    }
    response = render(request, "accounts/profile.html", context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile_view(request: HttpRequest) -> HttpResponse:
    """The user's own name, number, language and time zone."""
    user: User = request.user  # type: ignore[assignment]
    if request.method != "POST":
        return _profile_page(request)
    form = ProfileForm(request.POST, current_time_zone=user.time_zone)
    if not form.is_valid():
        return _profile_page(request, form=form, status=400)
    profile_update(user=user, **{field: form.cleaned_data[field] for field in PROFILE_FIELDS})
    messages.success(request, _("Profile saved."))
    response = redirect("accounts:profile")
    # The interface follows the language chosen in the profile.
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        user.language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
    )
    return response


@never_cache
@require_POST
@login_required
def profile_photo_view(request: HttpRequest) -> HttpResponse:
    """Upload a new profile photo (multipart, field "photo")."""
    photo_form = PhotoForm(request.POST, request.FILES)
    if not photo_form.is_valid():
        return _profile_page(request, photo_form=photo_form, status=400)
    try:
        profile_photo_set(user=request.user, uploaded_file=photo_form.cleaned_data["photo"])  # type: ignore[arg-type]
    except ApplicationError as error:
        photo_form.add_error("photo", error.message)
        return _profile_page(request, photo_form=photo_form, status=error.status_code)
    messages.success(request, _("Photo saved."))
    return redirect("accounts:profile")


@require_POST
@login_required
def profile_photo_remove_view(request: HttpRequest) -> HttpResponseRedirect:
    """Remove the profile photo."""
    profile_photo_clear(user=request.user)  # type: ignore[arg-type]
    messages.success(request, _("Photo removed."))
    return redirect("accounts:profile")


@never_cache
@require_POST
@login_required
def account_delete_code_view(request: HttpRequest) -> HttpResponse:
    """Step 1 of deleting the account: send a code to its number."""
    user: User = request.user  # type: ignore[assignment]
    phone = str(user.phone)
    try:
        login_code_request(phone=phone, ip=client_ip(request))
    except ApplicationError as error:
        if error.code != "resend_too_soon":
            return _profile_page(
                request, delete_error=error.message, status=error.status_code, retry_after=error.retry_after
            )
        # A code went out moments ago: go on and type it in.
        messages.info(request, error.message)
    else:
        messages.success(request, _("We sent a code to %(phone)s.") % {"phone": _phone_for_display(phone)})
    request.session[SESSION_DELETE_CODE_SENT] = True
    return redirect(reverse("accounts:profile") + "#delete-account")


@sensitive_post_parameters("delete-code")
@never_cache
@require_POST
@login_required
def account_delete_view(request: HttpRequest) -> HttpResponse:
    """Step 2 of deleting the account: the code from the SMS. The account is
    deleted at once and the browser signed out."""
    delete_form = AccountDeleteCodeForm(request.POST)
    if not delete_form.is_valid():
        return _profile_page(request, delete_form=delete_form, status=400)
    try:
        account_delete(user=request.user, code=delete_form.cleaned_data["code"], ip=client_ip(request))  # type: ignore[arg-type]
    except ApplicationError as error:
        delete_form.add_error("code", error.message)
        return _profile_page(request, delete_form=delete_form, status=error.status_code, retry_after=error.retry_after)
    logout(request)
    messages.success(request, _("Your account has been deleted."))
    return redirect(settings.LOGOUT_REDIRECT_URL)


@require_POST
@login_required
def logout_everywhere_view(request: HttpRequest) -> HttpResponseRedirect:
    """Sign out on every device and browser."""
    session_logout_everywhere(user=request.user)  # type: ignore[arg-type]
    logout(request)
    messages.success(request, _("You have been signed out on every device."))
    return redirect("accounts:login")
