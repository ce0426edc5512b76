"""A parked sync run's kept answers in the database (docs/sync-engine.md "Parking").

The sync job (:mod:`jobs.sync`) gives each attempt a
:class:`connectors.response_journal.ResponseJournal` filled by :func:`open_journal` with the
answers earlier attempts of the run kept; when the attempt parks (its budget is used up) it
saves the answers it fetched live with :func:`save_new_answers`, in a transaction of its own
after the rollback of the data. :func:`drop` deletes a run's answers when it ends (in the
transaction of its outcome) and :func:`sweep` (the reaper) deletes those of runs that ended
any other way.
"""
import re

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import RunResponseStage, RunStatus, SyncRun
from connectors.response_journal import ResponseJournal, StoredAnswer

#: rows read from the database at a time when a journal is filled (bounded memory)
LOAD_BATCH = 200
#: the message of a parked run, written by the job in English (:func:`waiting_message`)
WAITING_FOR_BUDGET = "Waiting for {package}'s API budget; resumes at {when}."
_WAITING = re.compile(r"^Waiting for (?P<package>.+)'s API budget; resumes at \d\d:\d\d UTC\.$")


def waiting_message(package, resume_at):
    """The run message of a run parked until ``resume_at`` (naive UTC) for ``package``'s budget."""
    return WAITING_FOR_BUDGET.format(package=package, when=resume_at.strftime("%H:%M UTC"))


def waiting_for(message):
    """The package a run message of :func:`waiting_message` names, or None for any other message
    (the console shows it in the viewer's language and time zone)."""
    found = _WAITING.match(message or "")
    return found["package"] if found else None


def window_end(run_id):
    """The last day of the run's sync window frozen when it first parked, or None (never parked)."""
    return db.session.scalar(select(RunResponseStage.window_end).where(RunResponseStage.run_id == run_id)
                             .order_by(RunResponseStage.seq).limit(1))


def open_journal(run_id):
    """A :class:`ResponseJournal` holding every answer the run's earlier attempts kept, in order."""
    journal = ResponseJournal()
    rows = db.session.execute(
        select(RunResponseStage.key_hash, RunResponseStage.status, RunResponseStage.headers, RunResponseStage.body)
        .where(RunResponseStage.run_id == run_id).order_by(RunResponseStage.seq)
        .execution_options(yield_per=LOAD_BATCH))
    journal.load(StoredAnswer(key, status, headers, body) for key, status, headers, body in rows)
    return journal


def save_new_answers(run_id, journal, window_day):
    """Keep the answers ``journal`` fetched live in this attempt (after the earlier attempts'
    ones), in a transaction of its own; ``window_day`` is the last day of the window this
    attempt asked for. Returns how many were kept."""
    saved = 0
    with Session(db.engine) as own:
        seq = own.scalar(select(func.max(RunResponseStage.seq)).where(RunResponseStage.run_id == run_id)) or 0
        batch = []
        for answer in journal.new_answers():
            seq += 1
            batch.append(RunResponseStage(run_id=run_id, seq=seq, key_hash=answer.key, status=answer.status,
                                          headers=answer.headers, body=answer.body, window_end=window_day))
            if len(batch) >= LOAD_BATCH:
                own.add_all(batch)
                own.flush()
                saved, batch = saved + len(batch), []
        own.add_all(batch)
        own.commit()
    return saved + len(batch)


def drop(session, run_id):
    """Delete the run's kept answers in ``session``'s transaction (the run ended)."""
    session.execute(delete(RunResponseStage).where(RunResponseStage.run_id == run_id),
                    execution_options={"synchronize_session": False})


def sweep():
    """Delete the kept answers of runs that are no longer active (ended by a cancellation, the
    reaper or a superseding run rather than by their own job). Returns how many rows went."""
    ended = select(SyncRun.id).where(SyncRun.status.notin_(RunStatus.ACTIVE))
    result = db.session.execute(delete(RunResponseStage).where(RunResponseStage.run_id.in_(ended)),
                                execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount or 0
