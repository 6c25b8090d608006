"""Hosting plain Python functions, as OpenFunction's functions-framework does.

The programming model:

- A function takes ``(event)`` or ``(context, event)``; the event is the official
  SDK's ``cloudevents.core.v1.event.CloudEvent``. It may be ``async def``; a plain
  one runs in a worker thread.
- **Sync** (a Function without ``input``): served over HTTP by fnevents. A
  CloudEvent request (binary, structured or batch) is passed as it is; a plain
  request (any body, or none) becomes a CloudEvent first, so there is one
  signature. What it returns is the response; a returned CloudEvent is answered
  in binary mode, so a trigger can publish it as a reply.
- **Async** (a Function with ``input``): consumes a bus topic as the consumer
  group ``{namespace}-{name}``; raising redelivers the event, and after
  ``maxDeliveries`` dead-letters it.
- **Outputs**: ``context.send(output, data)`` sends to a name declared in
  ``spec.outputs``: a bus topic ``{topic, eventBus}`` or a Dapr output binding
  ``{component}`` (``bindings.kafka``). Sends are awaited before the input is
  acked or the HTTP request answered: at least once, end to end.

Modules:

- :mod:`events.functions.loader`: importing the user's function and calling it;
- :mod:`events.functions.http` and :mod:`events.functions.request`: the sync host;
- :mod:`events.functions.topic`: the async host;
- :mod:`events.functions.context`: what a function gets to send outputs;
- :mod:`events.functions.outputs` and :mod:`events.brokers.kafka.binding`: where
  outputs go;
- :mod:`events.functions.address`: how other processes reach a sync function.
"""
