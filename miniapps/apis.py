"""REST API of mini-apps, the diary and the showcase. Thin: parse, call one
service or selector, shape the answer. A class (or a student) one may not
see answers 404 exactly like one that does not exist; a student or a parent
trying to enter the diary gets 403 not_group_teacher."""

from typing import Any, cast

from django.templatetags.static import static
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from common.api import BAD_REQUEST, NOT_AUTHENTICATED, NOT_FOUND, refusal
from miniapps import selectors, services
from miniapps.models import Homework, Mark, MarkValue, MiniApp, TimetableEntry, Weekday

FORBIDDEN_LAUNCH = refusal("not_in_audience: none of the user's roles is in the app's audience; safe_mode.")
FORBIDDEN_DIARY = refusal("not_group_teacher: only the class's teachers and the school's administrators enter it.")
# The refusals of the diary's operations, after the success status: reading a
# class or a student, removing one item, and adding one to a class.
DIARY_READ_REFUSALS = {401: NOT_AUTHENTICATED, 404: NOT_FOUND}
DIARY_DELETE_REFUSALS = {401: NOT_AUTHENTICATED, 403: FORBIDDEN_DIARY, 404: NOT_FOUND}
DIARY_WRITE_REFUSALS = {400: BAD_REQUEST, **DIARY_DELETE_REFUSALS}
TAGS_APPS = ["miniapps"]
TAGS_DIARY = ["diary"]


def user_of(request: Request) -> User:
    return cast(User, request.user)


class SignedInApi(APIView):
    permission_classes = [IsAuthenticated]


def icon_url(app: MiniApp) -> str:
    if app.icon:
        return app.icon.url
    if app.icon_static:
        return static(app.icon_static)
    return ""


# --- Mini-apps ---------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="MiniApp")
class MiniAppSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    icon_url = serializers.CharField(help_text="Empty when the app has no icon.")
    is_verified = serializers.BooleanField()
    is_builtin = serializers.BooleanField(help_text="A page of the portal itself (the diary): no iframe.")
    organisation_id = serializers.IntegerField(allow_null=True, help_text="None: a platform app.")
    role = serializers.CharField(help_text="The role the launch parameters will name.")


def miniapp_payload(item: selectors.LaunchableApp) -> dict[str, Any]:
    app = item.app
    return {
        "slug": app.slug,
        "name": app.name,
        "description": app.description,
        "icon_url": icon_url(app),
        "is_verified": app.is_verified,
        "is_builtin": app.is_builtin,
        "organisation_id": app.organisation_id,
        "role": item.role,
    }


class MiniAppListApi(SignedInApi):
    @extend_schema(
        operation_id="miniapps_list",
        tags=TAGS_APPS,
        summary="The mini-apps the user may launch, in showcase order",
        responses={200: MiniAppSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        items = selectors.miniapps_for_user(user=user_of(request))
        return Response(MiniAppSerializer([miniapp_payload(item) for item in items], many=True).data)


@extend_schema_serializer(component_name="MiniAppLaunch")
class LaunchSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The app's address with the signed parameters (a portal path if built in).")
    params = serializers.DictField(
        child=serializers.CharField(),
        help_text=(
            "app, user_id, role, organisation_id, issued_at, expires_at, nonce and signature (empty for a built-in "
            "app); see docs/miniapps.md for how the app verifies them."
        ),
    )


class MiniAppLaunchApi(SignedInApi):
    @extend_schema(
        operation_id="miniapps_launch",
        tags=TAGS_APPS,
        summary="Sign a launch of a mini-app for the user",
        request=None,
        responses={200: LaunchSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN_LAUNCH, 404: NOT_FOUND},
    )
    def post(self, request: Request, slug: str) -> Response:
        launch = services.miniapp_launch(user=user_of(request), slug=slug)
        return Response(LaunchSerializer({"url": launch.url, "params": launch.params}).data)


# --- The showcase ------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="ShowcaseBot")
class ShowcaseBotSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    url = serializers.CharField()
    is_verified = serializers.BooleanField()


@extend_schema_serializer(component_name="ShowcaseChannel")
class ShowcaseChannelSerializer(serializers.Serializer):
    title = serializers.CharField()
    organisation = serializers.CharField()
    url = serializers.CharField()


@extend_schema_serializer(component_name="Showcase")
class ShowcaseSerializer(serializers.Serializer):
    apps = MiniAppSerializer(many=True)
    bots = ShowcaseBotSerializer(many=True)
    channels = ShowcaseChannelSerializer(many=True)


class ShowcaseApi(SignedInApi):
    @extend_schema(
        operation_id="showcase_get",
        tags=TAGS_APPS,
        summary='The system folder "Education": mini-apps, bots and verified channels for the user',
        responses={200: ShowcaseSerializer, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        showcase = selectors.showcase(user=user_of(request))
        payload = {
            "apps": [miniapp_payload(item) for item in showcase.apps],
            "bots": [bot.__dict__ for bot in showcase.bots],
            "channels": [channel.__dict__ for channel in showcase.channels],
        }
        return Response(ShowcaseSerializer(payload).data)


# --- The diary ---------------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="TimetableEntry")
class TimetableEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group_id = serializers.IntegerField()
    weekday = serializers.IntegerField(help_text="1 Monday … 6 Saturday.")
    period = serializers.IntegerField()
    subject = serializers.CharField()
    teacher_id = serializers.IntegerField(allow_null=True)
    teacher_name = serializers.CharField()
    room = serializers.CharField()


def timetable_payload(entry: TimetableEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "group_id": entry.group_id,
        "weekday": entry.weekday,
        "period": entry.period,
        "subject": entry.subject,
        "teacher_id": entry.teacher_id,
        "teacher_name": entry.teacher.display_name if entry.teacher else "",
        "room": entry.room,
    }


@extend_schema_serializer(component_name="Homework")
class HomeworkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group_id = serializers.IntegerField()
    subject = serializers.CharField()
    due_date = serializers.DateField()
    text = serializers.CharField()
    attachment_url = serializers.CharField(help_text="Empty without an attachment.")


def homework_payload(homework: Homework) -> dict[str, Any]:
    return {
        "id": homework.pk,
        "group_id": homework.group_id,
        "subject": homework.subject,
        "due_date": homework.due_date,
        "text": homework.text,
        "attachment_url": reverse("miniapps:homework_attachment", args=[homework.pk]) if homework.attachment else "",
    }


@extend_schema_serializer(component_name="Mark")
class MarkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group_id = serializers.IntegerField()
    student_id = serializers.IntegerField()
    subject = serializers.CharField()
    date = serializers.DateField()
    value = serializers.ChoiceField(choices=MarkValue.choices)
    comment = serializers.CharField()


def mark_payload(mark: Mark) -> dict[str, Any]:
    return {
        "id": mark.pk,
        "group_id": mark.group_id,
        "student_id": mark.student_id,
        "subject": mark.subject,
        "date": mark.date,
        "value": mark.value,
        "comment": mark.comment,
    }


def diary_group_input(
    request: Request, *, group_id: int, serializer_class: type[serializers.Serializer]
) -> tuple[User, dict[str, Any]]:
    """The person and the valid input of an addition to a class's diary. The
    right to enter the diary is checked before the input is read, so that a
    student or a stranger gets 403/404 rather than field errors."""
    user = user_of(request)
    selectors.diary_group_edit_access(user=user, group_id=group_id)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return user, data.validated_data


class TimetableApi(SignedInApi):
    @extend_schema_serializer(component_name="TimetableEntrySet")
    class InputSerializer(serializers.Serializer):
        weekday = serializers.ChoiceField(choices=Weekday.choices)
        period = serializers.IntegerField(min_value=1, max_value=12)
        subject = serializers.CharField(max_length=120)
        teacher_id = serializers.IntegerField(required=False, allow_null=True, help_text="One of the class's teachers.")
        room = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="diary_timetable_list",
        tags=TAGS_DIARY,
        summary="A class's weekly timetable",
        responses={200: TimetableEntrySerializer(many=True), **DIARY_READ_REFUSALS},
    )
    def get(self, request: Request, group_id: int) -> Response:
        access = selectors.diary_group_access(user=user_of(request), group_id=group_id)
        entries = selectors.group_timetable(group=access.group)
        return Response(TimetableEntrySerializer([timetable_payload(entry) for entry in entries], many=True).data)

    @extend_schema(
        operation_id="diary_timetable_set",
        tags=TAGS_DIARY,
        summary="Put a lesson into a timetable slot (replaces the slot's lesson)",
        request=InputSerializer,
        responses={201: TimetableEntrySerializer, **DIARY_WRITE_REFUSALS},
    )
    def post(self, request: Request, group_id: int) -> Response:
        user, data = diary_group_input(request, group_id=group_id, serializer_class=self.InputSerializer)
        entry = services.timetable_entry_set(actor=user, group_id=group_id, **data)
        return Response(TimetableEntrySerializer(timetable_payload(entry)).data, status=status.HTTP_201_CREATED)


class TimetableEntryApi(SignedInApi):
    @extend_schema(
        operation_id="diary_timetable_delete",
        tags=TAGS_DIARY,
        summary="Remove a lesson from the timetable",
        responses={204: None, **DIARY_DELETE_REFUSALS},
    )
    def delete(self, request: Request, entry_id: int) -> Response:
        services.timetable_entry_delete(actor=user_of(request), entry_id=entry_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HomeworkApi(SignedInApi):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="HomeworkCreate")
    class InputSerializer(serializers.Serializer):
        subject = serializers.CharField(max_length=120)
        due_date = serializers.DateField()
        text = serializers.CharField(max_length=5000)
        attachment = serializers.FileField(required=False, help_text="Optional, at most 10 MB (multipart only).")

    @extend_schema(
        operation_id="diary_homework_list",
        tags=TAGS_DIARY,
        summary="A class's homework, due from two weeks ago on",
        responses={200: HomeworkSerializer(many=True), **DIARY_READ_REFUSALS},
    )
    def get(self, request: Request, group_id: int) -> Response:
        access = selectors.diary_group_access(user=user_of(request), group_id=group_id)
        items = selectors.group_homework(group=access.group)
        return Response(HomeworkSerializer([homework_payload(item) for item in items], many=True).data)

    @extend_schema(
        operation_id="diary_homework_create",
        tags=TAGS_DIARY,
        summary="Set homework for a class",
        request={"application/json": InputSerializer, "multipart/form-data": InputSerializer},
        responses={201: HomeworkSerializer, **DIARY_WRITE_REFUSALS},
    )
    def post(self, request: Request, group_id: int) -> Response:
        user, data = diary_group_input(request, group_id=group_id, serializer_class=self.InputSerializer)
        homework = services.homework_create(actor=user, group_id=group_id, **data)
        return Response(HomeworkSerializer(homework_payload(homework)).data, status=status.HTTP_201_CREATED)


class HomeworkItemApi(SignedInApi):
    @extend_schema(
        operation_id="diary_homework_delete",
        tags=TAGS_DIARY,
        summary="Remove homework",
        responses={204: None, **DIARY_DELETE_REFUSALS},
    )
    def delete(self, request: Request, homework_id: int) -> Response:
        services.homework_delete(actor=user_of(request), homework_id=homework_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MarksApi(SignedInApi):
    @extend_schema_serializer(component_name="MarkCreate")
    class InputSerializer(serializers.Serializer):
        student_id = serializers.IntegerField(min_value=1)
        subject = serializers.CharField(max_length=120)
        date = serializers.DateField()
        value = serializers.ChoiceField(choices=MarkValue.choices)
        comment = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="diary_marks_list",
        tags=TAGS_DIARY,
        summary="A class's marks: all for its teachers, one's own (or one's children's) for students and parents",
        responses={200: MarkSerializer(many=True), **DIARY_READ_REFUSALS},
    )
    def get(self, request: Request, group_id: int) -> Response:
        access = selectors.diary_group_access(user=user_of(request), group_id=group_id)
        marks = selectors.group_marks(access=access)
        return Response(MarkSerializer([mark_payload(mark) for mark in marks], many=True).data)

    @extend_schema(
        operation_id="diary_marks_create",
        tags=TAGS_DIARY,
        summary="Give a student of the class a mark",
        request=InputSerializer,
        responses={201: MarkSerializer, **DIARY_WRITE_REFUSALS},
    )
    def post(self, request: Request, group_id: int) -> Response:
        user, data = diary_group_input(request, group_id=group_id, serializer_class=self.InputSerializer)
        mark = services.mark_create(actor=user, group_id=group_id, **data)
        return Response(MarkSerializer(mark_payload(mark)).data, status=status.HTTP_201_CREATED)


class MarkItemApi(SignedInApi):
    @extend_schema(
        operation_id="diary_marks_delete",
        tags=TAGS_DIARY,
        summary="Remove a mark",
        responses={204: None, **DIARY_DELETE_REFUSALS},
    )
    def delete(self, request: Request, mark_id: int) -> Response:
        services.mark_delete(actor=user_of(request), mark_id=mark_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="StudentDiary")
class StudentDiarySerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    student_name = serializers.CharField()
    timetable = TimetableEntrySerializer(many=True)
    homework = HomeworkSerializer(many=True)
    marks = MarkSerializer(many=True)


class StudentDiaryApi(SignedInApi):
    @extend_schema(
        operation_id="diary_student_get",
        tags=TAGS_DIARY,
        summary="A student's diary: timetable and homework of their classes, and their marks",
        responses={200: StudentDiarySerializer, **DIARY_READ_REFUSALS},
    )
    def get(self, request: Request, student_id: int) -> Response:
        student = selectors.diary_student_access(user=user_of(request), student_id=student_id)
        diary = selectors.student_diary(student=student)
        payload = {
            "student_id": student.pk,
            "student_name": student.display_name,
            "timetable": [timetable_payload(entry) for entry in diary.timetable],
            "homework": [homework_payload(item) for item in diary.homework],
            "marks": [mark_payload(mark) for mark in diary.marks],
        }
        return Response(StudentDiarySerializer(payload).data)


urlpatterns = [
    path("miniapps/", MiniAppListApi.as_view(), name="miniapps-list"),
    path("miniapps/<slug:slug>/launch/", MiniAppLaunchApi.as_view(), name="miniapps-launch"),
    path("showcase/", ShowcaseApi.as_view(), name="showcase"),
    path("diary/groups/<int:group_id>/timetable/", TimetableApi.as_view(), name="diary-timetable"),
    path("diary/timetable/<int:entry_id>/", TimetableEntryApi.as_view(), name="diary-timetable-entry"),
    path("diary/groups/<int:group_id>/homework/", HomeworkApi.as_view(), name="diary-homework"),
    path("diary/homework/<int:homework_id>/", HomeworkItemApi.as_view(), name="diary-homework-item"),
    path("diary/groups/<int:group_id>/marks/", MarksApi.as_view(), name="diary-marks"),
    path("diary/marks/<int:mark_id>/", MarkItemApi.as_view(), name="diary-mark"),
    path("diary/students/<int:student_id>/", StudentDiaryApi.as_view(), name="diary-student"),
]
