"""Every setting read from the environment is in the README's configuration table, and the other way round."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = re.compile(r'(?:environ\.get|env_bool|env_int|env_list)\(\s*"([A-Z][A-Z0-9_]+)"')
APPS = ("console", "alerts", "tickets", "mitigations", "traffic", "reports")


def _read_by_the_console() -> set[str]:
    """Variables the console's own code reads (settings, the Celery app, management commands)."""
    names: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                names |= set(READ.findall(path.read_text()))
    return names


def _configuration_section() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    return section[: section.index("\n## ", 5)]


def test_every_environment_setting_is_documented():
    read = _read_by_the_console()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", _configuration_section()))
    assert not sorted(read - documented), "settings read but not in the README's table"


def test_the_table_lists_no_setting_that_does_not_exist():
    read = _read_by_the_console()
    rows = [line for line in _configuration_section().splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    assert not sorted(named - read), "README rows for settings the console never reads"
