from rest_framework import serializers

from accounts.models import BIO_MAX, DISPLAY_NAME_MAX, USERNAME_MAX, User, username_validator

PASSWORD_MAX = 4096


class UserSummarySerializer(serializers.ModelSerializer):
    """A person as lists show them."""

    avatar_url = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["username", "name", "display_name", "avatar_url", "followers_count", "following_count"]
        read_only_fields = fields


class PeoplePageSerializer(serializers.Serializer):
    """A page of a list of people, newest first."""

    next = serializers.URLField(allow_null=True, help_text="The page of older ones; null on the last page.")
    results = UserSummarySerializer(many=True)


class ProfileSerializer(UserSummarySerializer):
    """A profile as the viewer sees it, with how they stand with its owner."""

    bio = serializers.CharField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)
    following = serializers.BooleanField(source="relationship.following", read_only=True)
    followed_by = serializers.BooleanField(source="relationship.followed_by", read_only=True)
    blocking = serializers.BooleanField(source="relationship.blocking", read_only=True)

    class Meta(UserSummarySerializer.Meta):
        fields = [*UserSummarySerializer.Meta.fields, "bio", "date_joined", "following", "followed_by", "blocking"]
        read_only_fields = fields


class MeSerializer(UserSummarySerializer):
    """The signed-in user's own account."""

    class Meta(UserSummarySerializer.Meta):
        fields = [*UserSummarySerializer.Meta.fields, "email", "bio", "date_joined", "hosting_granted", "is_staff"]
        read_only_fields = [f for f in fields if f not in {"display_name", "bio"}]


class ProfileUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=DISPLAY_NAME_MAX, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=BIO_MAX, required=False, allow_blank=True)
    avatar = serializers.ImageField(required=False, allow_null=True)


class SignupSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=USERNAME_MAX, validators=[username_validator])
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    display_name = serializers.CharField(max_length=DISPLAY_NAME_MAX, required=False, allow_blank=True)

    def validate_username(self, value: str) -> str:
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("That username is taken.")
        return value


class CredentialsSerializer(serializers.Serializer):
    # No username is longer, and the sign-in lockout stores the name tried (PostgreSQL refused
    # a longer one with a 500: schemathesis); a password is bounded before it is hashed.
    username = serializers.CharField(max_length=USERNAME_MAX)
    password = serializers.CharField(max_length=PASSWORD_MAX, write_only=True, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    user = UserSummarySerializer()


class FollowStateSerializer(serializers.Serializer):
    following = serializers.BooleanField()
    changed = serializers.BooleanField(help_text="False when the request found it already so.")
    followers_count = serializers.IntegerField()


class BlockStateSerializer(serializers.Serializer):
    blocking = serializers.BooleanField()
    changed = serializers.BooleanField(help_text="False when the request found it already so.")


class HostingEligibilitySerializer(serializers.Serializer):
    eligible = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=["followers", "staff_grant", "not_enough_followers", "banned"])
    detail = serializers.CharField()
    followers_count = serializers.IntegerField()
    required_followers = serializers.IntegerField()
