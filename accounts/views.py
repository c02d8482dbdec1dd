"""Pages for people: home, profiles, follower lists, sign-up, settings."""

import hashlib
import math
from html import escape

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle

from accounts import selectors, services
from accounts.errors import UserNotFound
from accounts.forms import PasswordResetForm, ProfileForm, SignupForm
from accounts.lockout import address_locked_out
from accounts.models import User
from spaces_site.errors import ServiceError
from spaces_site.keyset import InvalidCursor

PAGE_SIZE = 30


def _profile_user(username: str) -> User:
    try:
        return selectors.user_get(username=username)
    except UserNotFound as error:
        raise Http404(error.detail) from error


def profile(request: HttpRequest, username: str) -> HttpResponse:
    user = _profile_user(username)
    context = {
        "profile": user,
        "relationship": selectors.relationship(viewer=request.user, other=user),
    }
    return render(request, "accounts/profile.html", context)


def _people_page(request: HttpRequest, username: str, *, title: str, page_of) -> HttpResponse:
    user = _profile_user(username)
    try:
        page = page_of(user=user, before=request.GET.get("before", ""), size=PAGE_SIZE)
    except InvalidCursor:
        page = page_of(user=user, size=PAGE_SIZE)  # an "Older" link mangled in passing: start at the top
    context = {
        "profile": user,
        "title": title,
        "page": page,
        "following_ids": selectors.following_ids(user=request.user, among=[p.pk for p in page.people]),
    }
    return render(request, "accounts/people.html", context)


def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _people_page(request, username, title="Followers", page_of=selectors.followers_page)


def following(request: HttpRequest, username: str) -> HttpResponse:
    return _people_page(request, username, title="Following", page_of=selectors.following_page)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def _relation_action(request: HttpRequest, username: str, action, success: str) -> HttpResponse:
    other = _profile_user(username)
    try:
        action(request.user, other)
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, success.format(username=other.username))
    return _back(request, other.get_absolute_url())


class FollowThrottle(UserRateThrottle):
    """The API's `follow` limit (SPACES_API_FOLLOW_RATE) for the follow form. Its cache key is the one
    `FollowApi`'s scoped throttle uses (`throttle_follow_<user id>`): one budget per account for both."""

    scope = "follow"


@login_required
@require_POST
def follow(request: HttpRequest, username: str) -> HttpResponse:
    throttle = FollowThrottle()
    if not throttle.allow_request(request, None):
        minutes = math.ceil((throttle.wait() or 60) / 60)
        messages.error(
            request, f"You're following people too fast. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
        )
        return _back(request, _profile_user(username).get_absolute_url())
    return _relation_action(
        request,
        username,
        lambda me, other: services.follow_create(follower=me, followee=other),
        "You follow @{username}.",
    )


@login_required
@require_POST
def unfollow(request: HttpRequest, username: str) -> HttpResponse:
    return _relation_action(
        request,
        username,
        lambda me, other: services.follow_delete(follower=me, followee=other),
        "You no longer follow @{username}.",
    )


@login_required
@require_POST
def block(request: HttpRequest, username: str) -> HttpResponse:
    return _relation_action(
        request,
        username,
        lambda me, other: services.user_block(blocker=me, blocked=other),
        "You blocked @{username}.",
    )


@login_required
@require_POST
def unblock(request: HttpRequest, username: str) -> HttpResponse:
    return _relation_action(
        request,
        username,
        lambda me, other: services.user_unblock(blocker=me, blocked=other),
        "You unblocked @{username}.",
    )


class SignupThrottle(AnonRateThrottle):
    """The API's `auth` limit (SPACES_API_AUTH_RATE, per address) for the sign-up form. Its cache key is
    the one `SignupApi`'s and `TokenApi`'s scoped throttle uses for a visitor (`throttle_auth_<address>`,
    the address `client_address` reads): one budget per address for every door, so throwaway accounts
    can't be made through the form past the API's limit."""

    scope = "auth"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST":
        throttle = SignupThrottle()
        if not throttle.allow_request(request, None):
            return _signups_paused(request, wait_s=math.ceil(throttle.wait() or 60))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            display_name=form.cleaned_data["display_name"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Spaces, {user.name}.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def _signups_paused(request: HttpRequest, *, wait_s: int) -> HttpResponse:
    """The sign-up form's answer past the per-address limit: a 429 page that says when to come back."""
    minutes = math.ceil(wait_s / 60)
    detail = f"Too many sign-ups from your network. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
    response = render(request, "registration/signup_paused.html", {"detail": detail}, status=429)
    response["Retry-After"] = str(wait_s)
    return response


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    user = User.objects.get(pk=request.user.pk)
    form = ProfileForm(request.POST or None, request.FILES or None, instance=user)
    if request.method == "POST" and form.is_valid():
        services.profile_update(user=request.user, **{name: form.cleaned_data[name] for name in form.changed_data})
        messages.success(request, "Profile saved.")
        return redirect(request.user.get_absolute_url())
    return render(request, "accounts/profile_edit.html", {"form": form})


# Colours for generated avatars: readable with white initials.
AVATAR_COLOURS = ["#7c3aed", "#2563eb", "#0891b2", "#059669", "#d97706", "#dc2626", "#db2777", "#4f46e5"]


@require_GET
@cache_control(max_age=3600, public=True)
def avatar_fallback(request: HttpRequest, username: str) -> HttpResponse:
    """An SVG avatar drawn from the user's initials, for people without a photo."""
    user = User.objects.filter(username__iexact=username).only("username", "display_name").first()
    if user is None:
        raise Http404("No such user.")
    words = user.name.split()
    initials = "".join(word[0] for word in words[:2]).upper() or user.username[:1].upper()
    digest = hashlib.sha256(user.username.lower().encode()).digest()
    colour = AVATAR_COLOURS[digest[0] % len(AVATAR_COLOURS)]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" role="img" '
        f'aria-label="{escape(user.name)}">'
        f'<rect width="100" height="100" fill="{colour}"/>'
        '<text x="50" y="50" dy=".35em" text-anchor="middle" fill="#fff" '
        'font-family="system-ui, sans-serif" font-size="40" font-weight="600">'
        f"{escape(initials)}</text></svg>"
    )
    return HttpResponse(svg, content_type="image/svg+xml")


def client_address(request: HttpRequest) -> str:
    """The address a request came from, read as the API's throttles read it (`REMOTE_ADDR`, which
    spaces_site/client_address.py settled), so the sign-in lockout and every rate limit count the
    same client."""
    return BaseThrottle().get_ident(request)


def login_username(request: HttpRequest, credentials: dict | None) -> str:
    """The username django-axes counts failures against: lower-cased, as usernames sign in
    case-insensitively, so `Bob` and `BOB` are one lockout."""
    username = (credentials or {}).get("username") or request.POST.get("username") or ""
    return username.strip().lower()


def login_locked_out(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None):
    """django-axes' answer to a sign-in from a locked-out username and address, or a locked-out
    address (accounts/lockout.py): 429 with `Retry-After`, as `{"code", "detail"}` on the API and as
    a page on the site."""
    wait_s = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = math.ceil(wait_s / 60)
    if address_locked_out(request):
        detail = f"Too many failed sign-ins from your network. Try again in {minutes} minutes."
    else:
        detail = (
            f"Too many failed sign-ins for this username from your network. Try again in {minutes} minutes, "
            "or reset your password."
        )
    if request.path_info.startswith("/api/"):
        response = JsonResponse({"code": "locked_out", "detail": detail}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"detail": detail}, status=429)
    response["Retry-After"] = str(wait_s)
    return response


class PasswordResetThrottle(SimpleRateThrottle):
    """SPACES_PASSWORD_RESET_RATE reset e-mails per `scope` and identity: DRF's sliding window, kept in the cache."""

    def __init__(self, *, scope: str, ident: str):
        self.rate = settings.SPACES_PASSWORD_RESET_RATE
        self.scope = scope
        self.ident = ident
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, sending at most SPACES_PASSWORD_RESET_RATE e-mails per requesting address
    and per account's e-mail address.

    Past the requesting address's limit the form says so (429). Past the account's, the answer is the
    usual "sent" page but no e-mail goes: nobody can flood an inbox, nor learn whether it was spared.
    The e-mail itself goes from a task (`PasswordResetForm`, `accounts.tasks`).
    """

    form_class = PasswordResetForm

    def form_valid(self, form):
        by_address = PasswordResetThrottle(scope="password_reset_address", ident=client_address(self.request))
        if not by_address.allow_request(self.request, self):
            wait_s = math.ceil(by_address.wait() or 1)
            form.add_error(
                None,
                f"Too many password-reset requests from your network. Try again in {math.ceil(wait_s / 60)} minutes.",
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(wait_s)
            return response
        email = form.cleaned_data["email"].strip().lower()
        by_account = PasswordResetThrottle(
            scope="password_reset_account", ident=hashlib.sha256(email.encode()).hexdigest()
        )
        if not by_account.allow_request(self.request, self):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
