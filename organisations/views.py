"""HTML pages of the organisation directory, and the one door to profile
photos; they work without JavaScript."""

from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_safe
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import TokenAuthentication
from accounts.models import User
from accounts.photos import PHOTO_CONTENT_TYPE
from organisations import extensions, selectors
from organisations.forms import DirectorySearchForm
from organisations.models import Organisation

DIRECTORY_PAGE_SIZE = 20
CHILDREN_SHOWN = 100


@login_required
@require_GET
def directory_view(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = DirectorySearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        organisations = Organisation.objects.none()
    else:
        filters = form.cleaned_data if form.is_bound else {}
        organisations = selectors.directory_search(
            user=user,
            query=filters.get("q", ""),
            inn=filters.get("inn", ""),
            region_code=filters.get("region", ""),
            municipality=filters.get("municipality", ""),
            kind=filters.get("kind", ""),
        )
    page = Paginator(organisations, DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    # The pager's links keep the search and change only the page.
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "organisations/directory.html",
        {"form": form, "page": page, "query_string": query.urlencode()},
    )


@login_required
@require_GET
def organisation_detail_view(request: HttpRequest, organisation_id: int) -> HttpResponse:
    user = cast(User, request.user)
    organisation = selectors.organisation_get(user=user, organisation_id=organisation_id)
    if organisation is None:
        raise Http404()
    is_member = selectors.user_is_member(user=user, organisation=organisation)
    academic_year = selectors.current_academic_year()
    # A regional authority has thousands of schools below it: the page lists
    # the first ones and the directory search finds the rest.
    children = list(selectors.organisation_children_visible(user=user, organisation=organisation)[: CHILDREN_SHOWN + 1])
    children_more = 0
    if len(children) > CHILDREN_SHOWN:
        children_more = (
            selectors.organisation_children_visible(user=user, organisation=organisation).count() - CHILDREN_SHOWN
        )
    parent_is_visible = bool(
        organisation.parent_id
        and selectors.organisation_get(user=user, organisation_id=organisation.parent_id) is not None
    )
    context = {
        "organisation": organisation,
        "channels": extensions.organisation_channels(user=user, organisation=organisation),
        "contacts_visible": selectors.organisation_contacts_visible(user=user, organisation=organisation),
        "parent_is_visible": parent_is_visible,
        "children": children[:CHILDREN_SHOWN],
        "children_more": children_more,
        "is_member": is_member,
        "academic_year": academic_year,
        "academic_year_end": academic_year + 1,
        "study_groups": (
            selectors.user_study_groups(user=user, organisation=organisation, academic_year=academic_year)
            if is_member
            else []
        ),
    }
    return render(request, "organisations/detail.html", context)


def _request_user(request: HttpRequest) -> Any:
    """The browser's session user, or an app's token user (apps load
    photos with `Authorization: Token …` like every API call)."""
    if request.user.is_authenticated:
        return request.user
    try:
        authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return None
    return authenticated[0] if authenticated else None


@require_safe
def user_photo_view(request: HttpRequest, user_id: int) -> FileResponse:
    """A person's profile photo, only for people who may see the profile
    (selectors.person_get: a child's only for its contacts). Anyone else,
    signed in or not, gets the same 404 as for a person without a photo or
    no person at all. Photos are never reached through MEDIA_URL."""
    viewer = _request_user(request)
    person = selectors.person_get(viewer=viewer, user_id=user_id) if viewer is not None else None
    if person is None or not person.photo:
        raise Http404()
    try:
        handle = person.photo.open("rb")
    except FileNotFoundError:
        raise Http404() from None
    response = FileResponse(handle, content_type=PHOTO_CONTENT_TYPE)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    # Only the viewer's own browser may keep it: shared caches must not
    # hand a child's photo to the next person. The address changes with
    # the photo (accounts.selectors.user_photo_path).
    response["Cache-Control"] = "private, max-age=3600"
    response["Vary"] = "Cookie, Authorization"
    return response
