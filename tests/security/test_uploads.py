"""Hostile and out-of-range uploads (issue #19, items 7 and 11): every one is refused with a
message, before it can take the memory or time it asks for, and nothing is written.

The hostile files are built here: a CSV streamed from a generator, workbooks whose sheet XML
declares a huge dimension, a million rows or a row of twenty thousand cells, and zips that
declare (or really hold) more unpacked bytes than an upload may have.
"""
import base64
import hashlib
import io
import itertools
import re
import struct
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from app.access import actor_for
from app.extensions import db
from app.models import Account, AuditEvent, Dossier, FiscalYear, LedgerLine, PeriodBalance, Role
from app.services.uploads import UploadRejected, import_ledger_lines, import_trial_balance
from tests.conftest import make_user
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_manual_import import count

SHEET_XML = "xl/worksheets/sheet1.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@pytest.fixture
def manual(db, firm):
    """A manual file with the fiscal year 2024, and its administrator (an actor)."""
    dossier = Dossier(firm=firm, name="Bakkerij Janssens", frequency="month", currency="EUR")
    db.session.add(dossier)
    db.session.flush()
    db.session.add(FiscalYear(dossier_id=dossier.id, start=date(2024, 1, 1), end=date(2024, 12, 31), origin="manual"))
    db.session.commit()
    return actor_for(make_user("admin@alpha.test", firm, Role.ADMIN), firm.id), dossier


def nothing_written():
    return (count(db, Account), count(db, PeriodBalance), count(db, LedgerLine), count(db, AuditEvent)) == (0, 0, 0, 0)


def refusal(call):
    """The errors of the UploadRejected that ``call()`` raises."""
    with pytest.raises(UploadRejected) as error:
        call()
    return error.value.errors


class GeneratedFile(io.RawIOBase):
    """A read-only binary file whose bytes come from ``lines`` as they are read; ``produced``
    counts the lines handed out so far."""

    def __init__(self, lines):
        self.lines, self.pending, self.produced = iter(lines), b"", 0

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self.pending:
            line = next(self.lines, None)
            if line is None:
                return 0
            self.pending, self.produced = line, self.produced + 1
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def workbook_bytes(rows):
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def with_sheet_xml(sheet_xml):
    """A real workbook (openpyxl's) whose first sheet's XML is replaced by ``sheet_xml``."""
    source = zipfile.ZipFile(io.BytesIO(workbook_bytes([["account", "amount"]])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = sheet_xml if member.filename == SHEET_XML else source.read(member)
            target.writestr(member.filename, data)
    return buffer.getvalue()


def sheet(dimension, rows_xml):
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/>'
            f"<sheetData>{rows_xml}</sheetData></worksheet>").encode()


HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>account</t></is></c><c r="B1" t="inlineStr"><is><t>amount' \
             "</t></is></c></row>"


# -- size limits ------------------------------------------------------------------------

def test_a_csv_with_too_many_lines_is_refused_after_reading_only_the_first_ones(app, manual):
    app.config["UPLOAD_MAX_ROWS"] = 1_000
    lines = itertools.chain([b"account;amount\n"], (f"{n};0\n".encode() for n in range(1, 200_000)))
    stream = io.BufferedReader(GeneratedFile(lines))
    errors = refusal(lambda: import_trial_balance(*manual, stream, "tb.csv",
                                                  date(2024, 1, 31)))
    assert errors == ["The file has more than 1000 lines, the most one upload may hold; split it into smaller files."]
    assert stream.raw.produced < 2_000  # streamed: stopped near the limit, not at the end of the file
    assert nothing_written()


def test_a_csv_with_too_many_columns_or_a_huge_line_is_refused(manual):
    wide = b"account;amount\n1;" + b";".join(b"x" for _ in range(60)) + b"\n"
    errors = refusal(lambda: import_trial_balance(*manual, wide, "tb.csv", date(2024, 1, 31)))
    assert errors == ["line 2: more than 50 columns, the most an upload may have."]
    # trailing empty cells (a spreadsheet's habit) do not count
    padded = b"account;amount" + b";" * 200 + b"\n100000;-1\n550000;1" + b";" * 200 + b"\n"
    assert import_trial_balance(*manual, padded, "tb.csv", date(2024, 1, 31)).rows == 2
    huge = b"account;amount\n" + b"1" * 300_000 + b";1\n"
    errors = refusal(lambda: import_trial_balance(*manual, huge, "tb.csv", date(2024, 2, 29)))
    assert errors == ["line 2 is longer than 100000 characters."]


def test_a_workbook_declaring_a_huge_dimension_and_the_last_row_of_excel_is_refused(manual):
    # openpyxl fills the gap up to row 1048576 with empty rows as wide as the dimension says
    data = with_sheet_xml(sheet("A1:XFD1048576", HEADER_ROW + '<row r="1048576"><c r="A1048576"><v>1</v></c></row>'))
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx", date(2024, 1, 31)))
    assert errors == ["The file has more than 100000 lines, the most one upload may hold; split it into smaller files."]
    assert nothing_written()


def test_a_workbook_with_too_many_rows_is_refused(manual):
    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c><c r="B{n}"><v>0</v></c></row>' for n in range(2, 100_010))
    data = with_sheet_xml(sheet("A1:B100009", HEADER_ROW + rows))
    assert len(data) < 2_000_000  # small on the wire
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx", date(2024, 1, 31)))
    assert errors == ["A sheet of the workbook has more than 100000 lines, the most one upload may hold; split it "
                      "into smaller files."]  # counted before openpyxl opens the workbook
    assert nothing_written()


def test_a_sheet_row_with_more_cells_than_excel_allows_is_refused_before_openpyxl_builds_them(manual):
    data = with_sheet_xml(sheet("A1:B2", HEADER_ROW + '<row r="2">' + "<c/>" * 20_000 + "</row>"))
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx", date(2024, 1, 31)))
    assert errors == ["A sheet of the workbook holds more cells than an upload may have (100000 lines of 50 columns); "
                      "split it into smaller files."]
    assert nothing_written()


def declare_uncompressed_size(data, member_name, size):
    """``data`` (a zip) with the uncompressed size of ``member_name`` declared as ``size``, in
    its local header and in the central directory, as a hand-made zip bomb would."""
    data, name = bytearray(data), member_name.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        for match in re.finditer(re.escape(signature), bytes(data)):
            start = match.start()
            if bytes(data[start + name_at:start + name_at + len(name)]) == name:
                data[start + size_at:start + size_at + 4] = struct.pack("<I", size)
    return bytes(data)


def test_a_zip_declaring_gigabytes_once_unpacked_is_refused_before_it_is_opened(manual):
    data = declare_uncompressed_size(workbook_bytes([["account", "amount"], [1, 0]]), SHEET_XML, 0xFFFF_FFF0)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo(SHEET_XML).file_size == 0xFFFF_FFF0
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx", date(2024, 1, 31)))
    assert errors == ["The workbook unpacks to more than 64 MB or 1000 parts, the most an upload may hold; split it "
                      "into smaller files or upload it as CSV."]
    assert nothing_written()


def test_a_real_zip_bomb_and_a_zip_of_many_members_are_refused(app, manual):
    app.config["UPLOAD_MAX_XLSX_UNCOMPRESSED_BYTES"] = 1024 * 1024
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr(SHEET_XML, b" " * (4 * 1024 * 1024))  # 4 MB of spaces: a few kB zipped
    assert len(buffer.getvalue()) < 50_000
    errors = refusal(lambda: import_ledger_lines(*manual, buffer.getvalue(), "l.xlsx"))
    assert errors[0].startswith("The workbook unpacks to more than 1 MB")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as many:
        for n in range(1_001):
            many.writestr(f"xl/media/{n}.bin", b"")
    errors = refusal(lambda: import_ledger_lines(*manual, buffer.getvalue(), "l.xlsx"))
    assert errors[0].startswith("The workbook unpacks to more than")
    assert nothing_written()


def test_a_zip_whose_table_of_contents_is_too_large_is_refused_before_it_is_read(manual, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as many:
        for n in range(5_000):
            many.writestr(f"xl/media/image{n:05d}.png", b"")
    data = bytearray(buffer.getvalue())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = struct.pack("<HH", 1, 1)  # claims a single member
    monkeypatch.setattr(zipfile, "ZipFile", None)  # reading its table of contents would fail the test
    errors = refusal(lambda: import_ledger_lines(*manual, bytes(data), "l.xlsx"))
    assert errors[0].startswith("The workbook unpacks to more than 64 MB or 1000 parts")
    assert nothing_written()


def test_a_zip64_end_record_cannot_hide_the_size_of_the_table_of_contents(manual, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as many:
        for n in range(5_000):
            many.writestr(f"xl/media/image{n:05d}.png", b"")
    data = buffer.getvalue()
    end = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack("<LL", data[end + 12:end + 20])
    # the true table of contents in a ZIP64 end record and its locator, which zipfile prefers,
    # behind a classic end record claiming one member in 46 bytes
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 5_000, 5_000, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 46, offset, 0)
    hostile = data[:end] + zip64 + locator + classic
    assert len(zipfile.ZipFile(io.BytesIO(hostile)).infolist()) == 5_000
    monkeypatch.setattr(zipfile, "ZipFile", None)  # reading its table of contents would fail the test
    errors = refusal(lambda: import_ledger_lines(*manual, hostile, "l.xlsx"))
    assert errors[0].startswith("The workbook unpacks to more than 64 MB or 1000 parts")


def test_a_file_that_is_not_a_zip_or_a_sheet_openpyxl_cannot_read_through_is_refused_plainly(manual):
    for data in (b"PK\x03\x04 not really", with_sheet_xml(sheet("A1:B2", HEADER_ROW + '<row r="2"><c r="A2"><v>1'))):
        errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx",
                                                      date(2024, 1, 31)))
        assert errors == ["The file is not a readable Excel workbook (.xlsx)."]
    assert nothing_written()


# -- values out of range ---------------------------------------------------------------

def test_amounts_beyond_reason_are_bad_lines_of_the_report(manual):
    data = ("account;amount\n"
            "100000;1E30\n"
            "100001;1234567890123456789012345678901234567890\n"
            "100002;NaN\n"
            "100003;inf\n"
            "100004;-Infinity\n"
            "100005;1_000\n"
            "100006;1000000000000000\n"
            "100007;999999999999999,99\n"
            "100008;-999999999999999,99\n").encode()
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.csv", date(2024, 1, 31)))
    assert errors == [
        "line 2: amount '1E30' is not a number",
        "line 3: amount '1234567890123456789012345678901234567890' is too large (at most 15 digits before the "
        "decimal point)",
        "line 4: amount 'NaN' is not a number",
        "line 5: amount 'inf' is not a number",
        "line 6: amount '-Infinity' is not a number",
        "line 7: amount '1_000' is not a number",
        "line 8: amount '1000000000000000' is too large (at most 15 digits before the decimal point)",
    ]
    assert nothing_written()


def test_workbook_numbers_beyond_reason_are_bad_lines_of_the_report(manual):
    data = workbook_bytes([["account", "debit", "credit"], [100000, 1e300, None], [100001, None, 1e15],
                           [100002, 10 ** 40, None], [100003, -1e-300, None]])
    errors = refusal(lambda: import_trial_balance(*manual, data, "tb.xlsx", date(2024, 1, 31)))
    assert errors == [
        "line 2: debit '1e+300' is too large (at most 15 digits before the decimal point)",
        "line 3: credit '1000000000000000' is too large (at most 15 digits before the decimal point)",
        "line 4: debit '1e+40' is too large (at most 15 digits before the decimal point)",  # Excel keeps floats
    ]
    assert nothing_written()


def test_ledger_lines_adding_up_beyond_the_database_column_are_refused(manual):
    data = ("date;account;amount\n"
            + "".join(f"2024-01-{day:02d};550000;999999999999999\n" for day in range(1, 4))
            + "2024-01-05;700000;-2999999999999997\n").encode()
    errors = refusal(lambda: import_ledger_lines(*manual, data, "l.csv"))
    assert errors[0] == "line 5: amount '-2999999999999997' is too large (at most 15 digits before the decimal point)"
    data = ("date;account;amount\n"
            + "".join(f"2024-01-{day:02d};550000;999999999999999\n" for day in range(1, 4))
            + "".join(f"2024-01-{day:02d};700000;-999999999999999\n" for day in range(1, 4))).encode()
    errors = refusal(lambda: import_ledger_lines(*manual, data, "l.csv"))
    assert errors == [
        "The lines of account 550000 in the period ending 2024-01-31 add up to more than 15 digits before the "
        "decimal point",
        "The lines of account 700000 in the period ending 2024-01-31 add up to more than 15 digits before the "
        "decimal point",
    ]
    assert count(db, LedgerLine) == 0 and count(db, PeriodBalance) == 0 and count(db, AuditEvent) == 0


def test_dates_outside_1900_to_2200_are_bad_lines_of_the_report(manual):
    data = b"date;account;amount\n0001-01-15;550000;1\n9999-12-31;700000;-1\n31/12/1899;550000;1\n01/01/2201;1;1\n"
    errors = refusal(lambda: import_ledger_lines(*manual, data, "l.csv"))
    assert errors == [
        "line 2: date 0001-01-15 is not between 1900-01-01 and 2200-12-31",
        "line 3: date 9999-12-31 is not between 1900-01-01 and 2200-12-31",
        "line 4: date 31/12/1899 is not between 1900-01-01 and 2200-12-31",
        "line 5: date 01/01/2201 is not between 1900-01-01 and 2200-12-31",
    ]
    book = workbook_bytes([["date", "account", "amount"], [datetime(2201, 1, 1), 550000, 1],
                           [date(2024, 1, 2), 700000, -1]])
    errors = refusal(lambda: import_ledger_lines(*manual, book, "l.xlsx"))
    assert errors == ["line 2: date 2201-01-01 is not between 1900-01-01 and 2200-12-31"]
    assert nothing_written() and count(db, FiscalYear) == 1


def test_a_trial_balance_period_end_outside_the_years_is_refused(manual):
    for period_end in (date(1, 1, 31), date(9999, 12, 31)):
        errors = refusal(lambda: import_trial_balance(*manual, b"account;amount\n1;0\n",
                                                      "tb.csv", period_end))
        assert errors == [f"{period_end.isoformat()} is not the last day of one of this file's periods; "
                          "choose a period end from the list."]
    assert nothing_written() and count(db, FiscalYear) == 1


def test_texts_longer_than_the_database_keeps_are_bad_lines(manual):
    data = ("date;account;description;reference;journal;amount\n"
            f"2024-01-02;{'9' * 51};x;F1;VK;1\n"
            f"2024-01-02;700000;{'d' * 501};{'r' * 121};{'j' * 61};-1\n").encode()
    errors = refusal(lambda: import_ledger_lines(*manual, data, "l.csv"))
    assert errors == [
        "line 2: the account number is longer than 50 characters",
        "line 3: the description is longer than 500 characters",
        "line 3: the reference is longer than 120 characters",
        "line 3: the journal is longer than 60 characters",
    ]
    assert nothing_written()


# -- through the Sync tab ---------------------------------------------------------------

@pytest.fixture
def tab_world(app):
    world = build_world()
    db.session.add(FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual"))
    db.session.commit()
    return world


def upload(client, dossier_id, content, filename="tb.csv", url="/admin/dossier-sync/upload", **headers):
    return client.post(url, data={
        "csrf_token": csrf_token(client), "id": dossier_id, "kind": "trial_balance", "period_end": "2024-12-31",
        "file": (io.BytesIO(content), filename)}, content_type="multipart/form-data", headers=headers)


TOO_LARGE = ("Nothing was uploaded: the file is larger than 0.00954 MB, the most an upload may be. "
             "Split it into smaller files.")


def test_a_request_over_the_size_limit_comes_back_to_the_tab_with_a_message(app, client, tab_world):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    log_in(client, "admin")
    big = b"account;amount\n" + b"100000;0\n" * 2_000
    tab_url = f"http://localhost/admin/dossier-sync/?id={tab_world.a_grouped}"
    response = upload(client, tab_world.a_grouped, big, Referer=tab_url)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/dossier-sync/?id={tab_world.a_grouped}"
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and TOO_LARGE in page.get_data(as_text=True)
    # the file's id in the form's address serves as well; without either, the console's home page
    response = upload(client, tab_world.a_grouped, big, url=f"/admin/dossier-sync/upload?id={tab_world.a_grouped}")
    assert response.headers["Location"] == f"/admin/dossier-sync/?id={tab_world.a_grouped}"
    response = upload(client, tab_world.a_grouped, big)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert TOO_LARGE in client.get("/admin/").get_data(as_text=True)
    assert count(db, PeriodBalance) == 0
    assert db.session.scalar(select(func.count()).where(AuditEvent.action.like("data.upload%"))) == 0


def test_a_request_over_the_size_limit_reveals_no_other_file(app, client, tab_world):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    log_in(client, "staff")
    big = b"account;amount\n" + b"100000;0\n" * 2_000
    private = f"http://localhost/admin/dossier-sync/?id={tab_world.a_private}"
    response = upload(client, tab_world.a_private, big, Referer=private)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    # other requests of the tab keep the plain answer
    response = client.post("/admin/dossier-sync/setup", data={"id": tab_world.a_grouped, "pad": "x" * 20_000})
    assert response.status_code == 413


@pytest.mark.parametrize("content, filename, shown", [
    (b"account;amount\n100000;1E30\n550000;-1E30\n", "tb.csv", "line 2: amount &#39;1E30&#39; is not a number."),
    (b"account;amount\n100000;" + b"9" * 40 + b"\n", "tb.csv", "is too large (at most 15 digits"),
    (workbook_bytes([["account", "amount"], [100000, 1e300], [550000, -1e300]]), "tb.xlsx",
     "line 2: amount &#39;1e+300&#39; is too large"),
    (workbook_bytes([["account", "amount"]] + [[n, 0] for n in range(60)]), "tb.xlsx", None),
])
def test_bad_values_through_the_tab_are_reported_not_a_500(client, tab_world, content, filename, shown):
    log_in(client, "staff")
    response = upload(client, tab_world.a_grouped, content, filename)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    if shown:
        assert "Nothing was uploaded:" in page and shown in page
        assert count(db, PeriodBalance) == 0
    else:
        assert "Trial balance at 2024-12-31 uploaded: 60 accounts" in page


def test_a_flood_of_bad_lines_still_fits_the_session_cookie(client, tab_world):
    log_in(client, "staff")
    values = [base64.b64encode(hashlib.sha512(str(n).encode()).digest()).decode() for n in range(200)]
    bad = ("account;amount\n" + "".join(f"{n};{value}\n" for n, value in enumerate(values))).encode()
    response = upload(client, tab_world.a_grouped, bad)
    cookie = response.headers["Set-Cookie"]
    assert len(cookie) < 4093  # a browser drops a larger cookie, and the message with it
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"line 2: amount &#39;{values[0][:40]}…&#39; is not a number." in page
    assert "... and 190 more problems." in page
