"""HTML pages of merging two accounts of one person (accounts.merge); plain
forms, they work without JavaScript."""

import phonenumbers
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.merge import account_merge_codes_request, account_merge_confirm, account_merge_pending
from accounts.models import User
from accounts.network import client_ip
from common.errors import ApplicationError


class MergeStartForm(forms.Form):
    other_phone = forms.CharField(
        label=gettext_lazy("Number of your other account"),
        max_length=64,
        help_text=gettext_lazy("We will send a code to this number and to the number of this account."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )


class MergeConfirmForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code sent to this account's number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}),
    )
    other_code = forms.CharField(
        label=gettext_lazy("Code sent to the other number"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "size": 8}),
    )


def _display(phone: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _page(
    request: HttpRequest,
    *,
    start_form: MergeStartForm | None = None,
    confirm_form: MergeConfirmForm | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    pending = account_merge_pending(user=user)
    context = {
        "start_form": start_form or MergeStartForm(),
        "confirm_form": confirm_form or MergeConfirmForm(),
        "pending": pending,
        "own_phone": _display(str(user.phone)),
        "other_phone": _display(pending["phone"]) if pending else "",
        "own_confirmed": bool(pending and str(user.phone) in pending.get("confirmed", [])),
        "other_confirmed": bool(pending and pending["phone"] in pending.get("confirmed", [])),
    }
    response = render(request, "accounts/merge.html", context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def merge_view(request: HttpRequest) -> HttpResponse:
    """Step 1: the number of the other account; codes go to both numbers."""
    if request.method != "POST":
        return _page(request)
    start_form = MergeStartForm(request.POST)
    if not start_form.is_valid():
        return _page(request, start_form=start_form, status=400)
    try:
        other = account_merge_codes_request(
            user=request.user,  # type: ignore[arg-type]
            other_phone=start_form.cleaned_data["other_phone"],
            ip=client_ip(request),
        )
    except ApplicationError as error:
        start_form.add_error("other_phone", error.message)
        return _page(request, start_form=start_form, status=error.status_code, retry_after=error.retry_after)
    messages.success(
        request,
        _("We sent codes to %(own)s and %(other)s.")
        % {"own": _display(str(request.user.phone)), "other": _display(other)},  # type: ignore[union-attr]
    )
    return redirect("accounts:merge")


@sensitive_post_parameters("code", "other_code")
@never_cache
@require_POST
@login_required
def merge_confirm_view(request: HttpRequest) -> HttpResponse:
    """Step 2: both codes; the other account is merged into this one."""
    confirm_form = MergeConfirmForm(request.POST)
    confirm_form.is_valid()
    try:
        account_merge_confirm(
            user=request.user,  # type: ignore[arg-type]
            code=confirm_form.cleaned_data.get("code", ""),
            other_code=confirm_form.cleaned_data.get("other_code", ""),
            ip=client_ip(request),
        )
    except ApplicationError as error:
        field = error.extra.get("field")
        confirm_form.add_error(field if field in ("code", "other_code") else None, error.message)
        return _page(request, confirm_form=confirm_form, status=error.status_code, retry_after=error.retry_after)
    messages.success(request, _("The accounts are merged: everything of the other account is now in this one."))
    return redirect("accounts:profile")
