"""Live captions: each speaker's audio, recognised in a process of its own.

The media worker hands every unmuted speaker's decoded audio, 16 kHz mono,
to its captions process (`feed.CaptionsFeed`, which starts `python -m
media.captions.child`) and never waits on it; the child runs one recognition
stream per speaker with the configured engine (`engines`) and sends back
partial and final lines, which the worker relays to the sockets that turned
captions on and stores as the transcript. docs/captions.md has the picture.
"""
