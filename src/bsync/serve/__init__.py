"""``bsync serve``: the HTTP receiver (webhooks into the durable inbox, availability,
/healthz), its background worker, and binding the socket (listen).
"""
