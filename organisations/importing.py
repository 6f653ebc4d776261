"""Bulk import of classes and members from CSV or XLSX.

`import_members` is the single entry point. It reads the whole file, checks
every row and, only when no row has an error, imports everything in one
transaction through the organisation services, so a file either goes in
completely or not at all. Importing the same file again changes nothing:
every service it calls is idempotent.
"""

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import openpyxl
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.names import name_clean
from accounts.services import name_flags_refresh, phone_normalise
from common.errors import ApplicationError
from common.services import audit_record
from organisations import selectors, services
from organisations.models import ImportJob, Membership, Organisation, Role, StudyGroup

MAX_ROWS = 5000
# A real class list is far below this; a larger error report is not read by
# anyone and only bloats the ImportJob row.
MAX_ERRORS_KEPT = 1000
# The unpacked size of an XLSX may be many times its packed size, but a
# sheet of 5000 rows stays far below this: more is a zip bomb.
XLSX_MAX_UNPACKED_SIZE = 100 * 1024 * 1024
XLSX_SIGNATURE = b"PK\x03\x04"
# Row 0 stands for the file as a whole (its size, format or header).
FILE_ROW = 0


@dataclass(frozen=True)
class Column:
    key: str
    aliases: tuple[str, ...]
    is_required: bool
    description: Promise
    example: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "class",
        ("class", "класс", "group", "группа", "study group"),
        False,
        gettext_lazy("Class, e.g. 7Б. Required for a student; for a teacher, the class they teach."),
        "7Б",
    ),
    Column(
        "academic_year",
        ("academic year", "year", "учебный год", "год"),
        False,
        gettext_lazy("The year the academic year starts (2025 or 2025/26); the current one when empty."),
        "2025/26",
    ),
    Column(
        "role",
        ("role", "роль"),
        True,
        gettext_lazy(
            "student, teacher, parent, staff or administrator "
            "(ученик, педагог or учитель, родитель, сотрудник, администратор)."
        ),
        "ученик",
    ),
    Column("last_name", ("last name", "surname", "фамилия"), True, gettext_lazy("Last name."), "Иванова"),
    Column("first_name", ("first name", "имя"), True, gettext_lazy("First name."), "Мария"),
    Column(
        "middle_name",
        ("middle name", "patronymic", "отчество"),
        False,
        gettext_lazy("Middle name (patronymic)."),
        "Петровна",
    ),
    Column(
        "phone",
        ("phone", "phone number", "mobile", "телефон", "номер телефона", "мобильный телефон"),
        True,
        gettext_lazy("Mobile phone in any common notation: +7 900 123-45-67, 8 (900) 123-45-67."),
        "8 (900) 123-45-67",
    ),
    Column(
        "student_phone",
        ("student phone", "child phone", "телефон ученика", "телефон ребенка", "телефон обучающегося"),
        False,
        gettext_lazy(
            "For a parent: the phone of their child, a student in this file or already in the school. "
            "One row per child."
        ),
        "+7 900 765-43-21",
    ),
    Column(
        "homeroom",
        ("homeroom", "homeroom teacher", "классный руководитель", "кл руководитель"),
        False,
        gettext_lazy("For a teacher: yes (да) when they are the homeroom teacher of the class."),
        "да",
    ),
)
REQUIRED_COLUMNS = tuple(column.key for column in COLUMNS if column.is_required)
COLUMN_ORDER = {column.key: index for index, column in enumerate(COLUMNS)}

ROLE_ALIASES: dict[str, str] = {
    **dict.fromkeys(("student", "ученик", "ученица", "обучающийся", "обучающаяся"), Role.STUDENT),
    **dict.fromkeys(("teacher", "педагог", "учитель", "учительница"), Role.TEACHER),
    **dict.fromkeys(
        ("parent", "guardian", "родитель", "законный представитель", "мать", "отец", "мама", "папа"), Role.PARENT
    ),
    **dict.fromkeys(("staff", "сотрудник", "сотрудница", "работник"), Role.STAFF),
    **dict.fromkeys(("administrator", "admin", "администратор"), Role.ADMINISTRATOR),
}
YES_VALUES = frozenset({"yes", "y", "true", "1", "да", "д", "+", "x", "х", "v"})
NO_VALUES = frozenset({"", "no", "n", "false", "0", "нет", "н", "-"})
# Roles in the order they are imported: a parent is linked to a student
# who must already study in the school.
GROUP_ROLES = (Role.STUDENT, Role.TEACHER)
ROLE_ORDER = (Role.STUDENT, Role.TEACHER, Role.STAFF, Role.ADMINISTRATOR, Role.PARENT)

_SPACES = re.compile(r"\s+")
_PARENTHESES = re.compile(r"\(.*?\)")
_YEAR = re.compile(r"^(\d{4})(?:\s*[/\-–—]\s*(\d{2}|\d{4}))?$")


class FileRefused(Exception):
    """The file as a whole cannot be read: size, format, header or row count."""

    def __init__(self, message: str, *, row: int = FILE_ROW, column: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column


@dataclass
class ImportRow:
    number: int
    role: str = ""
    group_name: str = ""
    academic_year: int = 0
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    phone: str = ""
    student_phone: str = ""
    is_homeroom: bool = False


@dataclass
class ErrorReport:
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int, column: str, message: str) -> None:
        self.errors.append({"row": row, "column": column, "message": message})

    def ordered(self) -> list[dict[str, Any]]:
        ordered = sorted(self.errors, key=lambda error: (error["row"], COLUMN_ORDER.get(error["column"], -1)))
        if len(ordered) > MAX_ERRORS_KEPT:
            hidden = len(ordered) - MAX_ERRORS_KEPT
            ordered = ordered[:MAX_ERRORS_KEPT]
            ordered.append(
                {
                    "row": ordered[-1]["row"],
                    "column": "",
                    "message": _("…and %(count)d more errors not shown.") % {"count": hidden},
                }
            )
        return ordered


# --- Entry point ----------------------------------------------------------------------------------------------


def import_members(*, actor: User, organisation: Organisation, uploaded_file: IO[bytes]) -> ImportJob:
    """Import classes and members of `organisation` from a CSV or XLSX file
    (a file-like object with a `name`).

    Returns an ImportJob: status "done" with rows_imported when every row was
    valid and imported; status "failed" with errors [{"row", "column",
    "message"}] and nothing imported otherwise. Side effects: users, classes,
    memberships and guardianships through the services (each audited), and
    one audit entry for the import itself.
    """
    file_name = str(getattr(uploaded_file, "name", "") or "")[:255]
    report = ErrorReport()
    rows: list[ImportRow] = []
    try:
        table = _read_table(uploaded_file)
        rows = _rows_validated(table, organisation=organisation, report=report)
    except FileRefused as refusal:
        report.add(refusal.row, refusal.column, refusal.message)
    if report.errors:
        return _job_failed(
            actor=actor, organisation=organisation, file_name=file_name, rows_total=len(rows), report=report
        )
    try:
        with transaction.atomic():
            job = _rows_import(actor=actor, organisation=organisation, file_name=file_name, rows=rows)
    except _RowFailed as failure:
        # A service refused a row that passed validation (someone changed the
        # school meanwhile): the transaction is rolled back, report the row.
        report.add(failure.row, "", failure.message)
    except IntegrityError:
        # The same people or classes were being created at the same moment
        # by someone else; rolled back, so the file can simply be sent again.
        report.add(FILE_ROW, "", _("The organisation changed while importing; upload the file again."))
    else:
        return job
    return _job_failed(actor=actor, organisation=organisation, file_name=file_name, rows_total=len(rows), report=report)


def _job_failed(
    *, actor: User, organisation: Organisation, file_name: str, rows_total: int, report: ErrorReport
) -> ImportJob:
    job = ImportJob.objects.create(
        organisation=organisation,
        created_by=actor,
        file_name=file_name,
        status=ImportJob.Status.FAILED,
        rows_total=rows_total,
        rows_imported=0,
        errors=report.ordered(),
    )
    audit_record(
        actor=actor,
        action="import.failed",
        target=job,
        organisation_id=organisation.pk,
        changes={"file": file_name, "errors": len(report.errors)},
    )
    return job


# --- Reading the file -----------------------------------------------------------------------------------------


def _read_table(uploaded_file: IO[bytes]) -> list[tuple[int, list[str]]]:
    """The non-empty rows of the file as (row number, cells), header first."""
    limit = settings.IMPORT_MAX_FILE_SIZE
    too_big = FileRefused(
        _("The file is larger than %(size)d MB.") % {"size": max(1, limit // (1024 * 1024))}
        if limit >= 1024 * 1024
        else _("The file is larger than %(size)d bytes.") % {"size": limit}
    )
    size = getattr(uploaded_file, "size", None)
    if isinstance(size, int) and size > limit:
        raise too_big
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(limit + 1)
    if len(data) > limit:
        raise too_big
    if not data.strip():
        raise FileRefused(_("The file is empty."))
    if data.startswith(XLSX_SIGNATURE):
        records: Iterable[list[str]] = _xlsx_records(data)
    else:
        records = _csv_records(data)
    table: list[tuple[int, list[str]]] = []
    for number, cells in enumerate(records, start=1):
        if not any(cells):
            continue
        table.append((number, cells))
        # The header plus at most MAX_ROWS rows; stop reading at the first extra one.
        if len(table) > MAX_ROWS + 1:
            raise FileRefused(_("The file has more than %(count)d rows; split it into parts.") % {"count": MAX_ROWS})
    return table


def _not_a_table() -> FileRefused:
    return FileRefused(_("This is not a CSV or XLSX file. Save the table as CSV (UTF-8) or as an Excel workbook."))


def _xlsx_records(data: bytes) -> Iterator[list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _not_a_table() from None
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise _not_a_table()
    if unpacked > XLSX_MAX_UNPACKED_SIZE:
        raise FileRefused(_("The workbook is too large when unpacked."))
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        # openpyxl raises many kinds of errors on a broken workbook; to the
        # person uploading it they all mean the same.
        raise FileRefused(_("The Excel workbook cannot be read; save it again and retry.")) from None
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]
    except Exception:
        raise FileRefused(_("The Excel workbook cannot be read; save it again and retry.")) from None
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _csv_records(data: bytes) -> Iterator[list[str]]:
    if b"\x00" in data:
        raise _not_a_table()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on a Russian Windows saves "CSV" in Windows-1251.
        try:
            text = data.decode("cp1251")
        except UnicodeDecodeError:
            raise _not_a_table() from None
    if any(unicodedata.category(character) == "Cc" and character not in "\t\r\n" for character in text):
        raise _not_a_table()
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = _csv_delimiter(first_line)
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            yield [cell.strip() for cell in record]
    except csv.Error:
        raise _not_a_table() from None


def _csv_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=";,\t").delimiter
    except csv.Error:
        counts = {delimiter: header_line.count(delimiter) for delimiter in ";,\t"}
        return max(counts, key=lambda delimiter: counts[delimiter])


# --- Validation -----------------------------------------------------------------------------------------------


def _normalised(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return _SPACES.sub(" ", text.replace("_", " ").replace("-", " ")).strip()


def _header_key(cell: str) -> str | None:
    text = _normalised(_PARENTHESES.sub("", cell).replace(".", " ")).strip(" *:")
    for column in COLUMNS:
        if text == column.key.replace("_", " ") or text in column.aliases:
            return column.key
    return None


def _header_map(header: list[str], *, row: int) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _header_key(cell)
        if key is None:
            # Extra columns ("№", notes) are common in school lists; they are ignored.
            continue
        if key in positions:
            raise FileRefused(
                _("Two columns mean the same: “%(first)s” and “%(second)s”.")
                % {"first": header[positions[key]], "second": cell},
                row=row,
                column=key,
            )
        positions[key] = index
    for key in REQUIRED_COLUMNS:
        if key not in positions:
            raise FileRefused(_("The column is missing from the header row."), row=row, column=key)
    return positions


def _academic_year(raw: str) -> int | None:
    match = _YEAR.match(raw.strip())
    if match is None:
        return None
    year = int(match.group(1))
    second = match.group(2)
    if second is not None and int(second) % 100 != (year + 1) % 100:
        return None
    if not 2000 <= year <= 2100:
        return None
    return year


def _rows_validated(
    table: list[tuple[int, list[str]]], *, organisation: Organisation, report: ErrorReport
) -> list[ImportRow]:
    if not table:
        raise FileRefused(_("The file is empty."))
    header_number, header = table[0]
    positions = _header_map(header, row=header_number)
    if len(table) == 1:
        raise FileRefused(_("The file has a header but no rows to import."))
    name_limit = User._meta.get_field("last_name").max_length or 80
    group_limit = StudyGroup._meta.get_field("name").max_length or 40
    default_year = selectors.current_academic_year()
    rows: list[ImportRow] = []
    for number, cells in table[1:]:

        def cell(key: str, cells: list[str] = cells) -> str:
            index = positions.get(key)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        row = ImportRow(number=number)
        raw_role = cell("role")
        row.role = ROLE_ALIASES.get(_normalised(raw_role), "")
        if not raw_role:
            report.add(number, "role", _("The role is missing."))
        elif not row.role:
            report.add(
                number,
                "role",
                _("Unknown role “%(role)s”: use student, teacher, parent, staff or administrator.")
                % {"role": raw_role[:40]},
            )
        for key in ("last_name", "first_name", "middle_name"):
            value = name_clean(cell(key))
            setattr(row, key, value)
            if key != "middle_name" and not value:
                report.add(number, key, _("The name is missing."))
            elif len(value) > name_limit:
                report.add(number, key, _("At most %(limit)d characters.") % {"limit": name_limit})
        raw_phone = cell("phone")
        if not raw_phone:
            report.add(number, "phone", _("The phone number is missing."))
        else:
            try:
                row.phone = phone_normalise(raw_phone)
            except ApplicationError:
                report.add(number, "phone", _("“%(phone)s” is not a valid phone number.") % {"phone": raw_phone[:40]})
        row.group_name = _SPACES.sub("", unicodedata.normalize("NFKC", cell("class"))).upper()
        if len(row.group_name) > group_limit:
            report.add(number, "class", _("At most %(limit)d characters.") % {"limit": group_limit})
        elif row.role == Role.STUDENT and not row.group_name:
            report.add(number, "class", _("A student needs a class."))
        raw_year = cell("academic_year")
        year = _academic_year(raw_year) if raw_year else default_year
        if year is None:
            report.add(number, "academic_year", _("Write the year the academic year starts, e.g. 2025 or 2025/26."))
        row.academic_year = year or default_year
        raw_homeroom = _normalised(cell("homeroom"))
        if raw_homeroom in YES_VALUES:
            row.is_homeroom = True
        elif raw_homeroom not in NO_VALUES:
            report.add(number, "homeroom", _("Write “yes” (да) or leave it empty."))
        if row.is_homeroom and row.role and row.role != Role.TEACHER:
            report.add(number, "homeroom", _("Only a teacher can be a homeroom teacher."))
        elif row.is_homeroom and row.role == Role.TEACHER and not row.group_name:
            report.add(number, "class", _("A homeroom teacher needs a class."))
        raw_student_phone = cell("student_phone")
        if row.role == Role.PARENT:
            if not raw_student_phone:
                report.add(number, "student_phone", _("A parent needs the phone number of their child."))
            else:
                try:
                    row.student_phone = phone_normalise(raw_student_phone)
                except ApplicationError:
                    report.add(
                        number,
                        "student_phone",
                        _("“%(phone)s” is not a valid phone number.") % {"phone": raw_student_phone[:40]},
                    )
            if row.student_phone and row.student_phone == row.phone:
                report.add(number, "student_phone", _("A parent cannot be their own child."))
        rows.append(row)
    _rows_cross_checked(rows, organisation=organisation, report=report)
    return rows


def _name_key(row: ImportRow) -> tuple[str, str, str]:
    return (_normalised(row.last_name), _normalised(row.first_name), _normalised(row.middle_name))


def _rows_cross_checked(rows: list[ImportRow], *, organisation: Organisation, report: ErrorReport) -> None:
    """The checks that need the whole file: one person per phone, one
    homeroom teacher per class, every parent's child known."""
    first_by_phone: dict[str, ImportRow] = {}
    for row in rows:
        if not row.phone:
            continue
        first = first_by_phone.setdefault(row.phone, row)
        if first is not row and _name_key(first) != _name_key(row):
            report.add(
                row.number,
                "phone",
                _("This phone number is already in row %(row)d with another name.") % {"row": first.number},
            )
    homeroom_by_group: dict[tuple[str, int], ImportRow] = {}
    for row in rows:
        if row.role != Role.TEACHER or not row.is_homeroom or not row.group_name:
            continue
        first = homeroom_by_group.setdefault((row.group_name, row.academic_year), row)
        if first is not row and first.phone != row.phone:
            report.add(
                row.number,
                "homeroom",
                _("The class already has a homeroom teacher in row %(row)d.") % {"row": first.number},
            )
    student_phones_in_file = {row.phone for row in rows if row.role == Role.STUDENT and row.phone}
    wanted = {
        row.student_phone for row in rows if row.student_phone and row.student_phone not in student_phones_in_file
    }
    known: set[str] = set()
    if wanted:
        known = {
            user.phone.as_e164
            for user in User.objects.filter(
                phone__in=wanted,
                pk__in=Membership.objects.active()
                .filter(organisation=organisation, role=Role.STUDENT)
                .values("user_id"),
            )
        }
    for row in rows:
        if row.student_phone and row.student_phone not in student_phones_in_file and row.student_phone not in known:
            report.add(
                row.number,
                "student_phone",
                _("No student with this phone number, neither in the file nor in the organisation."),
            )


# --- Import ---------------------------------------------------------------------------------------------------


class _RowFailed(Exception):
    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message


def _rows_import(*, actor: User, organisation: Organisation, file_name: str, rows: list[ImportRow]) -> ImportJob:
    users = _users_for_rows(actor=actor, organisation=organisation, rows=rows)
    homeroom: dict[tuple[str, int], User] = {
        (row.group_name, row.academic_year): users[row.phone]
        for row in rows
        if row.role == Role.TEACHER and row.is_homeroom and row.group_name
    }
    group_keys = sorted(
        {
            (row.group_name, row.academic_year)
            for row in rows
            if row.group_name and row.role in (Role.STUDENT, Role.TEACHER)
        }
    )
    groups: dict[tuple[str, int], StudyGroup] = {}
    for name, year in group_keys:
        groups[(name, year)] = services.study_group_create(
            actor=actor,
            organisation=organisation,
            name=name,
            academic_year=year,
            homeroom_teacher=homeroom.get((name, year)),
        )
    students_by_phone = {row.phone: users[row.phone] for row in rows if row.role == Role.STUDENT}
    for role in ROLE_ORDER:
        for row in (row for row in rows if row.role == role):
            try:
                _row_import(
                    actor=actor,
                    organisation=organisation,
                    row=row,
                    user=users[row.phone],
                    groups=groups,
                    students_by_phone=students_by_phone,
                )
            except ApplicationError as error:
                raise _RowFailed(row.number, error.message) from error
    job = ImportJob.objects.create(
        organisation=organisation,
        created_by=actor,
        file_name=file_name,
        status=ImportJob.Status.DONE,
        rows_total=len(rows),
        rows_imported=len(rows),
        errors=[],
    )
    audit_record(
        actor=actor,
        action="import.done",
        target=job,
        organisation_id=organisation.pk,
        changes={"file": file_name, "rows": len(rows), "classes": len(groups)},
    )
    return job


def _row_import(
    *,
    actor: User,
    organisation: Organisation,
    row: ImportRow,
    user: User,
    groups: dict[tuple[str, int], StudyGroup],
    students_by_phone: dict[str, User],
) -> None:
    group = groups.get((row.group_name, row.academic_year))
    if row.role == Role.STUDENT and group is not None:
        services.study_group_student_add(actor=actor, group=group, student=user)
    elif row.role == Role.TEACHER and group is not None:
        services.study_group_teacher_add(actor=actor, group=group, teacher=user)
    elif row.role == Role.PARENT:
        student = students_by_phone.get(row.student_phone) or User.objects.get(phone=row.student_phone)
        services.guardianship_link(actor=actor, parent=user, student=student, organisation=organisation)
    else:
        services.membership_create(actor=actor, user=user, organisation=organisation, role=row.role)


def _users_for_rows(*, actor: User, organisation: Organisation, rows: list[ImportRow]) -> dict[str, User]:
    first_by_phone: dict[str, ImportRow] = {}
    for row in rows:
        first_by_phone.setdefault(row.phone, row)
    existing = {user.phone.as_e164: user for user in User.objects.filter(phone__in=list(first_by_phone))}
    users: dict[str, User] = {}
    named_skeletons: set[str] = set()
    for phone, row in first_by_phone.items():
        user, is_named = _user_ensure(
            actor=actor,
            organisation=organisation,
            phone=phone,
            names=_names(last_name=row.last_name, first_name=row.first_name, middle_name=row.middle_name),
            user=existing.get(phone),
        )
        users[phone] = user
        if is_named:
            named_skeletons.add(user.name_skeleton)
    # A new name can only imitate a verified educator's: refresh the flags
    # of those skeletons alone instead of one refresh per person.
    imitated = (
        User.objects.filter(is_verified_educator=True, name_skeleton__in=named_skeletons)
        .values_list("name_skeleton", flat=True)
        .distinct()
    )
    for skeleton in imitated:
        name_flags_refresh(skeleton=skeleton)
    return users


def _names(*, last_name: str, first_name: str, middle_name: str) -> dict[str, str]:
    return {
        "last_name": name_clean(last_name),
        "first_name": name_clean(first_name),
        "middle_name": name_clean(middle_name),
    }


def user_get_or_create(
    *,
    actor: User | None,
    organisation: Organisation,
    phone: str,
    last_name: str,
    first_name: str,
    middle_name: str = "",
) -> User:
    """The account of a phone number (E.164), created with the given names
    when there is none. An existing account keeps its own name unless it
    has none yet: the profile belongs to its owner. Audited when created or
    named; refreshes the look-alike flags of the name."""
    names = _names(last_name=last_name, first_name=first_name, middle_name=middle_name)
    user = User.objects.filter(phone=phone).first()
    if user is None:
        try:
            with transaction.atomic():
                user, is_named = _user_ensure(
                    actor=actor, organisation=organisation, phone=phone, names=names, user=None
                )
        except IntegrityError:
            # Created at the same moment by someone else (a sign-in, another admin).
            user = User.objects.get(phone=phone)
            user, is_named = _user_ensure(actor=actor, organisation=organisation, phone=phone, names=names, user=user)
    else:
        user, is_named = _user_ensure(actor=actor, organisation=organisation, phone=phone, names=names, user=user)
    if is_named:
        name_flags_refresh(skeleton=user.name_skeleton)
        user.refresh_from_db(fields=["is_name_flagged"])
    return user


def _user_ensure(
    *, actor: User | None, organisation: Organisation, phone: str, names: dict[str, str], user: User | None
) -> tuple[User, bool]:
    """The account, created or given its first name; True when it got a name now."""
    if user is None:
        user = User.objects.create_user(phone, **names)
        audit_record(actor=actor, action="user.create", target=user, organisation_id=organisation.pk)
        return user, True
    if user.first_name or user.last_name:
        return user, False
    old = {name: getattr(user, name) for name in names}
    for name, value in names.items():
        setattr(user, name, value)
    user.save(update_fields=list(names))
    audit_record(
        actor=actor,
        action="user.name",
        target=user,
        organisation_id=organisation.pk,
        changes={name: [old[name], value] for name, value in names.items() if old[name] != value},
    )
    return user, True
