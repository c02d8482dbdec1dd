from django.urls import path

from scheduling import api, views

urlpatterns = [
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("settings/notifications/", views.notification_settings, name="notification-settings"),
    path("spaces/<int:space_id>/reminder/", views.reminder_set, name="space-reminder-set"),
    path("spaces/<int:space_id>/reminder/delete/", views.reminder_unset, name="space-reminder-unset"),
    path("spaces/<int:space_id>/calendar.ics", views.space_calendar, name="space-calendar"),
    path("spaces/<int:space_id>/schedule/", views.space_schedule, name="space-schedule"),
]

api_urlpatterns = [
    path("spaces/<int:space_id>/reminder/", api.ReminderApi.as_view(), name="api-space-reminder"),
    path("spaces/<int:space_id>/reschedule/", api.RescheduleApi.as_view(), name="api-space-reschedule"),
    path("notifications/", api.NotificationsApi.as_view(), name="api-notifications"),
    path("notifications/read/", api.NotificationsReadApi.as_view(), name="api-notifications-read"),
    path("notifications/unread-count/", api.UnreadCountApi.as_view(), name="api-notifications-unread-count"),
    path("me/notification-preferences/", api.PreferencesApi.as_view(), name="api-notification-preferences"),
]
