"""REST endpoints for accounts: sign-up, tokens, profiles, follows, blocks, hosting."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.eligibility import hosting_eligibility
from accounts.serializers import (
    BlockStateSerializer,
    CredentialsSerializer,
    FollowStateSerializer,
    HostingEligibilitySerializer,
    MeSerializer,
    PeoplePageSerializer,
    ProfileSerializer,
    ProfileUpdateSerializer,
    SignupSerializer,
    TokenSerializer,
    UserSummarySerializer,
)
from spaces_site.api_errors import ErrorSerializer, error_responses
from spaces_site.keyset import BEFORE, older_url
from spaces_site.parsers import JSONParser


class SignupApi(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"  # per address: SPACES_API_AUTH_RATE

    @extend_schema(
        request=SignupSerializer,
        responses={201: TokenSerializer, **error_responses(400)},
        summary="Create an account and get an API token",
    )
    def post(self, request: Request) -> Response:
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(**data.validated_data)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(TokenSerializer({"token": token.key, "user": user}).data, status=status.HTTP_201_CREATED)


class TokenApi(APIView):
    """Exchange a username and password for an API token; DELETE revokes it.

    The check goes through Django's `authenticate` with the Django request, so django-axes counts
    each failure: too many for one username from one address answer 429 `locked_out` with
    `Retry-After` (accounts.views.login_locked_out), even for the right password.
    """

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=CredentialsSerializer,
        responses={
            200: TokenSerializer,
            **error_responses(400, 403),
            429: OpenApiResponse(ErrorSerializer, description="Too many requests, or too many failed sign-ins"),
        },
    )
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        # Axes marks the Django request, not DRF's wrapper: its middleware answers from that mark.
        user = selectors.credentials_verify(request=request._request, **credentials.validated_data)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(TokenSerializer({"token": token.key, "user": user}).data)

    @extend_schema(request=None, responses={204: None, **error_responses(401)})
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            return Response(
                {"code": "not_authenticated", "detail": "Sign in first."}, status=status.HTTP_401_UNAUTHORIZED
            )
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser, MultiPartParser, FormParser]  # JSON first: the site's, that refuses deep nesting

    @extend_schema(responses={200: MeSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=ProfileUpdateSerializer, responses={200: MeSerializer, **error_responses(400, 401)})
    def patch(self, request: Request) -> Response:
        changes = ProfileUpdateSerializer(data=request.data, partial=True)
        changes.is_valid(raise_exception=True)
        fields = dict(changes.validated_data)
        if "avatar" in fields and fields["avatar"] is None:
            fields["avatar"] = ""
        user = services.profile_update(user=request.user, **fields)
        return Response(MeSerializer(user).data)


class HostingEligibilityApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: HostingEligibilitySerializer, **error_responses(401)},
        summary="May the signed-in user host a space, and why",
    )
    def get(self, request: Request) -> Response:
        return Response(HostingEligibilitySerializer(hosting_eligibility(request.user).as_dict()).data)


class ProfileApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: ProfileSerializer, **error_responses(404)})
    def get(self, request: Request, username: str) -> Response:
        user = selectors.user_get(username=username)
        user.relationship = selectors.relationship(viewer=request.user, other=user)
        return Response(ProfileSerializer(user).data)


class FollowApi(APIView):
    """POST follows, DELETE unfollows; both are idempotent.

    Follows are limited per account (`follow` scope, SPACES_API_FOLLOW_RATE, a budget the page's
    follow form shares) on top of the usual limits, so a thousand follows can't come from one
    script; unfollowing is never limited.
    """

    permission_classes = [permissions.IsAuthenticated]
    throttle_scope = "follow"

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(ScopedRateThrottle())
        return throttles

    @extend_schema(
        request=None,
        responses={
            200: FollowStateSerializer,
            **error_responses(400, 401, 403, 404),
            429: OpenApiResponse(ErrorSerializer, description="Too many follows from this account"),
        },
    )
    def post(self, request: Request, username: str) -> Response:
        followee = selectors.user_get(username=username)
        changed = services.follow_create(follower=request.user, followee=followee)
        return self._state(followee, following=True, changed=changed)

    @extend_schema(request=None, responses={200: FollowStateSerializer, **error_responses(401, 404)})
    def delete(self, request: Request, username: str) -> Response:
        followee = selectors.user_get(username=username)
        changed = services.follow_delete(follower=request.user, followee=followee)
        return self._state(followee, following=False, changed=changed)

    def _state(self, followee, *, following: bool, changed: bool) -> Response:
        followee.refresh_from_db(fields=["followers_count"])
        state = {"following": following, "changed": changed, "followers_count": followee.followers_count}
        return Response(FollowStateSerializer(state).data)


class BlockApi(APIView):
    """POST blocks, DELETE unblocks; both are idempotent."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: BlockStateSerializer, **error_responses(400, 401, 404)})
    def post(self, request: Request, username: str) -> Response:
        blocked = selectors.user_get(username=username)
        changed = services.user_block(blocker=request.user, blocked=blocked)
        return Response(BlockStateSerializer({"blocking": True, "changed": changed}).data)

    @extend_schema(request=None, responses={200: BlockStateSerializer, **error_responses(401, 404)})
    def delete(self, request: Request, username: str) -> Response:
        blocked = selectors.user_get(username=username)
        changed = services.user_unblock(blocker=request.user, blocked=blocked)
        return Response(BlockStateSerializer({"blocking": False, "changed": changed}).data)


def _people_page(request: Request, page_of, username: str) -> Response:
    user = selectors.user_get(username=username)
    page = page_of(user=user, before=request.query_params.get("before", ""), size=api_settings.PAGE_SIZE)
    return Response(PeoplePageSerializer({"next": older_url(request, page.older), "results": page.people}).data)


class FollowersApi(APIView):
    """People who follow this person, newest first, a page at a time: `next` reads the older ones.
    No count of them all (a popular host has tens of thousands): the profile gives that number."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="users_followers_list",  # as it was named while a numbered list
        parameters=[BEFORE],
        responses={200: PeoplePageSerializer, **error_responses(400, 404)},
    )
    def get(self, request: Request, username: str) -> Response:
        return _people_page(request, selectors.followers_page, username)


class FollowingApi(APIView):
    """People this person follows, newest first, a page at a time: `next` reads the older ones."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="users_following_list",
        parameters=[BEFORE],
        responses={200: PeoplePageSerializer, **error_responses(400, 404)},
    )
    def get(self, request: Request, username: str) -> Response:
        return _people_page(request, selectors.following_page, username)


class BlocksApi(generics.ListAPIView):
    """The people the signed-in user has blocked."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = UserSummarySerializer

    def get_queryset(self):
        return selectors.blocked_by(user=self.request.user)
