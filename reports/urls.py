from django.urls import path
from rest_framework.routers import SimpleRouter

from reports import api, views

router = SimpleRouter()
router.register("reports", api.ReportViewSet, basename="report-api")

urlpatterns = [
    path("reports/", views.report_list, name="report-list"),
    path("reports/new/", views.report_new, name="report-new"),
    path("reports/<int:pk>/", views.report_detail, name="report-detail"),
    path("reports/<int:pk>/progress/", views.report_progress, name="report-progress"),
    path("reports/<int:pk>/download/<str:kind>/", views.report_download, name="report-download"),
    path("reports/<int:pk>/share/", views.report_share, name="report-share"),
    path("reports/<int:pk>/share/<int:link_id>/revoke/", views.report_share_revoke, name="report-share-revoke"),
    path("reports/<int:pk>/send/", views.report_send, name="report-send"),
    # The source countries and ASNs on the attack and alert pages, as the report counts them
    # (the pages load them from here: no app below imports the roof).
    path("attacks/<int:pk>/places/", views.attack_places, name="report-attack-places"),
    path("alerts/<int:pk>/places/", views.alert_places, name="report-alert-places"),
    path("share/<str:token>/", views.share_view, name="report-share-view"),
    path("share/<str:token>/<str:kind>/", views.share_download, name="report-share-download"),
]
