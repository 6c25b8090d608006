"""Hosting plain Python functions: sync (an HTTP CloudEvents endpoint) and async
(a consumer of a bus topic), both with ``context.send(output, data)``.

- :mod:`events.functions.loader`: importing the user's function and calling it
  with ``(event)`` or ``(context, event)``.
- :mod:`events.functions.http`: the sync host.
- :mod:`events.functions.topic`: the async host.
- :mod:`events.functions.context`: what a function gets to send outputs.
"""
