"""Recording: the room's already-encoded mix written to Ogg Opus as it is produced, and clips cut from it.

`ogg` writes and reads the container (RFC 7845) a page at a time; `recorder`
is the room's side (a spool file, the timeline kept true); `services` turns a
spool into a `Recording` in Django's storage, cuts clips, and lets files expire.
"""
