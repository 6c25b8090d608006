"""Wire codecs for :class:`events.cloudevent.CloudEvent`: pure functions, no transports.

* :mod:`events.bindings.structured` - the JSON event format and JSON batches (orjson)
* :mod:`events.bindings.http` - HTTP binary, structured and batch modes
* :mod:`events.bindings.kafka` - Kafka binary and structured modes, :class:`KafkaRecord`
* :mod:`events.bindings.mqtt` - MQTT 5 binary mode and MQTT 3.1.1 structured mode
* :mod:`events.bindings.sdk` - conversion to and from the official ``cloudevents`` SDK
* :mod:`events.bindings.data` - payload and header-string rules the binary modes share,
  and the one rule every binding and source reads a payload by (``decode_payload``)
* :mod:`events.bindings.charsets` - which charsets a payload may declare, and text
  decoded by them

Submodules are not imported here, so using one codec does not load the others
(nor the SDK). Every decoding failure raises
:class:`events.errors.InvalidCloudEvent` naming the attribute, or ``data`` /
``body`` for payload problems.
"""
