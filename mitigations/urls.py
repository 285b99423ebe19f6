from django.urls import path

from mitigations import views

urlpatterns = [
    path("mitigations/", views.mitigation_list, name="mitigation-list"),
    path("mitigations/new/", views.mitigation_new, name="mitigation-new"),
    path("mitigations/lists/", views.list_index, name="mitigation-lists"),
    path("mitigations/lists/<int:pk>/", views.list_detail, name="mitigation-list-detail"),
    path(
        "mitigations/lists/<int:pk>/items/<int:item_pk>/remove/",
        views.list_item_remove,
        name="mitigation-list-item-remove",
    ),
    path("mitigations/<int:pk>/", views.mitigation_detail, name="mitigation-detail"),
    path("mitigations/<int:pk>/approve/", views.mitigation_approval, name="mitigation-approval"),
    path("mitigations/<int:pk>/export/<str:fmt>/", views.mitigation_export, name="mitigation-export"),
    path("mitigations/<int:pk>/<str:verb>/", views.mitigation_action, name="mitigation-action"),
]
