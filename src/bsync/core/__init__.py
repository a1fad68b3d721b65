"""The sync engine, free of any provider: bookings and the records every layer shares
(model, records), the pure planner (plan), the applier (apply), the state DB (store), the
calendar pair run (sync), the whole pipeline (pipeline) and the machinery every run shares
(runs, retry, failures, timeutil, ratelimit).
"""
