from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import api, views
from accounts.forms import LoginForm

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("settings/profile/", views.profile_edit, name="profile-edit"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("u/<str:username>/avatar.svg", views.avatar_fallback, name="avatar-fallback"),
    path("u/<str:username>/followers/", views.followers, name="followers"),
    path("u/<str:username>/following/", views.following, name="following"),
    path("u/<str:username>/follow/", views.follow, name="follow"),
    path("u/<str:username>/unfollow/", views.unfollow, name="unfollow"),
    path("u/<str:username>/block/", views.block, name="block"),
    path("u/<str:username>/unblock/", views.unblock, name="unblock"),
]

api_urlpatterns = [
    path("auth/signup/", api.SignupApi.as_view(), name="api-signup"),
    path("auth/token/", api.TokenApi.as_view(), name="api-token"),
    path("me/", api.MeApi.as_view(), name="api-me"),
    path("me/hosting-eligibility/", api.HostingEligibilityApi.as_view(), name="api-hosting-eligibility"),
    path("me/blocks/", api.BlocksApi.as_view(), name="api-blocks"),
    path("users/<str:username>/", api.ProfileApi.as_view(), name="api-profile"),
    path("users/<str:username>/follow/", api.FollowApi.as_view(), name="api-follow"),
    path("users/<str:username>/block/", api.BlockApi.as_view(), name="api-block"),
    path("users/<str:username>/followers/", api.FollowersApi.as_view(), name="api-followers"),
    path("users/<str:username>/following/", api.FollowingApi.as_view(), name="api-following"),
]
