from django.urls import path

from traffic import views

urlpatterns = [
    path("traffic/", views.sample_list, name="traffic-list"),
    path("traffic/upload/", views.sample_upload, name="traffic-upload"),
    path("traffic/simulate/", views.simulate, name="traffic-simulate"),
    path("traffic/<int:pk>/", views.sample_detail, name="traffic-detail"),
    path("traffic/<int:pk>/compare/", views.sample_compare, name="traffic-compare"),
    path("traffic/attacks/<int:attack_id>/suggestions/", views.attack_suggestions, name="traffic-attack-suggestions"),
]
