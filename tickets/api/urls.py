from tickets.api import views


def register(router) -> None:
    router.register("tickets", views.TicketViewSet, basename="ticket")
    router.register("ticket-templates", views.TicketTemplateViewSet, basename="tickettemplate")
