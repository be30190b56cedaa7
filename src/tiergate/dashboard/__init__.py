"""The gateway's dashboard at ``/dashboard`` (admin key): spend and savings over time, tier
shares, live error bounds against the budget, drift signals, top keys, latest escalations.

Static assets ship in the package (``static/``; the chart library, uPlot, is vendored with its
licence): nothing is fetched from elsewhere at run time.
"""
