"""The list of console screens, in menu order."""
SCREENS = []
