"""What the package emulators share (ARCHITECTURE section 9): deterministic books
(:mod:`connectors.emulation.books`) and an OAuth2 provider (:mod:`connectors.emulation.oauth_server`).

Only the emulators (``connectors/<package>/emulator.py``) and the sandbox server use this
toolkit; like the emulators it may use Flask, which the connectors themselves never do.
"""
