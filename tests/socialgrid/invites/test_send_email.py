from __future__ import annotations

import smtplib
from datetime import timedelta

from django.core import mail
from django.urls import reverse
from django.utils import timezone

import pytest

from compute.models import Volunteer
from socialgrid.invites.codes import get_invite_code
from socialgrid.invites.models import InviteEmail

URL = "/invite/email/"


@pytest.fixture
def me(client, user_factory):
    user = user_factory(username="ada")
    user.profile.display_name = "Ada"
    user.profile.save()
    client.force_login(user)
    return user


def test_the_url_is_invites_send_email():
    assert reverse("invites:send_email") == URL


def test_one_email_per_address_with_the_link_and_message(client, me):
    response = client.post(
        URL, {"addresses": "bo@example.org, cy@example.org\nbo@EXAMPLE.org", "message": "Join!"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/invite/"
    assert sorted(m.to[0] for m in mail.outbox) == ["bo@example.org", "cy@example.org"]
    link = f"http://testserver/invite/{get_invite_code(me).code}/"
    for message in mail.outbox:
        assert len(message.to) == 1  # recipients never see each other
        assert message.subject == "Ada invites you to compute on socialgrid"
        assert link in message.body
        assert "Join!" in message.body
        html, mimetype = message.alternatives[0]
        assert mimetype == "text/html"
        assert f'href="{link}"' in html
    assert InviteEmail.objects.filter(sender=me).count() == 2
    follow = client.get("/invite/").content.decode()
    assert "Invitation sent to 2 addresses." in follow


def test_a_project_invitation_links_the_projects_code(client, me, project_factory):
    project = project_factory(name="Primes")
    response = client.post(URL, {"addresses": "bo@example.org", "project": project.slug})
    assert response["Location"] == f"/invite/?project={project.slug}"
    (message,) = mail.outbox
    assert message.subject == "Ada invites you to compute for Primes"
    assert get_invite_code(me, project).code in message.body


def test_the_personal_link_names_the_inviters_most_active_project(client, me, project_factory):
    from compute.models import Membership

    project = project_factory(name="Primes")
    Membership.objects.create(user=me, project=project, rac=5.0)
    client.post(URL, {"addresses": "bo@example.org"})
    assert mail.outbox[0].subject == "Ada invites you to compute for Primes"
    assert get_invite_code(me).code in mail.outbox[0].body


def test_invalid_addresses_get_a_clear_error_and_nothing_is_sent(client, me):
    response = client.post(URL, {"addresses": "bo@example.org, not-an-address, <b>x@</b>"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not a valid e-mail address: not-an-address, &lt;b&gt;x@&lt;/b&gt;" in html
    assert "<b>x@</b>" not in html
    assert 'aria-invalid="true"' in html
    assert mail.outbox == []
    assert not InviteEmail.objects.exists()


@pytest.mark.parametrize("addresses", ["", " , ;\n"])
def test_no_address_is_an_error(client, me, addresses):
    response = client.post(URL, {"addresses": addresses})
    assert response.status_code == 400
    assert mail.outbox == []


def test_at_most_ten_addresses_at_a_time(client, me):
    many = ", ".join(f"p{i}@example.org" for i in range(11))
    response = client.post(URL, {"addresses": many})
    assert response.status_code == 400
    assert "at most 10" in response.content.decode()
    assert mail.outbox == []


def test_the_daily_limit_refuses_the_whole_batch_that_would_pass_it(client, me, settings):
    settings.INVITES_EMAILS_PER_DAY = 3
    assert client.post(URL, {"addresses": "a@example.org, b@example.org"}).status_code == 302
    response = client.post(URL, {"addresses": "c@example.org, d@example.org"})
    assert response.status_code == 400
    assert "You can send 1 more invitation today" in response.content.decode()
    assert len(mail.outbox) == 2
    assert client.post(URL, {"addresses": "c@example.org"}).status_code == 302
    response = client.post(URL, {"addresses": "e@example.org"})
    assert "You have sent today&#x27;s 3 invitations" in response.content.decode()
    assert len(mail.outbox) == 3


def test_the_daily_limit_is_twenty_by_default_and_rolls_over(client, me):
    long_ago = timezone.now() - timedelta(hours=25)
    recent = timezone.now() - timedelta(hours=1)
    InviteEmail.objects.bulk_create(
        [InviteEmail(sender=me, sent_at=long_ago) for _ in range(20)]
        + [InviteEmail(sender=me, sent_at=recent) for _ in range(19)]
    )
    assert client.post(URL, {"addresses": "a@example.org, b@example.org"}).status_code == 400
    assert client.post(URL, {"addresses": "a@example.org"}).status_code == 302
    assert len(mail.outbox) == 1


def test_the_limit_is_per_sender(client, me, user_factory, settings):
    settings.INVITES_EMAILS_PER_DAY = 1
    client.post(URL, {"addresses": "a@example.org"})
    client.force_login(user_factory())
    assert client.post(URL, {"addresses": "a@example.org"}).status_code == 302
    assert len(mail.outbox) == 2


def test_the_form_is_rate_limited(client, me):
    codes = [client.post(URL, {"addresses": "bad"}).status_code for _ in range(11)]
    assert codes == [400] * 10 + [429]


def test_it_needs_sign_in_and_post(client, user_factory):
    response = client.post(URL, {"addresses": "a@example.org"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    client.force_login(user_factory())
    assert client.get(URL).status_code == 405
    assert mail.outbox == []


def test_banned_users_cannot_send_invitations(client, me):
    Volunteer.objects.create(user=me, banned=True)
    response = client.post(URL, {"addresses": "a@example.org"})
    assert response.status_code == 400
    assert mail.outbox == []


def test_the_message_and_name_are_escaped_in_the_html_part(client, me):
    me.profile.display_name = "<img src=x onerror=alert(1)>\nBcc: evil@example.org"
    me.profile.save()
    client.post(URL, {"addresses": "a@example.org", "message": "<script>alert(1)</script>"})
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    # The text part is plain text; the subject is one line, so no header can be injected.
    assert "<script>alert(1)</script>" in message.body
    assert "\n" not in message.subject
    assert message.bcc == []
    assert message.to == ["a@example.org"]


def test_an_anonymous_inviter_is_not_named(client, me):
    me.profile.privacy = "anonymous"
    me.profile.save()
    client.post(URL, {"addresses": "a@example.org"})
    (message,) = mail.outbox
    assert message.subject.startswith("A socialgrid volunteer invites you")
    assert "ada" not in message.body.lower().replace("canada", "")


def test_a_mail_server_failure_sends_nothing_and_spends_no_allowance(client, me, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    def fail(self, messages):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(EmailBackend, "send_messages", fail)
    response = client.post(URL, {"addresses": "a@example.org"})
    assert response.status_code == 503
    assert "couldn&#x27;t send" in response.content.decode()
    assert not InviteEmail.objects.exists()
