"""Tell whether the inbox lies on a network share, from /proc/mounts, and pick the watch mode."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

from docproc.settings import WatcherSettings

# The watcher's logger: the choice is part of what it says when it starts watching.
log = logging.getLogger("docproc.watcher")

WatchMode = Literal["events", "polling"]

NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.smbnetfs", "sshfs", "fuse.sshfs",
    "9p", "virtiofs", "vboxsf", "vmhgfs", "fuse.vmhgfs-fuse", "prl_fs", "afs", "openafs", "coda",
    "ncpfs", "ceph", "fuse.ceph", "fuse.ceph-fuse", "glusterfs", "fuse.glusterfs", "lustre",
    "gpfs", "beegfs", "orangefs", "pvfs2", "gfs2", "ocfs2", "davfs", "fuse.davfs2", "fuse.rclone",
    "fuse.s3fs", "fuse.gcsfuse", "fuse.goofys", "fuse.juicefs", "fuse.mfs", "fuse.moosefs",
    "fuse.lizardfs", "fuse.curlftpfs", "fuse.ftpfs",
})


def _unescape_mount(field_text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field_text)


def _is_network_fstype(fstype: str) -> bool:
    return fstype in NETWORK_FILESYSTEMS or (fstype.startswith(("nfs", "smb")) and fstype != "nfsd")


def network_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """Return the fstype of the network filesystem holding path, or None for a local one."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None
    target = os.fspath(Path(path).resolve())
    best_len, best_type = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point, fstype = _unescape_mount(fields[1]), fields[2]
        prefix = mount_point.rstrip("/") + "/"
        inside = target == mount_point or (target + "/").startswith(prefix)
        # ">=": a later line for the same mount point is a mount on top of the earlier one.
        if inside and len(mount_point) >= best_len:
            best_len, best_type = len(mount_point), fstype
    if best_type is not None and _is_network_fstype(best_type):
        return best_type
    return None


def choose_mode(settings: WatcherSettings, inbox: Path) -> WatchMode:
    """Return the watch mode to use: the configured one, or polling on a network share."""
    if settings.mode != "auto":
        return settings.mode
    fstype = network_filesystem(inbox)
    if fstype is not None:
        log.info("inbox %s is on a network filesystem (%s): polling it", inbox, fstype)
        return "polling"
    return "events"
