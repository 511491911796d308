from __future__ import annotations

from compute.models import Membership
from socialgrid.invites.codes import (
    ALPHABET,
    CODE_LENGTH,
    find_invite,
    get_invite_code,
    landing_project,
)


def test_each_user_has_one_stable_personal_code(user_factory):
    a, b = user_factory(), user_factory()
    code = get_invite_code(a)
    assert get_invite_code(a) == code
    assert get_invite_code(b) != code
    assert len(code.code) == CODE_LENGTH
    assert set(code.code) <= set(ALPHABET)


def test_a_project_gets_its_own_stable_code(user_factory, project_factory):
    a = user_factory()
    p, q = project_factory(), project_factory()
    personal = get_invite_code(a)
    for_p = get_invite_code(a, p)
    assert for_p.project == p
    assert len({personal.code, for_p.code, get_invite_code(a, q).code}) == 3
    assert get_invite_code(a, p) == for_p


def test_codes_are_random_not_derived_from_ids(user_factory):
    codes = {get_invite_code(user_factory()).code for _ in range(20)}
    assert len(codes) == 20


def test_a_banned_or_closed_inviters_code_no_longer_works(user_factory):
    from compute.models import Volunteer

    banned, closed = user_factory(), user_factory()
    codes = get_invite_code(banned).code, get_invite_code(closed).code
    Volunteer.objects.create(user=banned, banned=True)
    closed.is_active = False
    closed.save()
    assert [find_invite(c) for c in codes] == [None, None]
    assert find_invite("nosuchcode") is None


def test_the_landing_project_is_the_codes_else_the_inviters_most_active(
    user_factory, project_factory
):
    inviter = user_factory()
    quiet, busy, named = project_factory(), project_factory(), project_factory()
    Membership.objects.create(user=inviter, project=quiet, rac=1.0)
    Membership.objects.create(user=inviter, project=busy, rac=50.0)
    assert landing_project(get_invite_code(inviter)) == busy
    assert landing_project(get_invite_code(inviter, named)) == named


def test_a_private_or_inactive_project_is_never_the_landing_project(user_factory, project_factory):
    inviter = user_factory()
    private = project_factory(is_public=False)
    stopped = project_factory(is_active=False)
    public = project_factory(rac=3.0)
    Membership.objects.create(user=inviter, project=private, rac=100.0)
    Membership.objects.create(user=inviter, project=stopped, rac=90.0)
    assert landing_project(get_invite_code(inviter)) == public
    assert landing_project(get_invite_code(inviter, private)) == public


def test_an_inviter_with_no_project_leads_to_the_busiest_one(user_factory, project_factory):
    project_factory(rac=1.0)
    busiest = project_factory(rac=9.0)
    assert landing_project(get_invite_code(user_factory())) == busiest
