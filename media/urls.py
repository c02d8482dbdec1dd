from django.urls import path

from media import api, views

urlpatterns = [
    path("recordings/<int:recording_id>/audio.ogg", views.recording_audio, name="recording-audio"),
    path("recordings/<int:recording_id>/played/", views.recording_played, name="recording-played"),
    path("recordings/<int:recording_id>/delete/", views.recording_delete, name="recording-delete"),
    path("spaces/<int:space_id>/clips/", views.clip_make, name="clip-make"),
    path("clips/<str:token>/", views.clip_page, name="clip"),
    path("clips/<str:token>/audio.ogg", views.clip_audio, name="clip-audio"),
    path("clips/<str:token>/delete/", views.clip_delete, name="clip-delete"),
    path("metrics", views.metrics_page, name="metrics"),
]

api_urlpatterns = [
    path("spaces/<int:space_id>/recordings/", api.SpaceRecordingsApi.as_view(), name="api-space-recordings"),
    path("spaces/<int:space_id>/clips/", api.SpaceClipsApi.as_view(), name="api-space-clips"),
    path("recordings/<int:recording_id>/", api.RecordingApi.as_view(), name="api-recording"),
    path("recordings/<int:recording_id>/clips/", api.RecordingClipsApi.as_view(), name="api-recording-clips"),
    path("recordings/<int:recording_id>/plays/", api.RecordingPlaysApi.as_view(), name="api-recording-plays"),
    path("clips/<str:token>/", api.ClipApi.as_view(), name="api-clip"),
]
