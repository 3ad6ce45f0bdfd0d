"""Whether the inbox is on a network share, from /proc/mounts, and the watch mode chosen for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from docproc.inbox.mounts import choose_mode, network_filesystem
from docproc.settings import WatcherSettings

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw,lowerdir=/x 0 0
filer:/export/scans /mnt/scans nfs4 rw,vers=4.2,addr=10.0.0.5 0 0
//nas/dept /mnt/dept cifs rw,vers=3.0 0 0
/dev/sdb1 /mnt/dept/local ext4 rw 0 0
user@host:/data /mnt/ssh fuse.sshfs rw,nosuid,nodev 0 0
//nas/with\\040space /mnt/with\\040space cifs rw 0 0
/dev/sdc1 /mnt/overmounted cifs rw 0 0
/dev/sdd1 /mnt/overmounted ext4 rw 0 0
"""


@pytest.mark.parametrize(("path", "fstype"), [
    ("/mnt/scans/inbox", "nfs4"),
    ("/mnt/scans", "nfs4"),
    ("/mnt/scansX/inbox", None),
    ("/mnt/dept/inbox", "cifs"),
    ("/mnt/dept/local/inbox", None),
    ("/mnt/ssh/in", "fuse.sshfs"),
    ("/mnt/with space/in", "cifs"),
    ("/mnt/overmounted/in", None),
    ("/var/lib/docker/overlay2/abc/merged/inbox", None),
    ("/home/user/inbox", None),
])
def test_network_filesystem_from_mounts_text(path: str, fstype: str | None) -> None:
    assert network_filesystem(Path(path), MOUNTS) == fstype


def test_network_filesystem_reads_proc_mounts_for_a_local_folder(tmp_path: Path) -> None:
    assert network_filesystem(tmp_path) is None


def test_choose_mode(tmp_path: Path) -> None:
    assert choose_mode(WatcherSettings(mode="polling"), tmp_path) == "polling"
    assert choose_mode(WatcherSettings(mode="events"), tmp_path) == "events"
    assert choose_mode(WatcherSettings(mode="auto"), tmp_path) == "events"
