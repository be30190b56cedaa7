"""The audit loop: live error against the budget, drift signals, and the reactions to a breach.

Sampled answers that a cheaper tier gave are asked again of the route's top tier off the hot
path (Message Batches by default, live when configured); agreement is recorded beside the
request's ledger row (``audits`` table). From those records come a live error estimate per
route, tier and label with Clopper-Pearson bounds at the route's confidence, over a sliding
window and since the last calibration; a breach raises a metric, a log line, an optional
webhook and a configured reaction. See ``docs/audit.md``.
"""
