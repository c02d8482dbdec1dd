import factory
from django.db.models import F

from accounts.models import Follow, User

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def followers(self, create, count, **kwargs):
        """`UserFactory(followers=600)` gives the user 600 real followers."""
        if not create or not count:
            self.save()
            return
        fans = User.objects.bulk_create(
            User(username=f"fan_{self.username}_{n}", email=f"fan{n}.{self.username}@example.com") for n in range(count)
        )
        Follow.objects.bulk_create(Follow(follower=fan, followee=self) for fan in fans)
        User.objects.filter(pk__in=[f.pk for f in fans]).update(following_count=F("following_count") + 1)
        self.followers_count = count
        self.save()
