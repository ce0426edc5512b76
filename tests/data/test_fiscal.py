"""Fiscal years and periods: frequencies, odd year starts, derived years, validation."""
from datetime import date

from sqlalchemy import select

from app.services import fiscal_years
from app.models import FiscalYear, Period


def test_monthly_quarterly_and_yearly_periods_of_a_calendar_year():
    ends = {
        frequency: [end for _, end in fiscal_years.period_bounds(date(2024, 1, 1), date(2024, 12, 31), frequency)]
        for frequency in ("month", "quarter", "year")
    }
    assert len(ends["month"]) == 12 and ends["month"][1] == date(2024, 2, 29) and ends["month"][-1] == date(2024, 12, 31)
    assert ends["quarter"] == [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30), date(2024, 12, 31)]
    assert ends["year"] == [date(2024, 12, 31)]


def test_periods_of_a_year_ending_in_june_follow_its_end():
    bounds = fiscal_years.period_bounds(date(2023, 7, 1), date(2024, 6, 30), "quarter")
    assert bounds == [
        (date(2023, 7, 1), date(2023, 9, 30)), (date(2023, 10, 1), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 6, 30)),
    ]


def test_an_incomplete_first_period_is_merged_into_the_next():
    # A company incorporated on 15 March closing its first (short) year on 31 December.
    monthly = fiscal_years.period_bounds(date(2024, 3, 15), date(2024, 12, 31), "month")
    assert monthly[0] == (date(2024, 3, 15), date(2024, 4, 30))
    assert len(monthly) == 9  # 15 March – 30 April, then May to December
    quarterly = fiscal_years.period_bounds(date(2024, 3, 15), date(2024, 12, 31), "quarter")
    assert quarterly == [
        (date(2024, 3, 15), date(2024, 6, 30)), (date(2024, 7, 1), date(2024, 9, 30)),
        (date(2024, 10, 1), date(2024, 12, 31)),
    ]
    # periods cover the year without gaps or overlaps
    for (_, end), (start, _) in zip(monthly, monthly[1:]):
        assert (start - end).days == 1


def test_a_year_ending_mid_month_steps_back_by_months():
    bounds = fiscal_years.period_bounds(date(2023, 6, 16), date(2024, 6, 15), "month")
    assert bounds[0] == (date(2023, 6, 16), date(2023, 7, 15))
    assert bounds[-1] == (date(2024, 5, 16), date(2024, 6, 15))
    assert len(bounds) == 12


def test_derived_years_follow_the_first_fiscal_year_end(db, dossier):
    dossier.first_fiscal_year_end = date(2023, 3, 31)
    dossier.frequency = "quarter"
    year = fiscal_years.ensure_year_for(db.session, dossier, date(2024, 8, 9))
    assert (year.start, year.end) == (date(2024, 4, 1), date(2025, 3, 31))
    assert fiscal_years.ensure_periods(db.session, dossier) == 4
    db.session.commit()
    period = fiscal_years.period_for(dossier.id, date(2024, 8, 9))
    assert (period.start, period.end) == (date(2024, 7, 1), date(2024, 9, 30))
    assert fiscal_years.period_for(dossier.id, date(2030, 1, 1)) is None


def test_derived_years_are_calendar_years_by_default(db, dossier):
    year = fiscal_years.ensure_year_for(db.session, dossier, date(2024, 11, 2))
    assert (year.start, year.end, year.origin) == (date(2024, 1, 1), date(2024, 12, 31), "sync")
    assert fiscal_years.ensure_year_for(db.session, dossier, date(2024, 2, 2)).id == year.id
    db.session.refresh(dossier)
    assert dossier.first_fiscal_year_end == date(2024, 12, 31)


def test_a_derived_year_is_clipped_between_its_neighbours(db, dossier):
    db.session.add(FiscalYear(dossier_id=dossier.id, start=date(2023, 1, 1), end=date(2023, 12, 31), origin="manual"))
    db.session.add(FiscalYear(dossier_id=dossier.id, start=date(2024, 3, 1), end=date(2025, 2, 28), origin="support"))
    db.session.flush()
    year = fiscal_years.ensure_year_for(db.session, dossier, date(2024, 2, 10), origin="manual")
    assert (year.start, year.end, year.origin) == (date(2024, 1, 1), date(2024, 2, 29), "manual")


def test_a_frequency_change_re_lays_empty_periods_and_spares_locked_years(db, dossier, calendar_years):
    calendar_years(dossier, 2023, 2024, locked=(2023,))
    fiscal_years.ensure_periods(db.session, dossier)
    db.session.commit()
    dossier.frequency = "quarter"
    fiscal_years.ensure_periods(db.session, dossier)
    db.session.commit()
    ends = db.session.scalars(select(Period.end).where(Period.dossier_id == dossier.id).order_by(Period.end)).all()
    assert len([e for e in ends if e.year == 2023]) == 12  # the locked year keeps its monthly periods
    assert [e for e in ends if e.year == 2024] == [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30), date(2024, 12, 31)]


def test_fiscal_year_validation(db, dossier, calendar_years):
    calendar_years(dossier, 2023)
    assert fiscal_years.fiscal_year_errors(dossier.id, date(2024, 1, 1), date(2024, 12, 31)) == []
    assert fiscal_years.fiscal_year_errors(dossier.id, date(2024, 1, 1), date(2024, 1, 1)) == [
        "The fiscal year must end after it starts."
    ]
    assert fiscal_years.fiscal_year_errors(dossier.id, date(2024, 1, 1), date(2025, 12, 31)) == [
        "A fiscal year must be shorter than two years."
    ]
    # an 18-month first year is fine
    assert fiscal_years.fiscal_year_errors(dossier.id, date(2024, 1, 1), date(2025, 6, 30)) == []
    overlap = fiscal_years.fiscal_year_errors(dossier.id, date(2023, 7, 1), date(2024, 6, 30))
    assert overlap == ["It overlaps the fiscal year 2023-01-01 – 2023-12-31."]
    year = db.session.scalar(select(FiscalYear))
    assert fiscal_years.fiscal_year_errors(dossier.id, date(2023, 1, 1), date(2023, 12, 31), exclude_id=year.id) == []
