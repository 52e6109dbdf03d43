"""Raters' API tokens on the wire: DRF's `Authorization: Token <key>`, looked up in the shared cache first.

Every labeling request authenticates, and the database lookup of DRF's TokenAuthentication costs more
than the rest of a `next`. As for source keys (collection/auth.py), only a cache that all web
processes share (Redis) is used, so rotating a token, which drops its entry, takes effect at once.
"""
from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions

TOKEN_CACHE_SECONDS = 60


def _shared() -> bool:
    return "RedisCache" in settings.CACHES["default"]["BACKEND"]


def _name(key: str) -> str:
    return f"sieve:token:{key}"


def token_forget(key: str) -> None:
    """Drop a token from the cache, so that its rotation is seen by the next request."""
    if _shared():
        cache.delete(_name(key))


class RaterTokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        user = None
        if _shared():
            try:
                user = cache.get(_name(key))
            except Exception:  # the cache is down: the database still answers
                user = None
        if user is None:
            user, _ = super().authenticate_credentials(key)
            if _shared():
                try:
                    cache.set(_name(key), user, TOKEN_CACHE_SECONDS)
                except Exception:
                    pass
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key
