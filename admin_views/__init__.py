"""The Flask-Admin console. :func:`init_admin` builds it inside the application factory."""
from pathlib import Path

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l
from jinja2 import ChoiceLoader, FileSystemLoader

from admin_views.dashboard import DashboardView

TEMPLATES = Path(__file__).parent / "templates"


def init_admin(app):
    """Create the console at ``/admin`` and register every screen under its menu category
    (see :data:`admin_views.screens.MENU`)."""
    from admin_views.screens import MENU
    from app.web_security import csp_nonce

    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES)), app.jinja_loader])
    admin = Admin(
        app,
        name="Firmsync",
        url="/admin",
        index_view=DashboardView(name=_l("Dashboard"), url="/admin", template="admin/firmsync_index.html"),
        theme=Bootstrap4Theme(swatch=app.config.get("FLASK_ADMIN_SWATCH", "cerulean"), base_template="admin/firmsync_base.html"),
        csp_nonce_generator=csp_nonce,  # Flask-Admin's inline scripts carry the request's nonce
    )
    for category, screens in MENU:
        for screen in screens:
            view = screen()
            view.category = category  # read by add_view: the screen's dropdown in the menu
            admin.add_view(view)
    app.extensions["firmsync.admin"] = admin
    return admin
