import pytest

from accounts.models import User
from accounts.names import name_clean
from accounts.selectors import name_skeleton, user_name_is_lookalike
from accounts.services import name_flags_refresh, profile_update
from accounts.tests.factories import make_user
from common.errors import ApplicationError
from common.models import AuditEvent

pytestmark = pytest.mark.django_db

# "Анна Петрова" typed with Latin A, a, e, p and o where they look the same.
LATIN_LOOKALIKE = "\u0041\u043d\u043d\u0061 \u041f\u0065\u0442\u0070\u006f\u0432\u0061"


def update(user: User, **fields: str) -> User:
    values = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "middle_name": user.middle_name,
        "language": user.language,
        "time_zone": user.time_zone,
        **fields,
    }
    return profile_update(user=user, **values)


def test_the_lookalike_really_mixes_scripts():
    first_name, last_name = LATIN_LOOKALIKE.split()

    assert first_name != "Анна" and last_name != "Петрова"
    assert {"A", "a"} <= set(first_name)
    assert {"e", "p", "o", "a"} <= set(last_name)
    assert name_skeleton(LATIN_LOOKALIKE) == name_skeleton("Анна Петрова") == "аннапетрова"


@pytest.mark.parametrize(
    ("name", "skeleton"),
    [
        ("АННА  ПЕТРОВА", "аннапетрова"),
        ("Анна-Петрова!", "аннапетрова"),
        ("Пётр Сергеев", "петрсергеев"),
        ("ＢＨＭ", "внм"),
        ("Anna Petrova", "\u0430nn\u0430\u0440\u0435\u0442r\u043ev\u0430"),
        ("П\u0301етр", "петр"),
        ("Петр0в", "петров"),
    ],
)
def test_name_skeleton(name, skeleton):
    assert name_skeleton(name) == skeleton


def test_a_name_like_a_verified_educators_is_flagged():
    make_user(first_name="Анна", last_name="Петрова", is_verified_educator=True)
    impostor = make_user()

    update(impostor, first_name=LATIN_LOOKALIKE.split()[0], last_name=LATIN_LOOKALIKE.split()[1])

    assert impostor.is_name_flagged is True
    assert User.objects.get(pk=impostor.pk).is_name_flagged is True
    assert user_name_is_lookalike(user=impostor) is True


def test_other_names_and_verified_educators_are_not_flagged():
    teacher = make_user(first_name="Анна", last_name="Петрова", is_verified_educator=True)
    parent = make_user()

    update(parent, first_name="Анна", last_name="Петренко")
    update(teacher, middle_name="Ивановна")

    assert parent.is_name_flagged is False
    assert teacher.is_name_flagged is False
    assert user_name_is_lookalike(user=teacher) is False


def test_renaming_away_clears_the_flag():
    make_user(first_name="Анна", last_name="Петрова", is_verified_educator=True)
    impostor = make_user()
    update(impostor, first_name="Анна", last_name="ПЕТРОВА")
    assert impostor.is_name_flagged is True

    update(impostor, first_name="Мария", last_name="Сидорова")

    assert impostor.is_name_flagged is False


def test_clearing_the_name_clears_the_flag():
    make_user(first_name="Анна", last_name="Петрова", is_verified_educator=True)
    impostor = make_user()
    update(impostor, first_name="Анна", last_name="Петрова")

    update(impostor, first_name="", last_name="")

    assert impostor.is_name_flagged is False


def test_a_verified_educator_renaming_moves_the_flags():
    teacher = make_user(first_name="Анна", last_name="Петрова", is_verified_educator=True)
    namesake = make_user(first_name="Анна", last_name="Петрова")
    name_flags_refresh(skeleton=teacher.name_skeleton)
    future_namesake = make_user(first_name="Анна", last_name="Смирнова")

    update(teacher, last_name="Смирнова")

    assert User.objects.get(pk=namesake.pk).is_name_flagged is False
    assert User.objects.get(pk=future_namesake.pk).is_name_flagged is True


def test_bidi_and_zero_width_characters_are_stripped():
    user = make_user()

    update(
        user,
        first_name="\u202eАнна\u200b",
        last_name="Пет\u200dрова\u2066\u2069\ufeff",
        middle_name="\u200eИвановна\u200f\u202a\u202c",
    )

    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.middle_name) == ("Анна", "Петрова", "Ивановна")


def test_name_clean_folds_white_space_and_control_characters():
    assert name_clean("  Анна\t\nМария  ") == "Анна Мария"


def test_profile_update_is_audited_with_the_changes():
    user = make_user(first_name="Анна")

    update(user, first_name="Анна", last_name="Петрова", time_zone="Asia/Omsk", language="en")

    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.object_id) == ("profile_update", user, str(user.pk))
    assert event.changes == {"last_name": ["", "Петрова"], "language": ["ru", "en"], "time_zone": ["", "Asia/Omsk"]}


def test_nothing_changed_writes_nothing():
    user = make_user(first_name="Анна")

    update(user, first_name=" Анна ")

    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"first_name": "А" * 81}, "first_name", "name_too_long"),
        ({"middle_name": "Б" * 81}, "middle_name", "name_too_long"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "invalid_time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone", "invalid_time_zone"),
        ({"language": "de"}, "language", "invalid_language"),
    ],
)
def test_profile_update_refuses_bad_values_and_changes_nothing(fields, field, code):
    user = make_user(first_name="Анна")

    with pytest.raises(ApplicationError) as refused:
        update(user, **fields)

    assert (refused.value.code, refused.value.extra) == (code, {"field": field})
    user.refresh_from_db()
    assert (user.first_name, user.middle_name, user.time_zone, user.language) == ("Анна", "", "", "ru")
    assert AuditEvent.objects.count() == 0


def test_a_name_of_80_characters_is_fine():
    user = make_user()

    update(user, first_name="А" * 80)

    assert User.objects.get(pk=user.pk).first_name == "А" * 80
