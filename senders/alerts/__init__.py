"""Staff alerts (DESIGN.md "Alerts (staff)"; docs/alerts.md): rules, planning, delivery.

- :mod:`senders.alerts.rules`: rules in the ops store (create, update, enable, delete,
  list; every change audited), the starter rules, and re-exports of the two below.
- :mod:`senders.alerts.validation`: strict checks of a rule's ``params`` and ``notify``
  with every problem named (:class:`~senders.alerts.validation.RuleProblem`); rules in
  words.
- :mod:`senders.alerts.groups`: staff groups a rule can notify.
- :mod:`senders.alerts.findings`: what each kind of rule finds at a time, one warehouse
  query per rule (:mod:`reports.alerts`), with each firing's key, title and body.
- :mod:`senders.alerts.recipients`: who hears of each firing (staff by role, name or
  group, read in bulk; parents as compose plans a send), and the gaps in words.
- :mod:`senders.alerts.evaluate`: :func:`~senders.alerts.evaluate.plan_alerts`, who
  would be alerted at a time (reads only), for previews, ``schoolcomms alerts
  --dry-run`` and the scheduler.
- :mod:`senders.alerts.deliver`: :func:`~senders.alerts.deliver.fire`, which records each
  firing once with its staff notices and parent messages, one transaction per alert.
"""
