"""REST API of the organisation directory: regions, organisations and their
classes, educator verification requests, guardianship codes, safe mode and
people. Thin: parse, call one selector or service, shape the answer."""

from typing import Any, cast

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.serializers import user_photo_url
from common.api import FIELD_ERRORS, NOT_AUTHENTICATED, NOT_FOUND, RATE_LIMITED, FieldErrorSerializer, refusal
from common.errors import NotFound
from common.ratelimit import rate_limit_hit
from organisations import selectors, services
from organisations.models import Membership, Organisation, OrganisationKind

GUARDIANSHIP_CLAIM_RATE = "10/hour"


# --- Shared shapes -------------------------------------------------------------


@extend_schema_serializer(component_name="Region")
class RegionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    name_en = serializers.CharField()
    time_zone = serializers.CharField()


@extend_schema_serializer(component_name="OrganisationBrief")
class OrganisationBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    short_name = serializers.CharField()
    is_verified = serializers.BooleanField()


@extend_schema_serializer(component_name="PersonBrief")
class PersonBriefSerializer(serializers.Serializer):
    """A name as shown everywhere: the badge always comes from the server."""

    id = serializers.IntegerField()
    display_name = serializers.CharField()
    is_verified_educator = serializers.BooleanField()


@extend_schema_serializer(component_name="Person")
class PersonSerializer(PersonBriefSerializer):
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    is_name_flagged = serializers.BooleanField()
    photo_url = serializers.SerializerMethodField(help_text="Served only to people who may see the profile.")

    def get_photo_url(self, person: User) -> str | None:
        return user_photo_url(user=person, context=self.context)


class DirectoryPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class RegionPagination(LimitOffsetPagination):
    # All 89 federal subjects fit on one page: a client fills a select box
    # with one request.
    default_limit = 100
    max_limit = 200


def paginated_response(
    *, view: APIView, request: Request, queryset: QuerySet[Any], serializer_class: type[serializers.Serializer]
) -> Response:
    paginator = view.pagination_class()  # type: ignore[attr-defined]
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request})
    return paginator.get_paginated_response(serializer.data)


class SignedInApi(APIView):
    """Every endpoint of the directory is for signed-in people only."""

    permission_classes = [IsAuthenticated]


def user_of(request: Request) -> User:
    """The signed-in user: every view here requires IsAuthenticated."""
    return cast(User, request.user)


def not_found() -> NotFound:
    return NotFound(_("Not found."))


def organisation_or_404(*, user: User, organisation_id: int) -> Organisation:
    organisation = selectors.organisation_get(user=user, organisation_id=organisation_id)
    if organisation is None:
        raise not_found()
    return organisation


# --- Regions -----------------------------------------------------------------


class RegionListApi(SignedInApi):
    pagination_class = RegionPagination

    @extend_schema(
        operation_id="regions_list",
        summary="Russia's federal subjects with their codes and time zones",
        responses={200: RegionSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            view=self, request=request, queryset=selectors.region_list(), serializer_class=RegionSerializer
        )


# --- Organisations -------------------------------------------------------------


class OrganisationListApi(SignedInApi):
    pagination_class = DirectoryPagination

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Part of the name.")
        inn = serializers.CharField(required=False, allow_blank=True, max_length=12)
        region = serializers.CharField(required=False, allow_blank=True, max_length=3, help_text="Region code.")
        municipality = serializers.CharField(required=False, allow_blank=True, max_length=200)
        kind = serializers.ChoiceField(choices=OrganisationKind.choices, required=False, allow_blank=True)

    @extend_schema_serializer(component_name="OrganisationListItem")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        short_name = serializers.CharField()
        full_name = serializers.CharField()
        inn = serializers.CharField()
        region = RegionSerializer(allow_null=True)
        municipality = serializers.CharField()
        parent = OrganisationBriefSerializer(allow_null=True)
        is_verified = serializers.BooleanField()

    @extend_schema(
        operation_id="organisations_list",
        summary="Search the organisation directory",
        description="Adults with a role see the whole directory; students and guests only their own organisations.",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        organisations = selectors.directory_search(
            user=user_of(request),
            query=data.get("q", ""),
            inn=data.get("inn", ""),
            region_code=data.get("region", ""),
            municipality=data.get("municipality", ""),
            kind=data.get("kind", ""),
        )
        return paginated_response(
            view=self, request=request, queryset=organisations, serializer_class=self.OutputSerializer
        )


@extend_schema_serializer(component_name="OrganisationContacts")
class OrganisationContactsSerializer(serializers.Serializer):
    phone = serializers.CharField()
    email = serializers.CharField()
    website = serializers.CharField()


class OrganisationDetailApi(SignedInApi):
    @extend_schema_serializer(component_name="OrganisationDetail")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        short_name = serializers.CharField()
        full_name = serializers.CharField()
        inn = serializers.CharField()
        ogrn = serializers.CharField()
        address = serializers.CharField()
        region = RegionSerializer(allow_null=True)
        municipality = serializers.CharField()
        time_zone = serializers.CharField(source="effective_time_zone")
        parent = OrganisationBriefSerializer(allow_null=True)
        is_verified = serializers.BooleanField()
        logo = serializers.SerializerMethodField()
        contacts = serializers.SerializerMethodField()

        def get_logo(self, organisation: Organisation) -> str | None:
            if not organisation.logo:
                return None
            return self.context["request"].build_absolute_uri(organisation.logo.url)

        @extend_schema_field(OrganisationContactsSerializer(allow_null=True))
        def get_contacts(self, organisation: Organisation) -> dict[str, str] | None:
            if not self.context["contacts_visible"]:
                return None
            return {"phone": organisation.phone, "email": organisation.email, "website": organisation.website}

    @extend_schema(
        operation_id="organisations_retrieve",
        summary="An organisation of the directory",
        description="Contacts are null for students and guests looking at an organisation that is not theirs.",
        responses={200: OutputSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, organisation_id: int) -> Response:
        organisation = organisation_or_404(user=user_of(request), organisation_id=organisation_id)
        contacts_visible = selectors.organisation_contacts_visible(user=user_of(request), organisation=organisation)
        serializer = self.OutputSerializer(
            organisation, context={"request": request, "contacts_visible": contacts_visible}
        )
        return Response(serializer.data)


class OrganisationStudyGroupListApi(SignedInApi):
    pagination_class = DirectoryPagination

    class FilterSerializer(serializers.Serializer):
        academic_year = serializers.IntegerField(
            required=False, min_value=2000, max_value=2100, help_text="The year the academic year starts."
        )

    @extend_schema_serializer(component_name="StudyGroup")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        grade = serializers.IntegerField(allow_null=True)
        academic_year = serializers.IntegerField()
        homeroom_teacher = PersonBriefSerializer(allow_null=True)
        students_count = serializers.IntegerField()

    @extend_schema(
        operation_id="organisations_groups_list",
        summary="Classes of an organisation the user may see",
        description="All classes for the staff; one's own classes for students, the children's for parents.",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, organisation_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        organisation = organisation_or_404(user=user_of(request), organisation_id=organisation_id)
        groups = selectors.study_group_list(
            user=user_of(request), organisation=organisation, academic_year=filters.validated_data.get("academic_year")
        )
        return paginated_response(view=self, request=request, queryset=groups, serializer_class=self.OutputSerializer)


# --- Memberships -----------------------------------------------------------------


class MembershipVerificationRequestApi(SignedInApi):
    @extend_schema_serializer(component_name="MembershipVerification")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        organisation = OrganisationBriefSerializer()
        role = serializers.CharField()
        verification_status = serializers.CharField()
        verification_requested_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="memberships_verification_request",
        summary="Ask one's organisation to verify one's role as an educator",
        description="Idempotent: asking again while a request is pending or granted changes nothing.",
        request=None,
        responses={
            200: OutputSerializer,
            400: refusal("The role is not verified (code not_verifiable)."),
            401: NOT_AUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, membership_id: int) -> Response:
        membership = Membership.objects.select_related("organisation").filter(pk=membership_id).first()
        if membership is None:
            raise not_found()
        membership = services.verification_request(user=user_of(request), membership=membership)
        return Response(self.OutputSerializer(membership).data)


# --- Guardianship ----------------------------------------------------------------


class GuardianshipClaimApi(SignedInApi):
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=32, help_text='The code from the school, e.g. "ABCDE-FGHJK".')

    @extend_schema_serializer(component_name="Guardianship")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        student = PersonBriefSerializer()
        organisation = OrganisationBriefSerializer()
        source = serializers.CharField()  # type: ignore[assignment]
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="guardianships_claim",
        summary="Link oneself as a parent to a student with a code from the school",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: refusal('The code is wrong, used or expired (code code_invalid, field "code").', FieldErrorSerializer),
            401: NOT_AUTHENTICATED,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate_limit_hit(scope="guardianship_claim", key=str(user_of(request).pk), rate=GUARDIANSHIP_CLAIM_RATE)
        guardianship = services.guardianship_code_claim(parent=user_of(request), code=serializer.validated_data["code"])
        return Response(self.OutputSerializer(guardianship).data, status=status.HTTP_201_CREATED)


class GuardianshipCodeCreateApi(SignedInApi):
    @extend_schema_serializer(component_name="GuardianshipCode")
    class OutputSerializer(serializers.Serializer):
        code = serializers.CharField(help_text="Shown once: only its hash is stored.")
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="guardianship_codes_create",
        summary="Issue a single-use code that links a parent to the student",
        description="For the organisation's administrators and the student's teachers.",
        request=None,
        responses={
            201: OutputSerializer,
            401: NOT_AUTHENTICATED,
            403: refusal("The user sees the student but may not issue codes."),
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, organisation_id: int, student_id: int) -> Response:
        organisation = organisation_or_404(user=user_of(request), organisation_id=organisation_id)
        student = selectors.organisation_student_get(
            user=user_of(request), organisation=organisation, student_id=student_id
        )
        if student is None:
            raise not_found()
        code, record = services.guardianship_code_issue(
            actor=user_of(request), student=student, organisation=organisation
        )
        return Response(
            self.OutputSerializer({"code": code, "expires_at": record.expires_at}).data, status=status.HTTP_201_CREATED
        )


# --- Safe mode -------------------------------------------------------------------


@extend_schema_serializer(component_name="SafeMode")
class SafeModeSerializer(serializers.Serializer):
    is_safe_mode = serializers.BooleanField()
    is_hidden_from_search = serializers.BooleanField()


MAY_NOT_MANAGE_STUDENT = refusal("The user sees the student but may not manage them.")


class StudentSafeModeApi(SignedInApi):
    """One class for both methods: they share the URL and the access rule."""

    class InputSerializer(serializers.Serializer):
        is_safe_mode = serializers.BooleanField(required=False)
        is_hidden_from_search = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="students_safe_mode_retrieve",
        summary="A student's safe-mode settings",
        description="For the student's guardians and school.",
        responses={
            200: SafeModeSerializer,
            401: NOT_AUTHENTICATED,
            403: MAY_NOT_MANAGE_STUDENT,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, student_id: int) -> Response:
        student = selectors.access_student_safe_mode(user=user_of(request), student_id=student_id)
        return Response(SafeModeSerializer(student).data)

    @extend_schema(
        operation_id="students_safe_mode_update",
        summary="Change a student's safe-mode settings",
        description="For the student's guardians and school; every change is written to the audit log.",
        request=InputSerializer,
        responses={
            200: SafeModeSerializer,
            400: FIELD_ERRORS,
            401: NOT_AUTHENTICATED,
            403: MAY_NOT_MANAGE_STUDENT,
            404: NOT_FOUND,
        },
    )
    def patch(self, request: Request, student_id: int) -> Response:
        student = selectors.access_student_safe_mode(user=user_of(request), student_id=student_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        student = services.safe_mode_update(actor=user_of(request), student=student, **serializer.validated_data)
        return Response(SafeModeSerializer(student).data)


# --- People ----------------------------------------------------------------------


@extend_schema_serializer(component_name="SharedOrganisation")
class SharedOrganisationSerializer(OrganisationBriefSerializer):
    roles = serializers.ListField(child=serializers.CharField(), help_text="The profile owner's roles there.")


class UserDetailApi(SignedInApi):
    @extend_schema_serializer(component_name="Profile")
    class OutputSerializer(PersonSerializer):
        """A profile: never with the phone number."""

        organisations = serializers.SerializerMethodField()

        @extend_schema_field(SharedOrganisationSerializer(many=True))
        def get_organisations(self, person: User) -> list[dict[str, Any]]:
            grouped: dict[int, dict[str, Any]] = {}
            for membership in self.context["memberships"]:
                organisation = membership.organisation
                entry = grouped.setdefault(
                    organisation.pk,
                    {
                        "id": organisation.pk,
                        "kind": organisation.kind,
                        "short_name": organisation.short_name,
                        "is_verified": organisation.is_verified,
                        "roles": [],
                    },
                )
                entry["roles"].append(membership.role)
            return list(grouped.values())

    @extend_schema(
        operation_id="users_retrieve",
        summary="A person's profile",
        description=(
            "Visible only to people who share an organisation with its owner, and a child's only to the "
            "child's contacts. Lists the organisations the two share, with the owner's roles there. "
            "Never the phone number."
        ),
        responses={200: OutputSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, user_id: int) -> Response:
        person = selectors.person_get(viewer=user_of(request), user_id=user_id)
        if person is None:
            raise not_found()
        memberships = selectors.person_shared_memberships(viewer=user_of(request), person=person)
        serializer = self.OutputSerializer(person, context={"request": request, "memberships": memberships})
        return Response(serializer.data)


class UserSearchApi(SignedInApi):
    pagination_class = DirectoryPagination

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(
            min_length=2, max_length=100, help_text="A name (or part of it) or a whole phone number."
        )

    @extend_schema(
        operation_id="users_search",
        summary="Find people of one's organisations by name or phone number",
        description="Children in safe mode are found only by their contacts.",
        parameters=[FilterSerializer],
        responses={200: PersonSerializer(many=True), 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        people = selectors.people_search(user=user_of(request), query=filters.validated_data["q"])
        return paginated_response(view=self, request=request, queryset=people, serializer_class=PersonSerializer)
