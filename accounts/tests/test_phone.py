import pytest

from accounts.services import login_code_clean, phone_normalise
from common.errors import ApplicationError


@pytest.mark.parametrize(
    "raw",
    [
        "+79001234567",
        "8 (900) 123-45-67",
        "+7 900 123 45 67",
        "＋７９００１２３４５６７",
        "８９００１２３４５６７",
        "  +7 900 123 45 67  ",
        "7 900 1234567",
        "79001234567",
        "9001234567",
        "+7 (900) 123.45.67",
        "8\u00a0900\u00a0123\u201345\u201367",
        "+7\u200b9001234567",
    ],
)
def test_phone_normalise_gives_one_e164_number(raw):
    assert phone_normalise(raw) == "+79001234567"


def test_phone_normalise_keeps_foreign_numbers_written_with_a_plus():
    assert phone_normalise("+375 29 123-45-67") == "+375291234567"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "+7", "12345", "8 (900) 123-45-6", "+7 900 123 45 678", "+8 900 123 45 67", "phone", "+7 9OO 123 45 67",
     "+7 900 123 45 67 ext", "1" * 65, "+7 000 123 45 67"],
)  # fmt: skip
def test_phone_normalise_refuses_what_is_not_a_phone_number(raw):
    with pytest.raises(ApplicationError) as refused:
        phone_normalise(raw)

    assert refused.value.code == "invalid_phone"
    assert refused.value.extra == {"field": "phone"}
    assert refused.value.status_code == 400


@pytest.mark.parametrize("raw", ["123456", " 123 456 ", "１２３４５６", "123-456"])
def test_login_code_clean_accepts_six_digits(raw):
    assert login_code_clean(raw) == "123456"


@pytest.mark.parametrize("raw", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 34 5"])
def test_login_code_clean_refuses_anything_else(raw):
    with pytest.raises(ApplicationError) as refused:
        login_code_clean(raw)

    assert refused.value.code == "invalid_code_format"
    assert refused.value.extra == {"field": "code"}
