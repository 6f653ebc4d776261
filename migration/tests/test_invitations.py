"""SMS invitations of people without an account, and following the link."""

import re

import pytest
from django.urls import reverse

from accounts.tests.factories import sms_messages
from chats.models import ChatMember
from migration import tasks
from migration.export import export_parse
from migration.models import Invitation
from migration.services import export_import, invitations_sms_send
from migration.tests.factories import School, dumps
from organisations.models import Role
from organisations.tests.factories import make_member, make_organisation, make_user


@pytest.fixture
def migrated(db, sms_outbox, eager_celery, monkeypatch, django_capture_on_commit_callbacks, settings):
    settings.PUBLIC_URL = "https://parta.example"
    monkeypatch.setattr(tasks.legacy_notice_send, "delay", lambda legacy_chat_id: None)
    school = School()
    with django_capture_on_commit_callbacks(execute=True):
        [result] = export_import(export=export_parse(dumps(school.export())))
    school.chat_id = result.chat_id  # type: ignore[attr-defined]
    return school


def _link(outbox) -> str:
    [sms] = sms_messages(outbox)
    match = re.search(r"https://parta\.example(/migration/invitations/[0-9a-f]+/)", sms["text"])
    assert match, sms["text"]
    return match.group(1)


def test_the_person_without_an_account_gets_one_sms_with_a_link(migrated, sms_outbox):
    [sms] = sms_messages(sms_outbox)
    assert sms["to"] == migrated.new_parent_phone
    assert "«7Б — родители»" in sms["text"]
    assert migrated.organisation.short_name in sms["text"]
    invitation = Invitation.objects.get()
    assert invitation.sms_sent_at is not None
    # Sending again sends nothing more.
    assert invitations_sms_send(legacy_chat_id=invitation.legacy_chat_id) == 0
    assert len(sms_messages(sms_outbox)) == 1
    # Only the hash of the token is stored.
    assert invitation.token_hash not in sms["text"]


def test_following_the_link_signed_out_asks_to_sign_in_first(migrated, sms_outbox, client):
    link = _link(sms_outbox)
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_signing_in_with_the_invited_number_and_following_the_link_joins_the_chat_once(migrated, sms_outbox, client):
    link = _link(sms_outbox)
    person = make_user(phone=migrated.new_parent_phone)
    client.force_login(person)
    page = client.get(link)
    assert page.status_code == 200
    assert "7Б — родители" in page.content.decode()
    assert not ChatMember.objects.filter(chat_id=migrated.chat_id, user=person).exists()

    response = client.post(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("chats:detail", args=[migrated.chat_id])
    member = ChatMember.objects.get(chat_id=migrated.chat_id, user=person)
    assert member.role == "member"
    invitation = Invitation.objects.get()
    assert (invitation.accepted_by, invitation.accepted_at is not None) == (person, True)
    # Following it again is harmless for the same person.
    assert client.post(link).status_code == 302
    assert ChatMember.objects.filter(chat_id=migrated.chat_id, user=person).count() == 1

    other = make_user(phone=migrated.new_parent_phone.replace("+7998", "+7996"))
    client.force_login(other)
    refused = client.post(link)
    assert refused.status_code == 410
    assert not ChatMember.objects.filter(chat_id=migrated.chat_id, user=other).exists()


def test_someone_signed_in_with_another_number_is_refused_and_nothing_changes(migrated, sms_outbox, client):
    link = _link(sms_outbox)
    intruder = make_user()
    client.force_login(intruder)
    response = client.post(link)
    assert response.status_code == 403
    assert "This invitation was sent to another phone number." in response.content.decode()
    assert not ChatMember.objects.filter(chat_id=migrated.chat_id, user=intruder).exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_child_in_safe_mode_who_is_not_a_contact_of_the_owner_cannot_join(migrated, sms_outbox, client):
    link = _link(sms_outbox)
    child = make_member(
        organisation=make_organisation(), role=Role.STUDENT, user=make_user(phone=migrated.new_parent_phone)
    )
    client.force_login(child)
    assert client.post(link).status_code == 403
    assert not ChatMember.objects.filter(chat_id=migrated.chat_id, user=child).exists()
    assert Invitation.objects.get().accepted_at is None


def test_an_unknown_token_is_404(migrated, client):
    client.force_login(make_user())
    assert client.get(reverse("migration:invitation", args=["0" * 48])).status_code == 404


def test_a_parent_without_an_account_registers_from_the_link_joins_and_reads_the_history(migrated, sms_outbox, client):
    from accounts.tests.factories import code_in

    link = _link(sms_outbox)
    to_login = client.get(link)
    assert to_login["Location"] == reverse("accounts:login") + "?next=" + link
    client.post(reverse("accounts:login"), {"action": "phone", "phone": migrated.new_parent_phone, "next": link})
    login_sms = sms_messages(sms_outbox)[-1]
    assert login_sms["to"] == migrated.new_parent_phone
    signed_in = client.post(
        reverse("accounts:login"), {"action": "code", "code": code_in(login_sms["text"]), "next": link}
    )
    assert signed_in["Location"] == link

    joined = client.post(link)
    assert joined["Location"] == reverse("chats:detail", args=[migrated.chat_id])
    page = client.get(joined["Location"]).content.decode()
    first, second = page.index("Добрый вечер!"), page.index("Спасибо!")
    assert first < second
