from spaces_site.errors import Conflict, InvalidRequest, NotAllowed, NotFound


class ReminderNotAllowed(NotAllowed):
    code = "reminder_not_allowed"


class ReminderWrongState(Conflict):
    """Reminders are for spaces that haven't started yet."""

    code = "wrong_state"


class OwnSpace(InvalidRequest):
    """The host is reminded of their own space anyway."""

    code = "own_space"


class NotificationNotFound(NotFound):
    code = "notification_not_found"


class InvalidPreferences(InvalidRequest):
    code = "invalid_preferences"


class CalendarNotAvailable(NotFound):
    code = "not_scheduled"
