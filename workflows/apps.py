from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """The top floor: what spans rooms, ticketing, scheduling and media, wired when the site loads."""

    name = "workflows"

    def ready(self) -> None:
        from rooms.passes import passes_checked_by
        from ticketing.selectors import holds_paid_ticket, paid_ticket_space_ids
        from workflows import blocks, refunds, spaces  # noqa: F401  (connect the reactions to the signals below them)

        passes_checked_by(holds_paid_ticket, spaces=paid_ticket_space_ids)
