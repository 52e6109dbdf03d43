"""Who may open a staff page: anyone else goes to Sieve's own sign-in, told why, never to the Django admin's."""
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse


def staff_required(view):
    """A page for staff: an anonymous visitor signs in first; a signed-in non-staff user (a rater) is told the
    page is for staff and may sign in as someone who is."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if user.is_authenticated:
            messages.warning(request, f"This page is for staff; you are signed in as {user.get_username()}. "
                                      "Sign in with a staff account to open it.")
        return redirect_to_login(request.get_full_path(), reverse("login"))

    return wrapped
