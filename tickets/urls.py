from django.urls import path

from tickets import views

urlpatterns = [
    path("tickets/", views.ticket_list, name="ticket-list"),
    path("inbound/mail/", views.inbound_mail, name="inbound-mail"),
    path("tickets/inbound/", views.inbound_mail_list, name="ticket-inbound-mail"),
    path("tickets/inbound/<int:pk>/", views.inbound_mail_detail, name="ticket-inbound-mail-detail"),
    path("tickets/inbound/<int:pk>/attach/", views.inbound_mail_attach, name="ticket-inbound-mail-attach"),
    path("tickets/inbound/<int:pk>/open/", views.inbound_mail_open_ticket, name="ticket-inbound-mail-open"),
    path("tickets/new/", views.ticket_new, name="ticket-new"),
    path("tickets/escalate/", views.ticket_escalate, name="ticket-escalate"),
    path("tickets/service-levels/", views.service_levels, name="ticket-service-levels"),
    path("tickets/<str:number>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<str:number>/transition/", views.ticket_transition, name="ticket-transition"),
    path("tickets/<str:number>/assign/", views.ticket_assign, name="ticket-assign"),
    path("tickets/<str:number>/handoff/", views.ticket_handoff, name="ticket-handoff"),
    path("tickets/<str:number>/note/", views.ticket_note, name="ticket-note"),
    path("tickets/<str:number>/message/", views.ticket_message, name="ticket-message"),
    path("tickets/<str:number>/contact/", views.ticket_contact, name="ticket-contact"),
    path("tickets/<str:number>/undo/<int:entry_id>/", views.ticket_undo, name="ticket-undo"),
]
