"""Pages for spaces: home with the live bar, search, start a space, the space itself."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors as people
from accounts.eligibility import hosting_eligibility
from rooms import feeds, selectors, services
from rooms.errors import SpaceNotFound
from rooms.forms import ReportForm, SpaceForm
from rooms.models import SpaceNumbers, SpaceState
from rooms.services.stage import REACTIONS
from rooms.transcripts import webvtt
from spaces_site.errors import ServiceError


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated and not len(get_messages(request)):  # len() leaves them unread
        # Every anonymous visitor sees the same page: made once a period for all (`rooms.feeds`).
        return HttpResponse(feeds.for_everyone("home.page", lambda: _home(request).content))
    return _home(request)


def _home(request: HttpRequest) -> HttpResponse:
    popular = people.popular_people()
    ids = [person.pk for person in popular]
    ties = selectors.feed_ties(viewer=request.user, people=ids)  # read once for the three feeds
    context = {
        "live": selectors.live_spaces(viewer=request.user, ties=ties),
        "upcoming": selectors.upcoming_spaces(viewer=request.user, limit=10, ties=ties),
        "people": people.people_to_follow(viewer=request.user, limit=6, popular=popular, left_out=ties.left_out(ids)),
        # Suggestions leave out whom the viewer follows: every button there says "Follow".
        "following_ids": set(),
        "eligibility": hosting_eligibility(request.user) if request.user.is_authenticated else None,
    }
    return render(request, "home.html", context)


SEARCH_PAGE = 30


def search(request: HttpRequest) -> HttpResponse:
    """Matching spaces a page at a time, with a link to the next page when there is one: no count of
    every match."""
    query = request.GET.get("q", "").strip()[:100]
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        number = 1
    start = (number - 1) * SEARCH_PAGE
    results = (
        list(selectors.spaces_search(viewer=request.user, query=query)[start : start + SEARCH_PAGE + 1])
        if query
        else []
    )
    context = {
        "query": query,
        "results": results[:SEARCH_PAGE],
        "number": number,
        "next_number": number + 1 if len(results) > SEARCH_PAGE else None,
    }
    return render(request, "rooms/search.html", context)


@login_required
def space_new(request: HttpRequest) -> HttpResponse:
    eligibility = hosting_eligibility(request.user)
    if not eligibility.eligible:
        return render(request, "rooms/not_eligible.html", {"eligibility": eligibility}, status=403)
    form = SpaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(host=request.user, **form.cleaned_data)
        except ServiceError as error:
            form.add_error(None, error.detail)
        else:
            return redirect(space)
    # A host already live can still schedule one for later; the page says where the live one is.
    live_id = selectors.live_space_ids_by_host(host_ids=[request.user.pk]).get(request.user.pk)
    scheduling = bool(form.is_bound and form.data.get("scheduled_for"))
    return render(request, "rooms/space_new.html", {"form": form, "live_id": live_id, "scheduling": scheduling})


def space_page(request: HttpRequest, space_id: int) -> HttpResponse:
    try:
        space = selectors.space_get(space_id=space_id)
    except SpaceNotFound as error:
        raise Http404(error.detail) from error
    transcript = (
        list(selectors.transcript_lines(space=space))
        if space.state == SpaceState.ENDED and selectors.replay_decision(user=request.user, space=space).allowed
        else []
    )
    context = {
        "space": space,
        "transcript": transcript,
        "retention_days": settings.SPACES_RECORDING_RETENTION_D,
        "entry": selectors.entry_decision(user=request.user, space=space),
        "listener_count": selectors.listener_count(space_id=space.pk),
        "stage": selectors.stage_of(space=space),
        "reactions": REACTIONS,
        "report_form": ReportForm(),
    }
    return render(request, "rooms/space.html", context)


def space_transcript_vtt(request: HttpRequest, space_id: int) -> HttpResponse:
    """The transcript as a WebVTT file, to download."""
    try:
        space = selectors.space_get(space_id=space_id)
    except SpaceNotFound as error:
        raise Http404(error.detail) from error
    decision = selectors.replay_decision(user=request.user, space=space)
    if not decision.allowed:
        raise PermissionDenied(decision.detail)
    response = HttpResponse(webvtt(selectors.transcript_lines(space=space)), content_type="text/vtt; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="space-{space.pk}-transcript.vtt"'
    return response


@login_required
@require_POST
def transcript_keep(request: HttpRequest, space_id: int) -> HttpResponse:
    keep = request.POST.get("keep")
    if keep not in ("0", "1"):
        return HttpResponseBadRequest("Say keep=1 to keep the transcript or keep=0 to let it expire.")
    try:
        services.transcript_keep(actor=request.user, space_id=space_id, keep=keep == "1")
    except ServiceError as error:
        messages.error(request, error.detail)
    return redirect("space", space_id=space_id)


@login_required
@require_POST
def space_end(request: HttpRequest, space_id: int) -> HttpResponse:
    try:
        services.space_end(actor=request.user, space_id=space_id)
    except ServiceError as error:
        messages.error(request, error.detail)
    return redirect("space", space_id=space_id)


@login_required
@require_POST
def space_report(request: HttpRequest, space_id: int) -> HttpResponse:
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a reason for the report.")
        return redirect("space", space_id=space_id)
    try:
        space = selectors.space_get(space_id=space_id)
        services.report_create(reporter=request.user, space=space, **form.cleaned_data)
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "Thanks: staff will look at your report.")
    return redirect("space", space_id=space_id)


@login_required
def host_numbers(request: HttpRequest) -> HttpResponse:
    """The host's numbers: every space they ran with its figures."""
    page = Paginator(selectors.host_spaces_with_numbers(host=request.user), 25).get_page(request.GET.get("page"))
    rows = [(space, getattr(space, "numbers", None) or SpaceNumbers(space=space)) for space in page]
    return render(request, "rooms/numbers.html", {"page": page, "rows": rows})
