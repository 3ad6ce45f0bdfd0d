"""The inbox's side of a file's way: watchdog adapted, the inbox's presence, the spool."""
