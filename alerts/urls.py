from django.urls import path

from alerts import views

urlpatterns = [
    path("ingest/<slug:slug>/", views.ingest, name="ingest"),
    path("alerts/", views.alert_list, name="alert-list"),
    path("alerts/bulk/", views.alert_bulk, name="alert-bulk"),
    path("alerts/views/", views.saved_view_create, name="alert-saved-view"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert-detail"),
    path("alerts/<int:pk>/pane/", views.alert_pane, name="alert-pane"),
    path("attacks/", views.attack_list, name="attack-list"),
    path("attacks/<int:pk>/", views.attack_detail, name="attack-detail"),
    path("feeds/", views.feed_list, name="feed-list"),
    path("feeds/new/", views.feed_create, name="feed-create"),
    path("feeds/<slug:slug>/", views.feed_detail, name="feed-detail"),
    path("feeds/<slug:slug>/edit/", views.feed_edit, name="feed-edit"),
    path("feeds/<slug:slug>/preview/", views.feed_preview, name="feed-preview"),
    path("feeds/<slug:slug>/replay/", views.feed_replay, name="feed-replay"),
    path("feeds/<slug:slug>/rotate/", views.feed_rotate, name="feed-rotate"),
    path("feeds/<slug:slug>/import/", views.feed_import, name="feed-import"),
    path("imports/<int:pk>/", views.import_progress, name="import-progress"),
    path("deliveries/<int:pk>/", views.delivery_detail, name="delivery-detail"),
    path("deliveries/<int:pk>/reprocess/", views.delivery_reprocess, name="delivery-reprocess"),
    path("silences/", views.silence_list, name="silence-list"),
    path("silences/new/", views.silence_new, name="silence-new"),
    path("silences/preview/", views.silence_preview, name="silence-preview"),
    path("silences/<int:pk>/expire/", views.silence_expire, name="silence-expire"),
]
