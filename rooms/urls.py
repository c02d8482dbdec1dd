from django.urls import path

from rooms import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("spaces/", views.search, name="spaces-search"),
    path("spaces/new/", views.space_new, name="space-new"),
    path("spaces/<int:space_id>/", views.space_page, name="space"),
    path("spaces/<int:space_id>/end/", views.space_end, name="space-end"),
    path("spaces/<int:space_id>/transcript.vtt", views.space_transcript_vtt, name="space-transcript-vtt"),
    path("spaces/<int:space_id>/transcript/keep/", views.transcript_keep, name="space-transcript-keep"),
    path("spaces/<int:space_id>/report/", views.space_report, name="space-report"),
    path("me/numbers/", views.host_numbers, name="host-numbers"),
]

api_urlpatterns = [
    path("spaces/", api.SpacesApi.as_view(), name="api-spaces"),
    path("spaces/<int:space_id>/", api.SpaceApi.as_view(), name="api-space"),
    path("spaces/<int:space_id>/start/", api.SpaceStartApi.as_view(), name="api-space-start"),
    path("spaces/<int:space_id>/end/", api.SpaceEndApi.as_view(), name="api-space-end"),
    path("spaces/<int:space_id>/cancel/", api.SpaceCancelApi.as_view(), name="api-space-cancel"),
    path("spaces/<int:space_id>/join/", api.SpaceJoinApi.as_view(), name="api-space-join"),
    path("spaces/<int:space_id>/transcript/", api.SpaceTranscriptApi.as_view(), name="api-space-transcript"),
    path("spaces/<int:space_id>/commands/", api.SpaceCommandApi.as_view(), name="api-space-commands"),
    path("spaces/<int:space_id>/numbers/", api.SpaceNumbersApi.as_view(), name="api-space-numbers"),
    path("me/numbers/", api.HostNumbersApi.as_view(), name="api-host-numbers"),
    path("reports/", api.ReportApi.as_view(), name="api-reports"),
]
