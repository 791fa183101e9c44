from django.urls import path

from accounts.api import auth, instances

urlpatterns = [
    path("auth/register", auth.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", auth.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", auth.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", auth.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all", auth.LogoutAllApi.as_view(), name="auth-logout-all"),
    path("auth/switch", auth.SwitchApi.as_view(), name="auth-switch"),
    path("me", instances.MeApi.as_view(), name="me"),
    path("me/password", auth.PasswordChangeApi.as_view(), name="me-password"),
    path("roles", instances.RolesApi.as_view(), name="roles"),
    path("instances", instances.InstanceListCreateApi.as_view(), name="instances"),
    path("instances/<slug:slug>/members", instances.InstanceMemberListCreateApi.as_view(), name="instance-members"),
    path("instances/<slug:slug>/members/<int:user_id>", instances.InstanceMemberDetailApi.as_view(),
         name="instance-member"),
    path("instances/<slug:slug>/invitations", instances.InstanceInvitationListApi.as_view(),
         name="instance-invitations"),
    path("instances/<slug:slug>/invitations/<uuid:invitation_id>", instances.InstanceInvitationDetailApi.as_view(),
         name="instance-invitation"),
    path("invitations/<uuid:invitation_id>/accept", instances.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("invitations/<uuid:invitation_id>/decline", instances.InvitationDeclineApi.as_view(),
         name="invitation-decline"),
]
