from spaces_site.errors import InvalidRequest, NotAllowed, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"


class SelfFollow(InvalidRequest):
    code = "self_follow"


class SelfBlock(InvalidRequest):
    code = "self_block"


class FollowBlocked(NotAllowed):
    code = "follow_blocked"


class HostingNotEligible(NotAllowed):
    code = "hosting_not_eligible"


class AccountBanned(NotAllowed):
    code = "account_banned"


class InvalidCredentials(InvalidRequest):
    code = "invalid_credentials"
