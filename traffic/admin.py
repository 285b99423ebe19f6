from django.contrib import admin

from traffic.models import TrafficSample


@admin.register(TrafficSample)
class TrafficSampleAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "label", "kind", "status", "record_count", "created_at"]
    list_filter = ["label", "kind", "status"]
