"""Inspecting and replaying dead letters from another process (``fnevents deadletters``).

A dead-letter topic is an ordinary bus topic. Both commands read it as one consumer
group, :data:`~events.bus.letters.REPLAY_GROUP`, created (on first use) at the start
of the topic, so letters written before anyone looked are there to read:

- ``list`` reads what that group has not yet settled, without taking anything;
- ``replay`` joins the group, sends each letter (its error attributes stripped)
  back to where it was going, and acks it only once the destination took it.

Which brokers can do this, and how, is in :mod:`events.deadletters.stores`; the
contract a broker implements is :class:`events.bus.letters.LetterStore`.
"""
