"""The live web console of ``fnevents run --console``.

- :mod:`.topology`: the graph drawn from the loaded manifests, each figure naming
  the Prometheus series it comes from;
- :mod:`.stats`: those figures and the edges' events/s, read from the registry that
  ``/metrics`` serves (no second bookkeeping);
- :mod:`.live`: one reading per second, only while a page watches;
- :mod:`.letters`: dead letters listed and replayed (replay needs the token);
- :mod:`.loaded`: what was loaded;
- :mod:`.server`: the HTTP routes; ``static/``: the page, its script and style (no
  build step, no third-party script).

The recent events come from :class:`events.observability.recent.RecentEvents`,
which the roles record into only when the console is on.
"""
