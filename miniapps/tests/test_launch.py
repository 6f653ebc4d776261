"""Who may launch a mini-app, the launch page (sandboxed iframe, CSP for the
app's origin only), the REST launch, and the registry's checks."""

import io
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from common.errors import NotFound, PermissionDenied
from miniapps import selectors, services, signing
from miniapps.models import MiniApp
from miniapps.tests.factories import api_for, client_for, make_app
from organisations.models import OrganisationKind, Role
from organisations.tests.factories import make_member, make_organisation, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


def ru(text: str) -> str:
    with translation.override("ru"):
        return translation.gettext(text)


def slugs(user: User) -> list[str]:
    return [item.app.slug for item in selectors.miniapps_for_user(user=user)]


# --- Audience ------------------------------------------------------------------------------------------


def test_apps_are_listed_for_the_roles_of_their_audience_in_showcase_order():
    world = make_school_with_class(students=1)
    make_app(slug="for-students", audience=(Role.STUDENT,), position=20)
    make_app(slug="for-parents", audience=(Role.PARENT,), position=10)
    make_app(slug="for-staff", audience=(Role.TEACHER, Role.ADMINISTRATOR), position=5)
    make_app(slug="hidden", audience=(Role.STUDENT, Role.PARENT))
    MiniApp.objects.filter(slug="hidden").update(is_active=False)

    assert slugs(world.student) == ["for-students"]
    assert slugs(world.parent) == ["for-parents"]
    assert slugs(world.teacher) == ["for-staff"]
    assert slugs(world.administrator) == ["for-staff"]
    assert slugs(make_user()) == []


def test_a_person_outside_the_audience_is_refused_403_and_no_launch_is_signed():
    world = make_school_with_class(students=1)
    make_app(slug="for-students", audience=(Role.STUDENT,))

    with pytest.raises(PermissionDenied) as refused:
        services.miniapp_launch(user=world.parent, slug="for-students")
    assert refused.value.code == "not_in_audience"

    response = api_for(world.parent).post("/api/v1/miniapps/for-students/launch/")
    assert response.status_code == 403
    assert response.json()["code"] == "not_in_audience"
    assert "signature" not in response.content.decode()

    page = client_for(world.parent).get("/apps/for-students/")
    assert page.status_code == 403
    assert "<iframe" not in page.content.decode()
    assert "Content-Security-Policy" in page.headers
    assert "frame-src" not in page.headers["Content-Security-Policy"]


def test_an_unknown_or_inactive_app_is_404():
    world = make_school_with_class(students=1)
    make_app(slug="gone", audience=(Role.STUDENT,))
    MiniApp.objects.filter(slug="gone").update(is_active=False)

    assert api_for(world.student).post("/api/v1/miniapps/gone/launch/").status_code == 404
    assert api_for(world.student).post("/api/v1/miniapps/nothing/launch/").status_code == 404
    assert client_for(world.student).get("/apps/gone/").status_code == 404


def test_an_organisations_app_is_for_its_members_and_the_organisations_below_it():
    authority = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="Минобр")
    inside = make_school_with_class(students=1, parent=authority)
    outside = make_school_with_class(students=1)
    make_app(slug="regional", audience=(Role.TEACHER, Role.STUDENT), organisation=authority)

    assert slugs(inside.teacher) == ["regional"]
    assert slugs(outside.teacher) == []
    launch = services.miniapp_launch(user=inside.teacher, slug="regional", now=1_800_000_000)
    assert (launch.params["role"], launch.params["organisation_id"]) == ("teacher", str(inside.school.pk))
    with pytest.raises(PermissionDenied):
        services.miniapp_launch(user=outside.teacher, slug="regional")


def test_a_child_in_safe_mode_launches_only_apps_of_the_platform_and_of_their_own_school():
    authority = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="Минобр")
    world = make_school_with_class(students=1, parent=authority)
    child = world.student
    User.objects.filter(pk=child.pk).update(is_safe_mode=True)
    child.refresh_from_db()
    make_app(slug="platform", audience=(Role.STUDENT,), position=1)
    make_app(slug="own-school", audience=(Role.STUDENT,), organisation=world.school, position=2)
    make_app(slug="regional", audience=(Role.STUDENT,), organisation=authority, position=3)
    make_app(slug="other-school", audience=(Role.STUDENT,), organisation=make_organisation(), position=4)

    assert slugs(child) == ["platform", "own-school"]
    with pytest.raises(PermissionDenied) as refused:
        services.miniapp_launch(user=child, slug="regional")
    assert refused.value.code == "safe_mode"
    with pytest.raises(PermissionDenied) as refused:
        services.miniapp_launch(user=child, slug="other-school")
    assert refused.value.code == "not_in_audience"
    page = client_for(child).get("/apps/regional/")
    assert page.status_code == 403
    assert "<iframe" not in page.content.decode()
    # The same child out of safe mode may open the regional app.
    User.objects.filter(pk=child.pk).update(is_safe_mode=False)
    child.refresh_from_db()
    assert slugs(child) == ["platform", "own-school", "regional"]


def test_the_launch_role_is_the_first_of_the_persons_roles_in_the_audience():
    world = make_school_with_class(students=1)
    make_member(organisation=world.school, role=Role.PARENT, user=world.teacher)
    make_app(slug="both", audience=(Role.PARENT, Role.TEACHER))

    launch = services.miniapp_launch(user=world.teacher, slug="both")

    assert launch.params["role"] == "teacher"


# --- The launch page and the API --------------------------------------------------------------------


def test_the_launch_page_frames_the_app_sandboxed_with_signed_parameters_and_csp_for_its_origin():
    world = make_school_with_class(students=1)
    app = make_app(slug="pushkin", audience=(Role.STUDENT,), url="https://pushkin.example.org/app", name="Пушкинская")

    response = client_for(world.student).get("/apps/pushkin/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'sandbox="allow-scripts allow-forms allow-same-origin"' in html
    assert 'referrerpolicy="no-referrer"' in html
    src = html.split("<iframe", 1)[1].split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert src.startswith("https://pushkin.example.org/app?app=pushkin&")
    params = signing.launch_params_verify(query=urlsplit(src).query, secret=app.secret, max_age_seconds=300)
    assert (params["user_id"], params["role"], params["organisation_id"]) == (
        str(world.student.pk),
        "student",
        str(world.school.pk),
    )
    policy = response.headers["Content-Security-Policy"]
    assert "frame-src https://pushkin.example.org" in policy
    assert "frame-src https://pushkin.example.org;" in policy + ";"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # Other pages frame nothing.
    assert "frame-src" not in client_for(world.student).get("/education/").headers["Content-Security-Policy"]


def test_a_built_in_app_opens_the_portals_own_page():
    world = make_school_with_class(students=1)
    make_app(slug="my-school", audience=(Role.STUDENT,), url="/diary/", is_builtin=True)

    response = client_for(world.student).get("/apps/my-school/")
    launch = api_for(world.student).post("/api/v1/miniapps/my-school/launch/")

    assert (response.status_code, response["Location"]) == (302, "/diary/")
    assert launch.json() == {"url": "/diary/", "params": {}}


def test_the_api_lists_the_users_apps_and_signs_a_launch():
    world = make_school_with_class(students=1)
    app = make_app(slug="pushkin", audience=(Role.STUDENT,), description="Афиша", is_verified=True)
    make_app(slug="staff-only", audience=(Role.TEACHER,))

    listed = api_for(world.student).get("/api/v1/miniapps/")
    launched = api_for(world.student).post("/api/v1/miniapps/pushkin/launch/")

    assert listed.status_code == 200
    assert listed.json() == [
        {
            "slug": "pushkin",
            "name": "Мероприятия",
            "description": "Афиша",
            "icon_url": "",
            "is_verified": True,
            "is_builtin": False,
            "organisation_id": None,
            "role": "student",
        }
    ]
    assert launched.status_code == 200
    body = launched.json()
    assert body["url"] == "https://pushkin.example.org/launch?" + signing.launch_query(body["params"])
    assert signing.launch_params_verify(query=urlsplit(body["url"]).query, secret=app.secret, max_age_seconds=300)[
        "user_id"
    ] == str(world.student.pk)
    assert APIClient().get("/api/v1/miniapps/").status_code in (401, 403)


def test_launching_needs_a_signed_in_person():
    make_app(slug="pushkin")

    response = Client().get("/apps/pushkin/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/apps/pushkin/")


# --- The registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://pushkin.example.org/",
        "http://localhost:8000/",
        "ftp://example.org/",
        "https://user:password@example.org/",
        "https://example.org/?a=1",
        "https://example.org/#top",
        "https:///nohost",
        "javascript:alert(1)",
        "/diary/",
    ],
)
def test_an_app_address_must_be_https(url):
    with pytest.raises(ValidationError) as refused:
        make_app(slug="bad", url=url)

    assert "url" in refused.value.message_dict
    assert not MiniApp.objects.filter(slug="bad").exists()


def test_http_localhost_is_allowed_only_in_development(settings):
    settings.DEBUG = True

    app = make_app(slug="local", url="http://localhost:8765/")

    assert app.url == "http://localhost:8765/"


def test_the_audience_must_name_known_roles():
    for audience in ((), ("pupil",)):
        with pytest.raises(ValidationError) as refused:
            make_app(slug="bad", audience=audience)
        assert "audience" in refused.value.message_dict
    assert not MiniApp.objects.filter(slug="bad").exists()


def test_registering_again_keeps_the_secret_and_rotating_replaces_it():
    app = make_app(slug="pushkin")
    secret = app.secret

    again = make_app(slug="pushkin", name="Пушкинская карта")
    rotated = services.miniapp_secret_rotate(app=again)

    assert again.pk == app.pk and len(secret) == 43
    assert MiniApp.objects.get(pk=app.pk).secret == rotated != secret


def test_admin_shows_the_secret_once_on_creation_and_never_in_the_form():
    superuser = User.objects.create_superuser("+79990005555")
    client = client_for(superuser)

    response = client.post(
        "/admin/miniapps/miniapp/add/",
        {
            "name": "Переменка",
            "slug": "peremenka",
            "description": "",
            "icon_static": "",
            "url": "https://peremenka.example.org/",
            "audience": ["student", "teacher"],
            "organisation": "",
            "is_active": "on",
            "position": "50",
            "max_launch_age_seconds": "300",
        },
        follow=True,
    )

    app = MiniApp.objects.get(slug="peremenka")
    assert app.audience == ["student", "teacher"]
    assert app.secret in response.content.decode()
    change_page = client.get(f"/admin/miniapps/miniapp/{app.pk}/change/").content.decode()
    assert app.secret not in change_page


def test_admin_refuses_an_http_address_and_stores_nothing():
    superuser = User.objects.create_superuser("+79990005556")

    response = client_for(superuser).post(
        "/admin/miniapps/miniapp/add/",
        {
            "name": "X",
            "slug": "x",
            "url": "http://x.example.org/",
            "audience": ["student"],
            "position": "1",
            "max_launch_age_seconds": "300",
        },
    )

    assert response.status_code == 200
    assert ru("Only https:// addresses are allowed.") in response.content.decode()
    assert not MiniApp.objects.exists()


def test_a_missing_app_raises_not_found_for_the_service():
    world = make_school_with_class(students=0)
    with pytest.raises(NotFound):
        services.miniapp_launch(user=world.teacher, slug="nothing")


def test_admin_accepts_an_image_icon_and_refuses_anything_else(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    client = client_for(User.objects.create_superuser("+79990005557"))
    form = {
        "name": "Награды",
        "url": "https://awards.example.org/",
        "audience": ["student"],
        "position": "1",
        "max_launch_age_seconds": "300",
    }
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "#0b57a4").save(buffer, "PNG")
    png = buffer.getvalue()

    refused = client.post(
        "/admin/miniapps/miniapp/add/",
        {**form, "slug": "fake", "icon": SimpleUploadedFile("icon.png", b"<script>alert(1)</script>")},
    )
    accepted = client.post(
        "/admin/miniapps/miniapp/add/", {**form, "slug": "awards", "icon": SimpleUploadedFile("icon.png", png)}
    )

    assert refused.status_code == 200 and "icon" in refused.context["adminform"].form.errors
    assert not MiniApp.objects.filter(slug="fake").exists()
    assert accepted.status_code == 302, accepted.context["adminform"].form.errors
    app = MiniApp.objects.get(slug="awards")
    assert app.icon.name.startswith("miniapps/icons/")
    assert client.get("/api/v1/miniapps/").status_code == 200


def test_admin_action_rotates_the_secret_and_shows_the_new_one_once():
    client = client_for(User.objects.create_superuser("+79990005558"))
    app = make_app(slug="awards")
    old = app.secret

    response = client.post(
        "/admin/miniapps/miniapp/", {"action": "rotate_secret", "_selected_action": [app.pk]}, follow=True
    )

    app.refresh_from_db()
    assert app.secret != old
    assert app.secret in response.content.decode()
    assert app.secret not in client.get("/admin/miniapps/miniapp/").content.decode()
