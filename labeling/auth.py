"""Raters' API tokens on the wire: DRF's `Authorization: Token <key>`, looked up in the shared cache first.

Every labeling request authenticates, and the database lookup of DRF's TokenAuthentication costs more
than the rest of a `next`. As for source keys (collection/auth.py), only a cache that all web processes
share (Redis) is used, and its entries carry the credentials generation: deleting a token (rotation),
deactivating or deleting a user bumps it, so the next request on every web process asks the database.
"""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from collection.auth import credentials_cache, credentials_cached, credentials_changed


def _name(key: str) -> str:
    return f"sieve:token:{key}"


def token_changed(sender, **kwargs) -> None:
    """Receiver of a Token's post_delete (rotation) and a user's post_delete: cached tokens are looked up again."""
    credentials_changed()


def user_saved(sender, created=False, update_fields=None, **kwargs) -> None:
    """Receiver of a user's post_save: unless the user is new or only other fields were saved (a login's
    `last_login`), cached tokens are looked up again, so a deactivated user's token is refused by the next
    request."""
    if not created and (update_fields is None or "is_active" in update_fields):
        credentials_changed()


class RaterTokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        generation, user = credentials_cached(_name(key))
        if user is None:
            user, _ = super().authenticate_credentials(key)
            credentials_cache(_name(key), generation, user)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key


class SourceKeyRefused(authentication.BaseAuthentication):
    """Last of the people's authenticators: a source's key (`Bearer ...`, `X-Api-Key`) on an API for people is
    refused with a reason, instead of DRF's "credentials were not provided"."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if (header and header[0].lower() == b"bearer") or request.META.get("HTTP_X_API_KEY"):
            raise exceptions.AuthenticationFailed(
                "A source's API key is not accepted here: it sends batches and feedback. This API is for people: "
                "send a rater's token (`Authorization: Token <token>`, from POST /api/v1/token) or sign in.",
                code="source_key_not_accepted")
        return None

    def authenticate_header(self, request):
        return "Token"


class SourceKeyRefusedScheme(OpenApiAuthenticationExtension):
    """SourceKeyRefused admits no one, so it adds no security scheme or requirement to the OpenAPI schema."""

    target_class = SourceKeyRefused
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []
