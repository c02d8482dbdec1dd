"""The API's token authentication: DRF's, with the token and its user read by one statement made once.

DRF's `TokenAuthentication` reads them with `Token.objects.select_related("user")`,
and the ORM builds that query again for every request: 0.5 ms of CPU, 40 % of
a request turned away from a sold-out space (py-spy on the ticket rush,
docs/benchmarks.md "Issue 23"), where the statement itself costs 0.07 ms. Here
the statement's text is made once from the models' fields, PostgreSQL plans it
once per connection (`spaces_site.prepared`), and the rows become
model instances through `Model.from_db`, as the ORM's own do. The answers
are DRF's: the same errors for an unknown token or an inactive user.
"""

from functools import cache

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from accounts.models import User
from spaces_site.prepared import prepared_cursor


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user_fields, token_fields = _fields()
        with prepared_cursor() as cursor:
            cursor.execute(_statement(), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        row = _converted(row, user_fields + token_fields)
        user = User.from_db(connection.alias, [f.attname for f in user_fields], row[: len(user_fields)])
        token = Token.from_db(connection.alias, [f.attname for f in token_fields], row[len(user_fields) :])
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (user, token)


def _converted(row: tuple, fields: tuple) -> list:
    """The row's values as the ORM would give them (on SQLite: booleans, aware datetimes)."""
    values = list(row)
    for i in _converting(connection.vendor):
        column = fields[i].get_col(fields[i].model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + fields[i].get_db_converters(connection):
            values[i] = convert(values[i], column, connection)
    return values


@cache
def _converting(vendor: str) -> tuple[int, ...]:
    """Which of the statement's columns the database's values need converting for (none on PostgreSQL)."""
    user_fields, token_fields = _fields()
    fields = user_fields + token_fields
    return tuple(
        i
        for i, field in enumerate(fields)
        if connection.ops.get_db_converters(field.get_col(field.model._meta.db_table))
        or field.get_db_converters(connection)
    )


@cache
def _fields():
    return tuple(User._meta.concrete_fields), tuple(Token._meta.concrete_fields)


@cache
def _statement() -> str:
    user_fields, token_fields = _fields()
    quote = connection.ops.quote_name
    user, key = Token._meta.get_field("user"), Token._meta.get_field("key")
    columns = [f"u.{quote(f.column)}" for f in user_fields] + [f"t.{quote(f.column)}" for f in token_fields]
    return (
        f"SELECT {', '.join(columns)} FROM {quote(Token._meta.db_table)} t "
        f"JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)} = t.{quote(user.column)} "
        f"WHERE t.{quote(key.column)} = %s"
    )
