"""Classify several accounts of a file at once (the Figures tab's "Classify several accounts").

Uploaded accounts have no kind, so the trial balance has one group and the result and
equity chart stays flat. The form on the file page's Figures tab lists the file's accounts
with their kind and the kind the country's standard chart suggests
(:func:`app.services.account_kinds.suggested_kind`); the user ticks several and chooses a
kind, or "the suggested kind". ``POST /admin/account-kinds/classify`` saves it through
:func:`app.services.account_kinds.classify_accounts` (audited). Who may upload into the file
may classify; anyone else gets 403, a file outside the actor's scope 404.
"""
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

from admin_views.base import SecureBaseView, row_id
from app.extensions import db
from app.models import Role
from app.services import account_kinds
from app.services.account_mapping import MappingError


class AccountKindsView(SecureBaseView):
    """The POST behind the Figures tab's "Classify several accounts" (hidden from the menu)."""

    permissions = {"list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL}}

    def __init__(self):
        super().__init__(name=_l("Classify accounts"), endpoint="account_kinds", url="/admin/account-kinds")

    def is_visible(self):
        return False

    @expose("/")
    def index(self):
        """No page of its own: the form lives on the file page's Figures tab (the Files list)."""
        return redirect(url_for("dossiers.index_view"))

    @expose("/classify", methods=["POST"])
    def classify(self):
        """Give the ticked accounts (``account``, several) of file ``id`` the chosen ``kind``
        (or each its suggested kind: ``kind=suggested``), then go back to the Figures tab
        (of fiscal year ``year`` when given). Bad input flashes why and changes nothing."""
        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"))
        if not account_kinds.may_classify(actor, dossier):
            abort(403)
        try:
            changed = account_kinds.classify_accounts(actor, dossier, request.form.getlist("account"),
                                                      request.form.get("kind") or "")
        except MappingError as error:
            db.session.rollback()
            flash(gettext("Nothing was changed:") + " " + str(error), "error")
        else:
            flash(ngettext("%(num)d account changed kind.", "%(num)d accounts changed kind.", changed), "success")
        year_id = row_id(request.form.get("year")) if request.form.get("year") else None
        return redirect(url_for("dossier.index", id=dossier.id, tab="figures",
                                **({"year": year_id} if year_id is not None else {})))


def classify_context(actor, dossier, accounts):
    """What the Figures tab's "Classify several accounts" form needs: ``kind_suggestions``
    (``{number: kind}``) and ``may_classify``; empty suggestions for a reader."""
    allowed = account_kinds.may_classify(actor, dossier)
    return {"may_classify": allowed,
            "kind_suggestions": account_kinds.suggestions(dossier, accounts) if allowed else {}}
