"""Raters and projects: invitations, checked project settings, membership and who fits a project."""
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from labeling import services
from labeling.models import LabelingProject, Membership, Rater
from tests.factories import CHOICES


def test_an_invited_rater_gets_an_email_with_a_link_to_set_a_password(db, mailoutbox, admin_user):
    rater = services.rater_invite(email="sam@example.com", kind=Rater.Kind.EXPERT, domains=["Payments", " "],
                                  invited_by=admin_user, base_url="https://sieve.example")
    assert (rater.kind, rater.domains, rater.user.has_usable_password()) == ("expert", ["payments"], False)
    [mail] = mailoutbox
    assert mail.to == ["sam@example.com"] and "https://sieve.example/" in mail.body and "sam@example.com" in mail.body


@pytest.mark.parametrize(("choices", "problem"), [
    ([{"value": "a"}], "at least two"),
    ([{"value": "a", "hotkey": "1"}, {"value": "b", "hotkey": "1"}], "hotkey"),
    ([{"value": "a", "hotkey": "s"}, {"value": "b"}], "reserved"),
    ([{"value": "a"}, {"value": "a"}], "twice"),
    (["a", "b"], "each choice"),
])
def test_a_project_with_bad_choices_is_refused_with_the_reason(db, choices, problem):
    with pytest.raises(ValidationError) as refused:
        services.project_create(name="bad", choices=choices)
    assert problem in str(refused.value.message_dict["choices"])
    assert not LabelingProject.objects.exists()


def test_unknown_rater_kinds_and_an_inverted_scale_are_refused(db):
    with pytest.raises(ValidationError) as refused:
        services.project_create(name="bad", label_kind="rating", allowed_kinds=["wizard"], scale_min=5, scale_max=1)
    assert {"allowed_kinds", "scale_max"} <= set(refused.value.message_dict)


def test_raters_are_added_once_and_removed(project, make_rater):
    rater = make_rater(join=None)
    assert services.project_add_raters(project=project, raters=[rater, rater]) == 1
    assert services.project_add_raters(project=project, raters=[rater]) == 0
    assert services.rater_fit_problem(rater, project) is None
    assert services.project_remove_rater(project=project, rater=rater)
    assert "not a member" in services.rater_fit_problem(rater, project)
    services.project_add_raters(project=project, raters=[rater])
    services.rater_set_active(rater=rater, active=False)
    assert services.rater_fit_problem(rater, project) == "this rater is inactive"


def test_the_rater_create_command_makes_a_member_and_prints_a_token(project, capsys):
    call_command("rater_create", "kim", "--kind", "end_user", "--project", "sentiment")
    token = capsys.readouterr().out.strip()
    rater = Rater.objects.get(user__username="kim")
    assert rater.kind == "end_user" and Membership.objects.filter(project=project, rater=rater).exists()
    assert token == services.rater_token(rater=rater)



def test_the_rater_create_command_names_a_project_by_id_or_slug(project, capsys):
    other = services.project_create(name="Fraud: is this order fraud?", choices=CHOICES)
    assert (project.slug, other.slug) == ("sentiment", "fraud-is-this-order-fraud")
    call_command("rater_create", "kim", "--project", str(project.pk), "--project", other.slug)
    rater = Rater.objects.get(user__username="kim")
    assert set(Membership.objects.filter(rater=rater).values_list("project__slug", flat=True)) == {
        "sentiment", "fraud-is-this-order-fraud"}


def test_a_project_named_twice_alike_gets_a_slug_of_its_own(db):
    first = services.project_create(name="Sentiment!", choices=CHOICES)
    second = services.project_create(name="sentiment?", choices=CHOICES)
    assert (first.slug, second.slug) == ("sentiment", "sentiment-2")


def test_the_rater_create_command_creates_nothing_when_a_project_is_unknown_and_the_retry_works(project, capsys):
    with pytest.raises(CommandError, match="no project with the id, slug or name '999'"):
        call_command("rater_create", "kim", "--project", "sentiment", "--project", "999")
    assert not get_user_model().objects.filter(username="kim").exists() and not Rater.objects.exists()
    call_command("rater_create", "kim", "--project", "sentiment")
    assert Membership.objects.filter(project=project, rater__user__username="kim").exists()


def test_the_rater_create_command_rolls_back_the_user_when_joining_a_project_fails(project, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError({"project": ["closed"]})

    monkeypatch.setattr(services, "project_add_raters", refuse)
    with pytest.raises(CommandError, match="project: closed"):
        call_command("rater_create", "kim", "--project", "sentiment")
    assert not get_user_model().objects.filter(username="kim").exists()
