from datetime import timedelta

import factory
from django.db.models import F
from django.utils import timezone

from accounts.models import Follow, User

PASSWORD = "correct-horse-battery"
# Followers made by `UserFactory(followers=N)` joined and followed this long ago: far past
# SPACES_FOLLOWER_MIN_AGE_H, so they count toward hosting like the real followers they stand for.
FOLLOWERS_AGE = timedelta(days=365)


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
        """`UserFactory(followers=600)` gives the user 600 real followers: active accounts following
        for long enough to count (`accounts.selectors.counted_followers`)."""
        if not create or not count:
            self.save()
            return
        long_ago = timezone.now() - FOLLOWERS_AGE
        fans = User.objects.bulk_create(
            User(username=f"fan_{self.username}_{n}", email=f"fan{n}.{self.username}@example.com", date_joined=long_ago)
            for n in range(count)
        )
        Follow.objects.bulk_create(Follow(follower=fan, followee=self) for fan in fans)
        # `created_at` is auto_now_add, so it is dated back after the insert.
        Follow.objects.filter(followee=self).update(created_at=long_ago)
        User.objects.filter(pk__in=[f.pk for f in fans]).update(following_count=F("following_count") + 1)
        self.followers_count = count
        self.save()
