"""The Russian catalogue is complete and compiled, and pages and API errors
follow the language of the request (Russian by default).

The completeness check extracts the strings as `makemessages` does, in a
scratch copy of the project: makemessages always writes into a `locale`
directory of its working directory (and writes preprocessed templates next to
the templates), so it never runs in the tree itself."""

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

ROOT = Path(settings.BASE_DIR)
CATALOGUE = Path("locale") / "ru" / "LC_MESSAGES" / "django.po"
# The same as in the documented makemessages command.
IGNORED = [".venv", "var", "bench", "tests", "*/tests/*"]
# Not needed to extract strings; never copied.
NOT_COPIED = {"var", "bench", "docs", "test-artifacts", "node_modules", "tests", "__pycache__"}
GETTEXT_PROGRAMS = ("xgettext", "msguniq", "msgmerge", "msgattrib")
PLURAL_FORMS = "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"
FIX = (
    "Run `.venv/bin/python manage.py makemessages -l ru --ignore=.venv --ignore=var --ignore=bench "
    "--ignore=tests --ignore='*/tests/*' --no-obsolete`, translate the new or changed entries in "
    "locale/ru/LC_MESSAGES/django.po (and remove their fuzzy flag), then run `make messages`."
)


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = " ".join(self.references[:3]) or "no reference"
        context = f" (context {self.msgctxt!r})" if self.msgctxt is not None else ""
        return f"{self.msgid!r}{context} at {where}"


def po_entries(path: Path) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") included; obsolete
    entries (#~) are left out."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] = ("", 0)

    def append(value: str) -> None:
        assert entry is not None
        name, index = target
        if name == "msgstr":
            entry.msgstr[index] += value
        elif name == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + value
        elif name == "msgctxt":
            entry.msgctxt = (entry.msgctxt or "") + value
        else:
            entry.msgid += value

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry = None
            continue
        if line.startswith("#~"):
            continue
        if entry is None:
            entry = Entry()
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#:"):
            entry.references.extend(line[2:].split())
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            append(ast.literal_eval(line))
        else:
            keyword, _space, value = line.partition(" ")
            if keyword.startswith("msgstr["):
                target = ("msgstr", int(keyword[len("msgstr[") : -1]))
                entry.msgstr[target[1]] = ""
            elif keyword == "msgstr":
                target = ("msgstr", 0)
                entry.msgstr[0] = ""
            elif keyword in ("msgid", "msgid_plural", "msgctxt"):
                target = (keyword, 0)
                if keyword == "msgid_plural":
                    entry.msgid_plural = ""
                elif keyword == "msgctxt":
                    entry.msgctxt = ""
            else:
                raise AssertionError(f"{path}:{number}: cannot read {raw!r}")
            append(ast.literal_eval(value))
    return entries


def messages(entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.msgid or entry.msgctxt is not None]


def header(entries: list[Entry]) -> dict[str, str]:
    (first,) = [entry for entry in entries if not entry.msgid and entry.msgctxt is None]
    fields = (line.partition(":") for line in first.msgstr[0].splitlines() if line)
    return {name.strip(): value.strip() for name, _colon, value in fields}


def copy_project(target: Path) -> None:
    """The project's sources without the virtualenv, the runtime data and
    anything else that holds no translatable string; only regular files."""
    var_dir = Path(settings.VAR_DIR).resolve()

    def skipped(directory: str, names: list[str]) -> set[str]:
        result = set()
        for name in names:
            path = Path(directory, name)
            if name.startswith(".") or name in NOT_COPIED or path.resolve() == var_dir:
                result.add(name)
            elif not (path.is_dir() or path.is_file()) or path.is_symlink():
                result.add(name)  # sockets, fifos, links out of the tree
            elif name.endswith((".pyc", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm")):
                result.add(name)
        return result

    shutil.copytree(ROOT, target, ignore=skipped)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> list[Entry]:
    """The committed catalogue merged with the strings the sources hold now,
    as makemessages leaves it."""
    missing = [program for program in GETTEXT_PROGRAMS if shutil.which(program) is None]
    if missing:
        pytest.fail(
            "GNU gettext is needed to check the translations and is not installed (missing: "
            + ", ".join(missing)
            + "). Install it, e.g. `apt-get install gettext`."
        )
    copy = tmp_path_factory.mktemp("translations") / "project"
    copy_project(copy)
    command = [
        sys.executable,
        "manage.py",
        "makemessages",
        "--locale=ru",
        "--no-obsolete",
        *(f"--ignore={pattern}" for pattern in IGNORED),
    ]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"makemessages failed:\n{result.stdout}\n{result.stderr}"
    return po_entries(copy / CATALOGUE)


def test_every_translatable_string_has_a_russian_translation(extracted: list[Entry]) -> None:
    entries = messages(extracted)
    untranslated = [entry for entry in entries if not all(entry.msgstr.values())]
    fuzzy = [entry for entry in entries if "fuzzy" in entry.flags]

    assert len(entries) > 300
    assert not untranslated, (
        f"{len(untranslated)} string(s) without a Russian translation:\n"
        + "\n".join(entry.describe() for entry in untranslated)
        + "\n"
        + FIX
    )
    assert not fuzzy, (
        f"{len(fuzzy)} fuzzy translation(s) to check:\n" + "\n".join(entry.describe() for entry in fuzzy) + "\n" + FIX
    )


def test_the_catalogue_has_the_three_russian_plural_forms_everywhere() -> None:
    entries = po_entries(ROOT / CATALOGUE)

    assert header(entries)["Plural-Forms"] == PLURAL_FORMS
    assert header(entries)["Content-Type"] == "text/plain; charset=UTF-8"
    plurals = [entry for entry in messages(entries) if entry.msgid_plural is not None]
    assert plurals
    assert [entry.describe() for entry in plurals if sorted(entry.msgstr) != [0, 1, 2]] == []
    assert [entry.describe() for entry in messages(entries) if "fuzzy" in entry.flags] == []


def test_the_compiled_catalogue_matches_its_source() -> None:
    """django.mo is committed so that the portal runs without gettext: it
    must say what django.po says."""
    entries = messages(po_entries(ROOT / CATALOGUE))
    with (ROOT / CATALOGUE).with_suffix(".mo").open("rb") as compiled:
        translations = gettext.GNUTranslations(compiled)

    stale = []
    for entry in entries:
        if entry.msgid_plural is None:
            found = [
                translations.gettext(entry.msgid)
                if entry.msgctxt is None
                else translations.pgettext(entry.msgctxt, entry.msgid)
            ]
            expected = [entry.msgstr[0]]
        else:
            # 1, 2 and 5 select the forms 0, 1 and 2.
            found = [
                translations.ngettext(entry.msgid, entry.msgid_plural, count)
                if entry.msgctxt is None
                else translations.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, count)
                for count in (1, 2, 5)
            ]
            expected = [entry.msgstr[index] for index in range(3)]
        if found != expected:
            stale.append(entry.describe())

    assert not stale, "locale/ru/LC_MESSAGES/django.mo is out of date; run `make messages`:\n" + "\n".join(stale)


def test_the_sign_in_sms_holds_the_code_as_its_only_digits() -> None:
    """The phone's code autofill looks for the one run of digits."""
    (entry,) = [
        entry
        for entry in messages(po_entries(ROOT / CATALOGUE))
        if entry.msgid == "Parta sign-in code: %(code)s. Do not share it with anyone."
    ]
    text = entry.msgstr[0] % {"code": "123456"}

    assert re.findall(r"\d+", text) == ["123456"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "title"),
    [
        ({}, "Вход в Парту"),
        ({"Accept-Language": "de"}, "Вход в Парту"),
        ({"Accept-Language": "en"}, "Sign in to Parta"),
        ({"Accept-Language": "en-GB,en;q=0.9"}, "Sign in to Parta"),
    ],
    ids=["default", "unsupported", "en", "en-GB"],
)
def test_a_page_is_russian_by_default_and_english_on_request(headers: dict[str, str], title: str) -> None:
    response = Client().get("/login/", headers=headers)

    assert response.status_code == 200
    assert f"<h1>{title}</h1>" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Введите правильный номер телефона, например +7 900 123-45-67."),
        ({"Accept-Language": "en"}, "Enter a valid phone number, for example +7 900 123-45-67."),
    ],
    ids=["default", "en"],
)
def test_an_api_error_is_russian_by_default_and_english_on_request(headers: dict[str, str], message: str) -> None:
    response = Client().post("/api/v1/auth/code/", {"phone": "abc"}, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert response.json() == {"phone": [message]}
