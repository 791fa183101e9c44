from django.urls import path

from authz.api import endpoints as e

urlpatterns = [
    path("policies", e.PoliciesApi.as_view(), name="authz-policies"),
    path("check", e.CheckApi.as_view(), name="authz-check"),
    path("check/batch", e.CheckBatchApi.as_view(), name="authz-check-batch"),
    path("explain", e.ExplainApi.as_view(), name="authz-explain"),
    path("subjects/<str:subject_id>/objects", e.SubjectObjectsApi.as_view(), name="authz-subject-objects"),
    path("objects/<str:resource_type>/<str:resource_id>/subjects", e.ObjectSubjectsApi.as_view(),
         name="authz-object-subjects"),
    path("group", e.GroupsApi.as_view(), name="authz-groups"),
    path("group/<str:group_id>", e.GroupDetailApi.as_view(), name="authz-group"),
    path("group/<str:group_id>/user", e.GroupUsersApi.as_view(), name="authz-group-users"),
    path("group/<str:group_id>/authorize", e.GroupAuthorizeApi.as_view(), name="authz-group-authorize"),
    path("group/<str:group_id>/resource", e.GroupResourcesApi.as_view(), name="authz-group-resources"),
    path("resource", e.ResourcesApi.as_view(), name="authz-resources"),
    path("resource/<str:resource_id>", e.ResourceDetailApi.as_view(), name="authz-resource"),
    path("resource/<str:resource_id>/move", e.ResourceMoveApi.as_view(), name="authz-resource-move"),
    path("authorized", e.AuthorizedApi.as_view(), name="authz-authorized"),
]
