"""Media: the aiortc media worker and its signalling (issue: live audio)."""
