import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation

from accounts.models import ApiToken, LoginCode, PhoneLock, User
from accounts.services import (
    login_code_hash,
    login_code_request,
    login_code_text,
    login_code_verify,
    login_codes_purge,
)
from accounts.sms import SmsDeliveryError
from accounts.tests.factories import code_in, make_login_code, make_user, next_phone, sms_messages
from common.errors import ApplicationError, RateLimited
from common.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_request_stores_a_hashed_code_and_sends_it_once(sms_outbox):
    phone = next_phone()

    resend_after = login_code_request(phone=phone, ip="192.0.2.1")

    assert resend_after == 60
    (message,) = sms_messages(sms_outbox)
    assert message["to"] == phone
    code = code_in(message["text"])
    login_code = LoginCode.objects.get()
    assert str(login_code.phone) == phone
    assert login_code.code_hash == login_code_hash(phone=phone, code=code)
    assert code not in login_code.code_hash
    assert login_code.expires_at - login_code.created_at == timedelta(minutes=5)
    assert login_code.attempts == 0
    assert login_code.ip_address == "192.0.2.1"
    assert PhoneLock.objects.filter(phone=phone).count() == 1


def test_request_normalises_the_number(sms_outbox):
    login_code_request(phone="8 (900) 765-43-21", ip=None)

    assert [message["to"] for message in sms_messages(sms_outbox)] == ["+79007654321"]


def test_the_sms_is_in_the_language_of_the_request_and_holds_only_the_code(sms_outbox):
    with translation.override("ru"):
        login_code_request(phone=next_phone(), ip=None)

    (message,) = sms_messages(sms_outbox)
    code = code_in(message["text"])
    with translation.override("ru"):
        assert message["text"] == login_code_text(code=code)


def test_the_sms_follows_the_language_of_an_existing_account(sms_outbox):
    user = make_user(language="en")

    with translation.override("ru"):
        login_code_request(phone=str(user.phone), ip=None)

    (message,) = sms_messages(sms_outbox)
    assert message["text"] == "Parta sign-in code: " + code_in(message["text"]) + ". Do not share it with anyone."


def test_resend_within_60_seconds_is_refused_with_the_wait(sms_outbox):
    phone = next_phone()
    make_login_code(phone=phone, age=timedelta(seconds=20))

    with pytest.raises(RateLimited) as refused:
        login_code_request(phone=phone, ip=None)

    assert refused.value.code == "resend_too_soon"
    assert refused.value.retry_after == 40
    assert LoginCode.objects.count() == 1
    assert sms_messages(sms_outbox) == []


def test_resend_after_60_seconds_supersedes_the_old_code(sms_outbox):
    phone = next_phone()
    old = make_login_code(phone=phone, age=timedelta(seconds=61))

    login_code_request(phone=phone, ip=None)

    old.refresh_from_db()
    assert old.is_superseded is True
    assert LoginCode.objects.filter(is_superseded=False).count() == 1
    assert len(sms_messages(sms_outbox)) == 1


def test_the_sixth_code_in_a_day_is_refused_until_the_oldest_is_a_day_old(sms_outbox):
    phone = next_phone()
    for hours in (23, 20, 10, 5, 1):
        make_login_code(phone=phone, age=timedelta(hours=hours))
    make_login_code(phone=phone, age=timedelta(hours=25))

    with pytest.raises(RateLimited) as refused:
        login_code_request(phone=phone, ip=None)

    assert refused.value.code == "daily_limit"
    assert 3590 <= refused.value.retry_after <= 3600
    assert LoginCode.objects.count() == 6
    assert sms_messages(sms_outbox) == []


def test_the_per_ip_limit_refuses_before_anything_is_sent(sms_outbox, settings):
    settings.LOGIN_IP_CODE_RATE = "2/hour"
    login_code_request(phone=next_phone(), ip="198.51.100.7")
    login_code_request(phone=next_phone(), ip="198.51.100.7")

    with pytest.raises(RateLimited) as refused:
        login_code_request(phone=next_phone(), ip="198.51.100.7")
    login_code_request(phone=next_phone(), ip="198.51.100.8")

    assert refused.value.code == "rate_limited"
    assert LoginCode.objects.count() == 3
    assert len(sms_messages(sms_outbox)) == 3


def test_a_failed_sms_deletes_the_code_and_answers_503(monkeypatch, sms_outbox):
    def broken(**kwargs):
        raise SmsDeliveryError("down")

    monkeypatch.setattr("accounts.services.sms_send", broken)
    phone = next_phone()

    with pytest.raises(ApplicationError) as refused:
        login_code_request(phone=phone, ip=None)

    assert refused.value.status_code == 503
    assert refused.value.code == "sms_unavailable"
    assert LoginCode.objects.count() == 0
    monkeypatch.undo()
    login_code_request(phone=phone, ip=None)  # no resend pause after a failure
    assert len(sms_messages(sms_outbox)) == 1


def test_verify_with_the_right_code_creates_the_account_once(sms_outbox):
    phone = next_phone()
    login_code_request(phone=phone, ip=None)
    code = code_in(sms_messages(sms_outbox)[0]["text"])

    user = login_code_verify(phone=phone, code=code, ip=None)

    assert str(user.phone) == phone
    assert user.has_usable_password() is False
    assert user.last_login is not None
    login_code = LoginCode.objects.get()
    assert login_code.used_at is not None
    assert login_code.attempts == 0
    assert list(AuditEvent.objects.values_list("action", "object_id")) == [("user_register", str(user.pk))]


def test_verify_signs_an_existing_account_in(sms_outbox):
    user = make_user(first_name="Анна")
    make_login_code(phone=str(user.phone), code="111222")

    assert login_code_verify(phone=str(user.phone), code="111222", ip=None) == user
    assert User.objects.count() == 1
    assert AuditEvent.objects.count() == 0


def refused_code(phone: str, code: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        login_code_verify(phone=phone, code=code, ip=None)
    return refused.value


def test_a_wrong_code_counts_one_attempt():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")

    error = refused_code(phone, "654321")

    assert (error.code, error.status_code, error.extra) == ("code_wrong", 400, {"attempts_left": 4})
    assert LoginCode.objects.get().attempts == 1
    assert User.objects.count() == 0


def test_a_malformed_code_counts_no_attempt():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")

    error = refused_code(phone, "12345")

    assert error.code == "invalid_code_format"
    assert LoginCode.objects.get().attempts == 0


def test_the_code_is_burned_after_five_wrong_attempts():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    codes = [refused_code(phone, "00000" + str(index)).code for index in range(5)]

    burned = refused_code(phone, "123456")

    assert codes == ["code_wrong"] * 5
    assert (burned.code, burned.status_code) == ("code_burned", 400)
    assert LoginCode.objects.get().attempts == 5
    assert LoginCode.objects.get().used_at is None
    assert User.objects.count() == 0


def test_four_wrong_attempts_then_the_right_code_signs_in():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    for index in range(4):
        refused_code(phone, "00000" + str(index))

    user = login_code_verify(phone=phone, code="123456", ip=None)

    assert str(user.phone) == phone
    assert LoginCode.objects.get().attempts == 4


def test_an_expired_code_is_refused_without_counting():
    phone = next_phone()
    make_login_code(phone=phone, code="123456", age=timedelta(minutes=5, seconds=1))

    error = refused_code(phone, "123456")

    assert (error.code, error.status_code) == ("code_expired", 400)
    assert LoginCode.objects.get().attempts == 0
    assert User.objects.count() == 0


def test_a_used_code_is_refused():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    login_code_verify(phone=phone, code="123456", ip=None)

    error = refused_code(phone, "123456")

    assert error.code == "code_invalid"


def test_a_superseded_code_is_refused():
    phone = next_phone()
    make_login_code(phone=phone, code="123456", is_superseded=True)

    error = refused_code(phone, "123456")

    assert error.code == "code_invalid"
    assert LoginCode.objects.get().attempts == 0
    assert User.objects.count() == 0


def test_after_a_resend_only_the_new_code_works(sms_outbox, monkeypatch):
    monkeypatch.setattr("accounts.services.secrets.choice", lambda digits: "7")
    phone = next_phone()
    make_login_code(phone=phone, code="123456", age=timedelta(seconds=90))
    login_code_request(phone=phone, ip=None)

    error = refused_code(phone, "123456")
    user = login_code_verify(phone=phone, code="777777", ip=None)

    assert error.code == "code_wrong"
    assert str(user.phone) == phone


def test_no_code_at_all_is_refused():
    assert refused_code(next_phone(), "123456").code == "code_invalid"


def test_another_numbers_code_is_refused():
    phone, other = next_phone(), next_phone()
    make_login_code(phone=other, code="123456")
    make_login_code(phone=phone, code="999999")

    error = refused_code(phone, "123456")

    assert error.code == "code_wrong"
    assert User.objects.count() == 0


def test_a_blocked_account_cannot_sign_in():
    user = make_user(is_active=False)
    make_login_code(phone=str(user.phone), code="123456")

    error = refused_code(str(user.phone), "123456")

    assert (error.code, error.status_code) == ("account_blocked", 403)
    assert ApiToken.objects.count() == 0


def test_the_per_ip_token_limit(settings):
    settings.LOGIN_IP_TOKEN_RATE = "2/hour"
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    for _ in range(2):
        with pytest.raises(ApplicationError):
            login_code_verify(phone=phone, code="000000", ip="203.0.113.5")

    with pytest.raises(RateLimited) as refused:
        login_code_verify(phone=phone, code="123456", ip="203.0.113.5")

    assert refused.value.code == "rate_limited"
    assert LoginCode.objects.get().attempts == 2
    assert LoginCode.objects.get().used_at is None


def test_purge_forgets_codes_older_than_a_day():
    phone, old_phone = next_phone(), next_phone()
    make_login_code(phone=phone, age=timedelta(hours=23))
    make_login_code(phone=old_phone, age=timedelta(hours=25))
    PhoneLock.objects.create(phone=phone)
    PhoneLock.objects.create(phone=old_phone)

    assert login_codes_purge() == 1
    assert [str(code.phone) for code in LoginCode.objects.all()] == [phone]
    assert [str(lock.phone) for lock in PhoneLock.objects.all()] == [phone]


def run_in_threads(count: int, target) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_wrong_guesses_evaluate_exactly_five():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    guesses = [str(100000 + index) for index in range(50)]
    assert "123456" not in guesses

    results = run_in_threads(50, lambda index: login_code_verify(phone=phone, code=guesses[index], ip=None))

    codes = sorted(getattr(result, "code", repr(result)) for result in results)
    assert codes == ["code_burned"] * 45 + ["code_wrong"] * 5
    assert LoginCode.objects.get().attempts == 5
    with pytest.raises(ApplicationError) as refused:
        login_code_verify(phone=phone, code="123456", ip=None)
    assert refused.value.code == "code_burned"
    assert User.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_right_codes_sign_in_once():
    phone = next_phone()
    make_login_code(phone=phone, code="123456")

    results = run_in_threads(10, lambda index: login_code_verify(phone=phone, code="123456", ip=None))

    users = [result for result in results if isinstance(result, User)]
    errors = [result.code for result in results if isinstance(result, ApplicationError)]
    assert len(users) == 1
    # The losers are told to request a new code: "used" when they saw the
    # winner's mark, "burned" when the five evaluation slots were taken by
    # parallel right codes still in flight (on PostgreSQL, truly parallel).
    assert len(errors) == 9
    assert set(errors) <= {"code_invalid", "code_burned"}
    assert User.objects.count() == 1
    assert LoginCode.objects.get().attempts == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_for_one_number_send_one_code(sms_outbox):
    phone = next_phone()

    results = run_in_threads(10, lambda index: login_code_request(phone=phone, ip=None))

    assert sorted((getattr(result, "code", result) for result in results), key=str) == [60] + ["resend_too_soon"] * 9
    assert LoginCode.objects.count() == 1
    assert len(sms_messages(sms_outbox)) == 1


def test_codes_expire_after_the_setting(settings, sms_outbox):
    settings.LOGIN_CODE_TTL_SECONDS = 120
    phone = next_phone()

    login_code_request(phone=phone, ip=None)

    login_code = LoginCode.objects.get()
    assert login_code.expires_at - login_code.created_at == timedelta(seconds=120)
    assert login_code.created_at <= timezone.now()
