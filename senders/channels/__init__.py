"""The channels: messengers that implement :class:`senders.base.Messenger`.

Each module wraps one way of sending (SMTP, an SMS gateway's HTTP API, PDF letters) and
turns what goes wrong into the :mod:`senders.base` exceptions; the dispatcher
(:mod:`senders.dispatcher`) is the only caller. :mod:`senders.channels.files` holds the
embedded defaults, which send nothing: SMS become JSON lines under
``<data dir>/outbox/sms`` and e-mails ``.eml`` files under ``<data dir>/outbox/email``,
so a fresh installation can be tried (and tested) with no server and no account.
"""
