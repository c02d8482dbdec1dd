from django.apps import AppConfig


class TicketingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ticketing"

    def ready(self) -> None:
        from spaces_site.serving import on_server_start
        from ticketing import stripe_client

        on_server_start(stripe_client.warm_up)
