"""Domain operations, used by the console, the API and the jobs alike (ARCHITECTURE section 2).

* :mod:`app.services.connectors`: the one builder of connectors (:func:`open_connector`);
* :mod:`app.services.connections`: test a connection, refresh the companies it reaches;
* :mod:`app.services.links`: set up, switch and end a dossier's sync (scenarios, transfer date);
* :mod:`app.services.syncs` and :mod:`app.services.queues`: start and cancel syncs (a committed
  run, then a queued job);
* :mod:`app.services.bookkeeping`: the writer that applies a sync's records to a dossier;
* :mod:`app.services.fiscal_years`: fiscal years and periods;
* :mod:`app.services.uploads`: trial balances and ledgers uploaded by hand.

Services check the actor's rights themselves (they are the last line, whoever calls them),
take and return model objects or ids, and never import the console or the jobs.
"""
