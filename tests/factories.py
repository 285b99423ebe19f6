"""factory_boy factories shared by every test module."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from console.models import Asset, Customer, Profile

# Every factory-made user's password: tests log in through the real form with it.
PASSWORD = "correct horse battery"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Customer {n}")
    slug = factory.Sequence(lambda n: f"customer-{n}")
    plan = Customer.Plan.BUSINESS
    timezone = "Europe/Berlin"
    contacts = factory.LazyAttribute(lambda c: [{"name": "SRE", "email": f"sre@{c.slug}.example", "reports": True}])


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    customer = factory.SubFactory(CustomerFactory)
    kind = Asset.Kind.ZONE
    value = factory.Sequence(lambda n: f"zone{n}.example")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@shieldwall.invalid")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def customer(self, create, extracted, **kwargs):
        if extracted is not None:
            Profile.objects.update_or_create(user=self, defaults={"customer": extracted})
