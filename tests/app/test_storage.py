"""Folders phoneapp must write to are checked at start-up: a refusal names the path, instead of logins answering
500 and webhooks being lost later, or a raw traceback."""
import subprocess
import sys

import pytest

from phoneapp import ConfigError, create_app
from tests.support.not_run import note_not_run
from tests.support.paths import ROOT


def environ_for(tmp_path, **extra):
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system: permission bits alone mean nothing to root, a read-only mount does."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        note_not_run("read-only instance folder test", "mounting a read-only file system needs root")
        pytest.skip(mounted.stderr.strip())
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_an_instance_path_that_cannot_be_made_is_refused_by_name(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=f"INSTANCE_PATH: {blocker}/instance cannot be written"):
        create_app({"TESTING": True}, environ={"INSTANCE_PATH": str(blocker / "instance")})


def test_a_read_only_instance_path_is_refused_by_name(read_only_folder):
    with pytest.raises(ConfigError, match=f"INSTANCE_PATH: {read_only_folder} cannot be written"):
        create_app({"TESTING": True}, environ={"INSTANCE_PATH": str(read_only_folder)})


def test_a_sqlite_file_in_a_folder_that_cannot_be_made_is_refused_by_name(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    database = blocker / "db" / "phoneapp.db"
    with pytest.raises(ConfigError, match=f"the SQLite database {database}'s folder"):
        create_app({"TESTING": True}, environ={"INSTANCE_PATH": str(tmp_path / "instance"),
                                               "DATABASE_URL": f"sqlite:///{database}"})


@pytest.mark.parametrize("entry_point", ["import app", "import wsgi", "import worker; worker.main(['--burst'])"])
def test_entry_points_say_which_folder_and_exit_without_a_traceback(tmp_path, entry_point):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-c", entry_point], cwd=tmp_path, capture_output=True, text=True,
                            env=environ_for(tmp_path, INSTANCE_PATH=str(blocker / "instance")), timeout=60)
    assert result.returncode == 1
    assert f"INSTANCE_PATH: {blocker}/instance cannot be written" in result.stderr
    assert "Traceback" not in result.stderr
