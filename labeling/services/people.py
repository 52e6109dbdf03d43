"""Raters and projects: creating and inviting raters, their API tokens, projects and who belongs to them."""
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from ..models import LabelingProject, Membership, Rater
from .errors import NotAllowed


def rater_create(*, username: str, kind: str = Rater.Kind.GENERALIST, domains: list[str] | tuple = (),
                 email: str = "", password: str | None = None, invited_by=None) -> Rater:
    """Make a user and their rater profile; without a password the user cannot log in until they set one."""
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email)
        user.full_clean(exclude=["password"])
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        rater = Rater(user=user, kind=kind, domains=_domains(domains), invited_by=invited_by)
        rater.full_clean()
        rater.save()
    return rater


def rater_profile_add(*, user, kind: str = Rater.Kind.GENERALIST, domains: list[str] | tuple = (),
                      invited_by=None) -> Rater:
    """Make an existing user (an admin, say) a rater too."""
    rater = Rater(user=user, kind=kind, domains=_domains(domains), invited_by=invited_by)
    rater.full_clean()
    rater.save()
    return rater


def _domains(domains) -> list[str]:
    return sorted({d.strip().lower() for d in domains if d and d.strip()})


def rater_invite(*, email: str, base_url: str, kind: str = Rater.Kind.GENERALIST, domains: list[str] | tuple = (),
                 invited_by=None, username: str | None = None) -> Rater:
    """Create a rater without a password and email them a link to set one (Django's password-reset token);
    `base_url` is where Sieve is reached by the rater (no default: a loopback address would reach nobody)."""
    rater = rater_create(username=username or email, email=email, kind=kind, domains=domains, invited_by=invited_by)
    user = rater.user
    uid, token = urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)
    try:
        path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    except NoReverseMatch:
        path = f"/accounts/reset/{uid}/{token}/"  # django.contrib.auth.urls mounted at accounts/
    inviter = invited_by.get_username() if invited_by else "An admin"
    send_mail(
        subject="You are invited to label data on Sieve",
        message=(f"{inviter} invited you to label data on Sieve as {rater.get_kind_display().lower()}.\n\n"
                 f"Your username: {user.get_username()}\nSet your password here: {base_url.rstrip('/')}{path}\n"),
        from_email=None, recipient_list=[email],
    )
    return rater


def user_token(*, user, rotate: bool = False) -> str:
    """A person's API token (`Authorization: Token <key>`), made on first use; `rotate` replaces it."""
    with transaction.atomic():
        if rotate:
            for old in Token.objects.filter(user=user):
                old.delete()  # its cached entry is dropped by labeling.auth.token_changed
        token, _ = Token.objects.get_or_create(user=user)
    return token.key


def rater_token(*, rater: Rater, rotate: bool = False) -> str:
    """The rater's API token; `rotate` replaces it (the old one stops working at once)."""
    return user_token(user=rater.user, rotate=rotate)


def rater_set_active(*, rater: Rater, active: bool) -> Rater:
    """An inactive rater gets no new work; their leases run out and their items go back to the queue."""
    Rater.objects.filter(pk=rater.pk).update(is_active=active)
    rater.refresh_from_db()
    return rater


def project_create(*, name: str, label_kind: str = LabelingProject.LabelKind.SINGLE, choices: list | None = None,
                   instructions: str = "", overlap: int = 3, allowed_kinds: list | None = None,
                   domains: list | None = None, gold_rate: float = 0.0, lease_duration: timedelta | None = None,
                   sources=(), feedback_counts: bool = False, created_by=None, **options) -> LabelingProject:
    """Make a labeling project (checked: choices, hotkeys, kinds, scale) fed by the given sources."""
    project = LabelingProject(
        name=name, label_kind=label_kind, choices=choices or [], instructions=instructions, overlap=overlap,
        allowed_kinds=list(allowed_kinds or []), domains=_domains(domains or []), gold_rate=gold_rate,
        feedback_counts=feedback_counts, created_by=created_by, **options,
    )
    if lease_duration is not None:
        project.lease_duration = lease_duration
    project.full_clean()
    with transaction.atomic():
        project.save()
        project.sources.set(sources)
    return project


def project_add_raters(*, project: LabelingProject, raters, added_by=None) -> int:
    """Add raters to a project (those already in it stay as they are); returns how many were added."""
    before = Membership.objects.filter(project=project).count()
    Membership.objects.bulk_create([Membership(project=project, rater=r, added_by=added_by) for r in raters],
                                   ignore_conflicts=True)
    return Membership.objects.filter(project=project).count() - before


def project_remove_rater(*, project: LabelingProject, rater: Rater) -> bool:
    """Take a rater off a project; their annotations stay, their live lease runs out."""
    return Membership.objects.filter(project=project, rater=rater).delete()[0] > 0


def rater_fit_problem(rater: Rater, project: LabelingProject, *, membership: bool = True) -> str | None:
    """Why this rater may not work on this project, or None when they may (`membership=False`: all but
    the one check that needs a query)."""
    if not rater.is_active or not rater.user.is_active:
        return "this rater is inactive"
    if not project.is_active:
        return f"project {project.name!r} is closed"
    if project.allowed_kinds and rater.kind not in project.allowed_kinds:
        return f"project {project.name!r} is for {', '.join(project.allowed_kinds)} raters, not {rater.kind}"
    if project.domains and not set(project.domains) & set(rater.domains or []):
        return f"project {project.name!r} needs one of the domains {project.domains}"
    if membership:
        found = (Membership.objects.filter(project=project, rater=rater)
                 .values_list("paused_at", "paused_reason").first())
        if found is None:
            return f"this rater is not a member of project {project.name!r}"
        if found[0] is not None:
            return f"paused in this project: {found[1] or 'by staff'}"
    return None


def rater_check_fits(rater: Rater, project: LabelingProject) -> None:
    problem = rater_fit_problem(rater, project)
    if problem:
        raise NotAllowed(problem, field="project", value=project.pk)
