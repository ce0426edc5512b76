"""Keeping secrets out of logs and stored messages."""
import logging
import re

from connectors.scrubbing import MASK, SECRET_KEY_PATTERN, scrub_text, secret_values

__all__ = ["MASK", "SECRET_KEY_PATTERN", "scrub_text", "secret_values", "ScrubbingFilter", "install_log_filter",
           "ACCESS_LOGGERS"]

#: the loggers of the web servers' request lines (werkzeug for ``flask run``, gunicorn in production)
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")
#: a request target whose path passes an OAuth or grant callback: its whole query string is dropped
#: (codes, agreement grant tokens and states are secrets in the wrong hands, whatever their names)
#: the token of an invitation link, in its path or inside a login ``next``
_INVITATION_TOKEN = re.compile(r"(invitation(?:/|%2F))[\w-]{16,}", re.I)
_CALLBACK_QUERY = re.compile(r"(/(?:[^\s?\"]*/)?(?:oauth|callback)[^\s?\"]*)\?[^\s\"]*", re.I)


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs credential-shaped text from every record."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left as is
            return True
        scrubbed = scrub_text(_INVITATION_TOKEN.sub(r"\1***", _CALLBACK_QUERY.sub(r"\1?***", message)))
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


def install_log_filter(app):
    """Attach :class:`ScrubbingFilter` to the app's, the root and the web servers' access loggers
    (a logger's own filter sees every record it logs, whenever its handlers are added)."""
    log_filter = ScrubbingFilter()
    for logger in (app.logger, logging.getLogger(), *(logging.getLogger(name) for name in ACCESS_LOGGERS)):
        logger.addFilter(log_filter)
        for handler in logger.handlers:
            handler.addFilter(log_filter)
