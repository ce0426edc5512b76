"""What setting up (or switching) a sync will keep and replace, computed before anything is written.

:func:`preview` reads the database the way :func:`app.services.fiscal_years.delete_bookkeeping`
will delete: for a scenario with a transfer date (keep, switch) the periods ending on or after
it; for replace and re-establish every period; locked fiscal years never. A period *holds
data* when it has a balance or a ledger line; its data is *uploaded* when one of them has no
origin link (a manual upload or an audit file) and *synced* otherwise. The console shows the
preview's sentences before the set-up and asks for an explicit confirmation when uploaded
figures would be replaced (:attr:`SetupPreview.needs_confirmation`); the set-up service writes
:meth:`SetupPreview.audit_counts` into its audit event. The API may use the same function.

After the set-up run, :func:`uploads_left_empty` names the replaced uploaded periods the
package had no figures for, so the Sync tab can say so.
"""
from dataclasses import dataclass, field
from datetime import date

from flask_babel import format_date, gettext, ngettext
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AuditEvent, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance, RunStatus, Scenario, SyncRun,
)

#: the scenarios whose set-up deletes from a transfer date; the others (replace, re-establish) delete all
FROM_TRANSFER_DATE = (Scenario.KEEP, Scenario.SWITCH)
#: the audit actions whose events carry a preview's counts (:func:`uploads_left_empty` reads them)
SETUP_ACTIONS = ("sync.setup", "sync.switch", "sync.re_establish")


@dataclass(frozen=True)
class PeriodSpan:
    """One dossier period: its first and last day."""

    start: date
    end: date


@dataclass
class SetupPreview:
    """What a set-up will keep and replace (periods oldest first, and row counts)."""

    scenario: str
    transfer_date: date | None
    #: periods holding uploaded figures that the set-up deletes (the package's figures replace them)
    uploaded_replaced: list = field(default_factory=list)
    #: periods holding only synced figures that the set-up deletes
    synced_replaced: list = field(default_factory=list)
    #: periods holding data that the set-up keeps (before the transfer date, or in a locked year)
    kept: list = field(default_factory=list)
    ledger_lines: int = 0
    balances: int = 0
    opening_balances: int = 0

    @property
    def replaces_anything(self):
        """Does the set-up delete any figure?"""
        return bool(self.uploaded_replaced or self.synced_replaced or self.opening_balances)

    @property
    def needs_confirmation(self):
        """Uploaded figures would be replaced: the user must confirm explicitly."""
        return bool(self.uploaded_replaced)

    def audit_counts(self):
        """The counts the set-up's audit event keeps (JSON-ready)."""
        return {
            "periods_kept": len(self.kept),
            "periods_replaced": len(self.uploaded_replaced) + len(self.synced_replaced),
            "uploaded_periods_replaced": [[p.start.isoformat(), p.end.isoformat()] for p in self.uploaded_replaced],
            "ledger_lines_replaced": self.ledger_lines,
            "balances_replaced": self.balances,
            "opening_balances_replaced": self.opening_balances,
        }

    def sentences(self):
        """The preview in plain sentences, in the user's language (needs an app context)."""
        out = []
        if self.uploaded_replaced:
            out.append(ngettext(
                "Replaces %(num)d uploaded period, %(span)s, with the package's figures; the package may have "
                "none for it yet.",
                "Replaces %(num)d uploaded periods, %(span)s, with the package's figures; the package may have "
                "none for them yet.", len(self.uploaded_replaced), span=span_text(self.uploaded_replaced)))
        if self.synced_replaced:
            out.append(ngettext(
                "Replaces %(num)d synced period, %(span)s, with the new link's figures.",
                "Replaces %(num)d synced periods, %(span)s, with the new link's figures.",
                len(self.synced_replaced), span=span_text(self.synced_replaced)))
        if self.kept and self.transfer_date is not None:
            out.append(ngettext("Keeps %(num)d period before %(day)s.", "Keeps %(num)d periods before %(day)s.",
                                len(self.kept), day=format_date(self.transfer_date, "long")))
        elif self.kept:
            out.append(ngettext("Keeps %(num)d period of a locked fiscal year.",
                                "Keeps %(num)d periods of locked fiscal years.", len(self.kept)))
        if self.replaces_anything:
            out.append(gettext(
                "Deleted now: %(lines)s ledger lines, %(balances)s balances and %(openings)s opening balances; "
                "the set-up run then brings the package's.",
                lines=self.ledger_lines, balances=self.balances, openings=self.opening_balances))
        else:
            out.append(gettext("Nothing is replaced: this file holds no figures the set-up would delete."))
        return out


def preview(dossier, scenario, transfer_date=None):
    """What setting up ``scenario`` (from ``transfer_date`` for keep and switch) would keep and
    replace in ``dossier``; reads only. The caller checks the actor's rights on the dossier."""
    from_date = transfer_date if scenario in FROM_TRANSFER_DATE else None
    periods = db.session.execute(
        select(Period.id, Period.start, Period.end, FiscalYear.locked)
        .join(FiscalYear, Period.fiscal_year_id == FiscalYear.id)
        .where(Period.dossier_id == dossier.id).order_by(Period.start)
    ).all()
    uploaded, synced = _periods_with_data(dossier.id)
    result = SetupPreview(scenario=scenario, transfer_date=from_date)
    replaced_ids = []
    for row in periods:
        if row.id not in uploaded and row.id not in synced:
            continue
        span = PeriodSpan(row.start, row.end)
        if row.locked or (from_date is not None and row.end < from_date):
            result.kept.append(span)
            continue
        replaced_ids.append(row.id)
        (result.uploaded_replaced if row.id in uploaded else result.synced_replaced).append(span)
    if replaced_ids:
        result.ledger_lines = db.session.scalar(select(func.count()).select_from(LedgerLine).where(
            LedgerLine.dossier_id == dossier.id, LedgerLine.period_id.in_(replaced_ids)))
        result.balances = db.session.scalar(select(func.count()).select_from(PeriodBalance).where(
            PeriodBalance.dossier_id == dossier.id, PeriodBalance.period_id.in_(replaced_ids)))
    result.opening_balances = _openings_deleted(dossier.id, from_date)
    return result


def uploads_left_empty(link):
    """The uploaded periods the set-up of ``link`` replaced and that still hold no figure after its
    first successful run ([]: none, or the run has not succeeded yet)."""
    if link is None:
        return []
    succeeded = db.session.scalar(select(SyncRun.id).where(
        SyncRun.link_id == link.id, SyncRun.status == RunStatus.SUCCEEDED).limit(1))
    if succeeded is None:
        return []
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.dossier_id == link.dossier_id, AuditEvent.object_type == "DossierLink",
        AuditEvent.object_id == str(link.id), AuditEvent.action.in_(SETUP_ACTIONS))
        .order_by(AuditEvent.id.desc())).first()
    replaced = ((event.changes or {}).get("preview") or {}).get("uploaded_periods_replaced") if event else None
    if not replaced:
        return []
    spans = [PeriodSpan(date.fromisoformat(start), date.fromisoformat(end)) for start, end in replaced]
    uploaded, synced = _periods_with_data(link.dossier_id)
    holding = uploaded | synced
    ends = {end: period_id for period_id, end in db.session.execute(
        select(Period.id, Period.end).where(Period.dossier_id == link.dossier_id,
                                            Period.end.in_([s.end for s in spans])))}
    return [span for span in spans if ends.get(span.end) not in holding]


def span_text(spans):
    """``Jan–Feb 2026`` (one year) or ``Nov 2025–Feb 2026``: the first to the last of ``spans``."""
    first, last = spans[0].start, spans[-1].end
    if (first.year, first.month) == (last.year, last.month):
        return format_date(last, "MMM yyyy")
    if first.year == last.year:
        return f"{format_date(first, 'MMM')}–{format_date(last, 'MMM yyyy')}"
    return f"{format_date(first, 'MMM yyyy')}–{format_date(last, 'MMM yyyy')}"


def _periods_with_data(dossier_id):
    """``(period ids holding uploaded data, period ids holding synced data)`` of the dossier."""
    uploaded, synced = set(), set()
    for table, origin in ((PeriodBalance, PeriodBalance.origin_link_id), (LedgerLine, LedgerLine.link_id)):
        for period_id, manual in db.session.execute(
                select(table.period_id, origin.is_(None)).where(table.dossier_id == dossier_id).distinct()):
            (uploaded if manual else synced).add(period_id)
    return uploaded, synced - uploaded


def _openings_deleted(dossier_id, from_date):
    """How many opening balances the set-up deletes (outside locked years)."""
    query = select(func.count()).select_from(OpeningBalance).where(OpeningBalance.dossier_id == dossier_id)
    if from_date is not None:
        query = query.where(OpeningBalance.date >= from_date)
    for start, end in db.session.execute(select(FiscalYear.start, FiscalYear.end).where(
            FiscalYear.dossier_id == dossier_id, FiscalYear.locked.is_(True))):
        query = query.where((OpeningBalance.date < start) | (OpeningBalance.date > end))
    return db.session.scalar(query)
