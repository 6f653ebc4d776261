from django.urls import path

from organisations import apis

urlpatterns = [
    path("regions/", apis.RegionListApi.as_view(), name="regions-list"),
    path("organisations/", apis.OrganisationListApi.as_view(), name="organisations-list"),
    path("organisations/<int:organisation_id>/", apis.OrganisationDetailApi.as_view(), name="organisations-detail"),
    path(
        "organisations/<int:organisation_id>/groups/",
        apis.OrganisationStudyGroupListApi.as_view(),
        name="organisations-groups",
    ),
    path(
        "organisations/<int:organisation_id>/students/<int:student_id>/guardianship-codes/",
        apis.GuardianshipCodeCreateApi.as_view(),
        name="guardianship-codes-create",
    ),
    path(
        "memberships/<int:membership_id>/verification-request/",
        apis.MembershipVerificationRequestApi.as_view(),
        name="memberships-verification-request",
    ),
    path("guardianships/claim/", apis.GuardianshipClaimApi.as_view(), name="guardianships-claim"),
    path("students/<int:student_id>/safe-mode/", apis.StudentSafeModeApi.as_view(), name="students-safe-mode"),
    path("users/", apis.UserSearchApi.as_view(), name="users-search"),
    path("users/<int:user_id>/", apis.UserDetailApi.as_view(), name="users-detail"),
]
