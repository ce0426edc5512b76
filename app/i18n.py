"""Languages: English, French and Dutch, chosen per user (then the browser)."""
from flask import current_app, request
from flask_babel import Babel
from flask_login import current_user

babel = Babel()


def select_locale():
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale:
        return current_user.locale
    return request.accept_languages.best_match(current_app.config["LANGUAGES"]) or "en"


def init_app(app):
    babel.init_app(app, locale_selector=select_locale)
