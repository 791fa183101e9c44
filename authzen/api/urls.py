"""Management URLs; saaskit.urls mounts ``service_client_urls`` under ``api/v1/instances/<slug>/`` and
``authz_urls`` under ``api/v1/authz/`` (after authz's own), ``pdp_urls`` under ``authzen/<slug>/``."""

from django.urls import path

from authzen.api import endpoints as e
from authzen.api import pdp

service_client_urls = [
    path("service-clients", e.ServiceClientsApi.as_view(), name="service-clients"),
    path("service-clients/<str:client_id>", e.ServiceClientDetailApi.as_view(), name="service-client"),
    path("service-clients/<str:client_id>/keys", e.ServiceKeysApi.as_view(), name="service-keys"),
    path("service-clients/<str:client_id>/keys/<str:prefix>", e.ServiceKeyDetailApi.as_view(), name="service-key"),
    path("members/<int:user_id>/external-id", e.MemberExternalIdApi.as_view(), name="instance-member-external-id"),
]

authz_urls = [
    path("types", e.ResourceTypesApi.as_view(), name="authz-types"),
    path("types/<str:name>/objects", e.ResourceObjectsApi.as_view(), name="authz-type-objects"),
    path("subjects/<int:user_id>/properties", e.SubjectPropertiesApi.as_view(), name="authz-subject-properties"),
    path("conditional-policies", e.ConditionalPoliciesApi.as_view(), name="authz-conditional-policies"),
    path("conditional-policies/<str:policy_id>", e.ConditionalPolicyDetailApi.as_view(),
         name="authz-conditional-policy"),
]

pdp_urls = [
    path("access/v1/evaluation", pdp.EvaluationApi.as_view(), name="authzen-evaluation"),
    path("access/v1/evaluations", pdp.EvaluationsApi.as_view(), name="authzen-evaluations"),
    path("access/v1/search/subject", pdp.SubjectSearchApi.as_view(), name="authzen-search-subject"),
    path("access/v1/search/resource", pdp.ResourceSearchApi.as_view(), name="authzen-search-resource"),
    path("access/v1/search/action", pdp.ActionSearchApi.as_view(), name="authzen-search-action"),
]
