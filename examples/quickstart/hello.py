"""The quickstart's function: print each CloudEvent it receives.

``event`` is the official SDK's ``cloudevents.core.v1.event.CloudEvent``.
"""


def hello(event):
    print(f"hello: {event.get_type()} from {event.get_source()}: {event.get_data()}", flush=True)
