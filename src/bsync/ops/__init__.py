"""Commands that look after a running installation: status, doctor, reconcile, resolve
(conflicts), logs and the narrated demo.
"""
