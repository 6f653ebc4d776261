"""End to end: the command run as its own process next to a running portal
(a real daphne on the same database), as an administrator runs it while
`make run` is up; a parent then reads the history through the portal."""

import datetime
import json
import os
import subprocess
import sys
import urllib.request

from accounts.tests.factories import make_token
from migration.tests.factories import School, dumps, message
from tests.live import ROOT, database_environment


def manage(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """manage.py as its own process, as an administrator runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_imports_next_to_a_running_portal_and_the_history_reads_in_order(live_daphne, tmp_path):
    school = School()
    messages = [
        message(2, from_id=102, text="Спасибо!"),
        message(1, from_id=101, text="Добрый вечер!"),
    ]
    path = tmp_path / "export.json"
    path.write_text(dumps(school.export(school.chat(messages=messages))), encoding="utf-8")
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        **database_environment(),
        "LEGACY_API_URL": "",
    }
    completed = manage(environment, "import_legacy_chats", str(path), "--report", str(tmp_path / "report.json"))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "1 migrated, 0 unchanged, 0 skipped of 1 conversations."
    [line] = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert (line["peer_id"], line["status"], line["reason"]) == (2000000001, "migrated", None)

    _user, token = make_token(user=school.parent)
    request = urllib.request.Request(
        f"{live_daphne.url}/api/v1/chats/{line['chat_id']}/messages/", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        history = json.loads(response.read())["messages"]
    assert [(item["seq"], item["body"]) for item in history[:2]] == [(1, "Добрый вечер!"), (2, "Спасибо!")]
    assert history[0]["created_at"] == datetime.datetime.fromtimestamp(messages[1]["date"], tz=datetime.UTC).isoformat()
    assert history[1]["author"]["id"] == school.parent.pk

    # Run again, as its own process: nothing changes.
    again = manage(environment, "import_legacy_chats", str(path), "--no-progress")
    assert again.stdout.strip() == "0 migrated, 1 unchanged, 0 skipped of 1 conversations."
