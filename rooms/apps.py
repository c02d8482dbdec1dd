from django.apps import AppConfig


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"

    def ready(self) -> None:
        # The cached feeds listen to rooms.signals: a space's start or end drops them (`rooms.feeds`).
        from rooms import feeds  # noqa: F401
