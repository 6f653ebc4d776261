from django.urls import path

from accounts import apis, merge_apis

urlpatterns = [
    path("auth/code/", apis.LoginCodeRequestApi.as_view(), name="api-auth-code"),
    path("auth/token/", apis.LoginTokenApi.as_view(), name="api-auth-token"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="api-auth-logout"),
    path("auth/logout-all/", apis.LogoutEverywhereApi.as_view(), name="api-auth-logout-all"),
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("me/photo/", apis.MePhotoApi.as_view(), name="api-me-photo"),
    path("me/export/", apis.MeExportApi.as_view(), name="api-me-export"),
    path("me/delete/", apis.MeDeleteApi.as_view(), name="api-me-delete"),
    path("me/merge/codes/", merge_apis.MergeCodesRequestApi.as_view(), name="api-me-merge-codes"),
    path("me/merge/", merge_apis.MergeConfirmApi.as_view(), name="api-me-merge"),
]
