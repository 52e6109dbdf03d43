"""The login throttle (django-axes): who a client is, and what it is told once locked out."""
import math

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions, status

LOCKED_OUT = "too_many_attempts"


def lockout_seconds() -> int:
    """How long an account or address stays locked after too many failed sign-ins."""
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, round(lockout_seconds() / 60))
    return (f"Too many failed sign-ins for this account or from this address: try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind SIEVE_PROXY_COUNT proxies the address the outermost of
    them put in X-Forwarded-For (what a client writes there itself is to its left, and ignored)."""
    request = getattr(request, "_request", request)
    proxies = settings.SIEVE_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with Retry-After: JSON {"error": "too_many_attempts"} under /api/, else the sign-in page's message."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": LOCKED_OUT, "detail": lockout_message()},
                                status=status.HTTP_429_TOO_MANY_REQUESTS)
    else:
        response = render(request, "registration/locked_out.html", {"message": lockout_message()},
                          status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(lockout_seconds())
    return response


class LoginThrottled(exceptions.Throttled):
    """A sign-in refused by the throttle, in the API's error shape."""

    default_code = LOCKED_OUT

    def __init__(self):
        super().__init__(wait=lockout_seconds(), detail=lockout_message(), code=LOCKED_OUT)


def refuse_if_locked_out(request) -> None:
    """Raise LoginThrottled when the throttle refused this request's credentials (set by django-axes)."""
    if getattr(request, "axes_locked_out", False):
        raise LoginThrottled()


class ThrottledBasicAuthentication(authentication.BasicAuthentication):
    """DRF's Basic auth, answering 429 too_many_attempts instead of 401 while the throttle refuses the login."""

    def authenticate_credentials(self, userid, password, request=None):
        """Check the username and password; the throttle counts a failure, and refuses once locked out."""
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            refuse_if_locked_out(request)
            raise


class ThrottledBasicScheme(BasicScheme):
    """The API schema shows the throttled Basic auth as plain HTTP Basic."""

    target_class = ThrottledBasicAuthentication


class ThrottleBackend(AxesStandaloneBackend):
    """django-axes' check before the password backend; a sign-in without a request (the shell, a test client's
    login) comes from no address and is not throttled."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Refuse a locked-out account or address; otherwise leave the password to the next backend."""
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
